"""The plugin builder's pure parts: the Debian mirror apt uses, and the keys that decide what
a rebuild may keep."""

from __future__ import annotations

from pathlib import Path

from kuryr.stack import plugin_build, plugin_rootfs
from kuryr.stack.plugin_rootfs import FALLBACK_MIRROR, base_key, debian_mirror

REPO = Path(__file__).resolve().parents[2]

DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""

ONE_LINE = """# a comment
deb-src http://src.example/debian bookworm main
deb [signed-by=/usr/share/keyrings/x.gpg] http://mirror.example/debian bookworm main contrib
"""


def test_mirror_from_a_deb822_file() -> None:
    assert debian_mirror([("debian.sources", DEB822)]) == "http://deb.debian.org/debian"


def test_mirror_from_a_one_line_file_with_options() -> None:
    assert debian_mirror([("sources.list", ONE_LINE)]) == "http://mirror.example/debian"


def test_first_file_carrying_the_suite_wins() -> None:
    other = "deb http://other.example/debian trixie main\n"
    found = debian_mirror([("a.list", other), ("b.list", ONE_LINE), ("c.sources", DEB822)])
    assert found == "http://mirror.example/debian"


def test_disabled_stanzas_and_other_components_do_not_count() -> None:
    disabled = DEB822.replace("Types: deb\n#", "Enabled: no\nTypes: deb\n#", 1)
    disabled = disabled.split("\n\n")[0]
    assert debian_mirror([("x.sources", disabled)]) == FALLBACK_MIRROR
    contrib_only = "deb http://c.example/debian bookworm contrib\n"
    assert debian_mirror([("x.list", contrib_only)]) == FALLBACK_MIRROR
    assert debian_mirror([]) == FALLBACK_MIRROR


def test_base_key_follows_mirror_and_packages_not_their_order() -> None:
    assert base_key("http://a") != base_key("http://b")
    assert base_key("http://a", packages=("x", "y")) == base_key("http://a", packages=("y", "x"))
    assert base_key("http://a", packages=("x",)) != base_key("http://a", packages=("x", "y"))


def test_the_base_holds_the_python_the_venv_needs() -> None:
    assert {"python3", "python3-venv"} <= set(plugin_rootfs.PACKAGES)


def test_dependencies_are_pyprojects() -> None:
    deps = plugin_build.dependencies(REPO / "pyproject.toml")
    assert any(d.startswith("aiohttp") for d in deps)
    assert not any(d.startswith("pytest") for d in deps)


def test_deps_key_follows_requirements_and_python_not_their_order() -> None:
    key = plugin_build.deps_key(["a>=1", "b"], "3.11")
    assert key == plugin_build.deps_key(["b", "a>=1"], "3.11")
    assert key != plugin_build.deps_key(["a>=2", "b"], "3.11")
    assert key != plugin_build.deps_key(["a>=1", "b"], "3.12")


def test_the_kuryr_wheel_is_built_from_what_pyproject_reads() -> None:
    for name in plugin_build.SOURCE_FILES:
        assert (REPO / name).is_file()
    for name in plugin_build.SOURCE_DIRS:
        assert (REPO / name).is_dir()
    assert plugin_build.project_version(REPO / "pyproject.toml")


def test_source_key_follows_the_code_and_the_venv(tmp_path: Path) -> None:
    (tmp_path / "kuryr").mkdir()
    for name in plugin_build.SOURCE_FILES:
        (tmp_path / name).write_text(name)
    module = tmp_path / "kuryr" / "a.py"
    module.write_text("x = 1\n")
    key = plugin_build.source_key(tmp_path, "venv1")
    assert key != plugin_build.source_key(tmp_path, "venv2")
    (tmp_path / "kuryr" / "__pycache__").mkdir()
    (tmp_path / "kuryr" / "__pycache__" / "a.pyc").write_bytes(b"compiled")
    assert plugin_build.source_key(tmp_path, "venv1") == key
    module.write_text("x = 2\n")
    assert plugin_build.source_key(tmp_path, "venv1") != key
