"""share/kuryr/kuryr.conf.example, the example configuration the wheel installs: kuryr.config
reads it, and each key it shows at its default ("#key = value") has config.py's default."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from kuryr import config
from kuryr.config import Config, NeutronConfig

ROOT = Path(__file__).resolve().parents[2]
SHARE = ROOT / "share" / "kuryr"
EXAMPLE = SHARE / "kuryr.conf.example"

KEYSTONE = {
    "auth_url": "https://keystone.example.com:5000/v3",
    "username": "kuryr",
    "password": "secret",
    "project_name": "service",
    "user_domain_name": "Default",
    "project_domain_name": "Default",
}
# "#key = value" (no space after #): a key at its default. Prose comments start with "# ".
_AT_DEFAULT = re.compile(r"^#(\w+ =.*)$", re.MULTILINE)


def as_written() -> Config:
    return Config(neutron=NeutronConfig(auth_type="password", auth=KEYSTONE))


def test_the_example_parses_to_a_keystone_password_config() -> None:
    assert config.load(EXAMPLE, environ={}) == as_written()


def test_every_key_shown_at_its_default_has_config_py_default(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    shown = _AT_DEFAULT.findall(text)
    assert len(shown) >= 30, shown
    uncommented = tmp_path / "kuryr.conf"
    uncommented.write_text(_AT_DEFAULT.sub(r"\1", text))
    # A key config.py does not know would land in the keystoneauth options, or be ignored.
    assert config.load(uncommented, environ={}) == as_written()


def test_the_example_shows_every_key_config_py_reads() -> None:
    shown = {line.split("=")[0].strip() for line in _AT_DEFAULT.findall(EXAMPLE.read_text())}
    shown |= {"auth_type"}
    known = set(config._DEFAULT_KEYS) | config._NEUTRON_KEYS
    for part in (config.BindingConfig, config.PoolConfig, config.ReconcileConfig):
        known |= set(part.__dataclass_fields__)
    assert known - shown == set()


def test_the_wheel_installs_every_file_under_share() -> None:
    """pyproject's data-files put share/kuryr/... under the environment's prefix."""
    tables = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = {f for files in tables["tool"]["setuptools"]["data-files"].values() for f in files}
    present = {str(p.relative_to(ROOT)) for p in SHARE.rglob("*") if p.is_file()}
    assert listed == present
    for target, files in tables["tool"]["setuptools"]["data-files"].items():
        assert all(str(Path(f).parent) == target for f in files), (target, files)
