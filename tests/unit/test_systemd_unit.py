"""share/kuryr/systemd/kuryr.service: ordered before docker.service, ready when the plugin
socket listens, pulled in by Docker once enabled; systemd-analyze verify finds nothing in it.

The machine runs no systemd as PID 1, so ``systemctl --root`` enables it into a directory of
the test's and ``systemd-analyze verify`` reads the files offline. The verify run with the
unit's real ExecStart (a pip-installed /opt/kuryr) is tests/integration/test_install_wheel.py.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "share" / "kuryr" / "systemd" / "kuryr.service"
DOCKER_UNIT = Path("/usr/lib/systemd/system/docker.service")


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def test_kuryr_is_ready_before_docker_starts() -> None:
    u = unit()
    assert "docker.service" in u["Unit"]["Before"].split()
    # Ready means READY=1, which kuryr serve sends once its socket listens (kuryr.sdnotify).
    assert u["Service"]["Type"] == "notify"
    assert "docker.service" in u["Install"]["WantedBy"].split()
    assert u["Service"]["ExecStart"] == "/opt/kuryr/bin/kuryr serve"


def _offline(*argv: str, env: dict[str, str] | None = None) -> str:
    tool = shutil.which(argv[0])
    if tool is None:
        pytest.fail(f"{argv[0]} is missing: scripts/install-deps.sh installs it (systemd)")
    done = subprocess.run(
        [tool, *argv[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_enabled_kuryr_verifies_clean_with_the_docker_service_that_wants_it(
    tmp_path: Path,
) -> None:
    """docker.service (docker.io's unit) with kuryr.service enabled beside it: verify loads
    kuryr.service through docker.service.wants/ and would print any key it cannot parse
    (it exits 0 on those, so the output must be empty)."""
    assert DOCKER_UNIT.exists(), "docker.io's docker.service is missing"
    units = tmp_path / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    shutil.copy(UNIT, units / "kuryr.service")
    _offline("systemctl", f"--root={tmp_path}", "--quiet", "enable", "kuryr.service")
    assert (units / "docker.service.wants" / "kuryr.service").is_symlink()
    out = _offline(
        "systemd-analyze",
        "verify",
        "--man=no",
        "--generators=no",
        "docker.service",
        # Our units first, then the machine's (the trailing colon).
        env={"SYSTEMD_UNIT_PATH": f"{units}:"},
    )
    assert out == ""
