"""``make plugin``: the managed (v2) Docker plugin, built offline on this machine.

The plugin directory (default ``/var/lib/kuryr-stack/plugin/bundle``) holds what
``docker plugin create NAME DIR`` takes: ``config.json`` (:mod:`kuryr.stack.plugin_config`)
and ``rootfs/``, the Debian base (:mod:`kuryr.stack.plugin_rootfs`) with a venv at
``/opt/kuryr``. The venv is filled from wheels made on the host by its pip (same Python
minor version), installed with ``--no-index``: the rootfs never reaches PyPI.

Four caches, each with a stamp saying what it was made from, make a rebuild after a code
change reinstall only Kuryr's own wheel, and a rebuild of unchanged code (the stack goes to
the plugin a second time in one test run) install nothing: the base rootfs, the
dependencies' wheels (keyed by pyproject's dependencies), the venv holding them (keyed by
both) and Kuryr in that venv (keyed by its source and the venv's key).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kuryr.stack import plugin_config, plugin_rootfs
from kuryr.stack.layout import Layout, write_if_changed
from kuryr.stack.plugin_rootfs import BuildError, in_rootfs, run

REPO = Path(__file__).resolve().parents[2]
# Inside the rootfs while the venv is filled; removed afterwards.
WHEELHOUSE = "tmp/kuryr-wheels"
# What building Kuryr's wheel reads: the package, the data files pyproject's data-files
# install (share/kuryr: example config, systemd unit), and these files.
SOURCE_DIRS = ("kuryr", "share")
SOURCE_FILES = ("pyproject.toml", "README.md")


def copy_source(repo: Path, dest: Path) -> None:
    """Copy what building Kuryr's wheel reads into ``dest``: setuptools builds in the source
    directory and would carry a module since deleted from an old ``build/`` into the wheel."""
    for name in SOURCE_DIRS:
        shutil.copytree(repo / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in SOURCE_FILES:
        shutil.copy2(repo / name, dest / name)


def dependencies(pyproject: Path) -> list[str]:
    """Kuryr's runtime requirements, as pyproject.toml states them."""
    data = tomllib.loads(pyproject.read_text())
    return list(data["project"]["dependencies"])


def project_version(pyproject: Path) -> str:
    return str(tomllib.loads(pyproject.read_text())["project"]["version"])


def deps_key(requirements: list[str], python: str) -> str:
    text = "\n".join([f"python {python}", *sorted(requirements)])
    return hashlib.sha256(text.encode()).hexdigest()


def source_key(repo: Path, venv_key: str) -> str:
    """What Kuryr's wheel is made from (``SOURCE_DIRS`` and ``SOURCE_FILES``), with the key
    of the venv it goes into."""
    digest = hashlib.sha256(venv_key.encode())
    files = [p for d in SOURCE_DIRS for p in (repo / d).rglob("*") if p.is_file()]
    files += [repo / name for name in SOURCE_FILES]
    for path in sorted(files):
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _stamped(stamp: Path, key: str) -> bool:
    return stamp.exists() and stamp.read_text() == key


class Builder:
    def __init__(self, root: Path, repo: Path = REPO, python: str = sys.executable) -> None:
        self.root = root
        self.repo = repo
        self.python = python
        self.bundle = root / "bundle"
        self.rootfs = self.bundle / "rootfs"
        self.wheels = root / "wheels"
        self.kuryr_wheel = root / "kuryr-wheel"
        self.steps: list[tuple[str, float]] = []

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        print(f"plugin: {name} ...", flush=True)
        yield
        self.steps.append((name, time.monotonic() - began))

    def pip(self, args: list[str], what: str) -> None:
        run([self.python, "-m", "pip", "--disable-pip-version-check", "-q", *args], what)

    def build(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        self.bundle.mkdir(exist_ok=True)
        with self.step("base rootfs (debootstrap, kept between builds)"):
            made = plugin_rootfs.ensure_base(self.rootfs, self.root / "base.stamp")
        if made:
            (self.root / "venv.stamp").unlink(missing_ok=True)
        python = plugin_rootfs.python_version(self.rootfs)
        host = f"{sys.version_info.major}.{sys.version_info.minor}"
        if python != host:
            raise BuildError(f"the rootfs has Python {python}, the host's pip {host}: no match")
        pyproject = self.repo / "pyproject.toml"
        requirements = dependencies(pyproject)
        key = deps_key(requirements, python)
        with self.step("dependency wheels (kept while pyproject's dependencies stay)"):
            self.dependency_wheels(requirements, key)
        installed = self.root / "kuryr.stamp"
        source = source_key(self.repo, key)
        if not (_stamped(installed, source) and _stamped(self.root / "venv.stamp", key)):
            installed.unlink(missing_ok=True)
            with self.step("Kuryr's wheel"):
                wheel = self.kuryr_wheel_file()
            with self.step("venv /opt/kuryr in the rootfs"):
                self.fill_venv(requirements, key, wheel)
            installed.write_text(source)
        with self.step("smoke check: kuryr --help, the daemon's modules import"):
            venv = plugin_config.VENV
            in_rootfs(self.rootfs, [f"{venv}/bin/kuryr", "--help"], "kuryr --help")
            imports = "import kuryr.app, kuryr.driver, kuryr.ops.reconcile"
            in_rootfs(self.rootfs, [f"{venv}/bin/python", "-c", imports], "importing the daemon")
        write_if_changed(
            self.bundle / "config.json", plugin_config.render(project_version(pyproject))
        )
        return self.bundle

    def dependency_wheels(self, requirements: list[str], key: str) -> None:
        stamp = self.root / "wheels.stamp"
        if self.wheels.is_dir() and _stamped(stamp, key):
            return
        stamp.unlink(missing_ok=True)
        shutil.rmtree(self.wheels, ignore_errors=True)
        self.pip(["wheel", "--wheel-dir", str(self.wheels), *requirements], "pip wheel (deps)")
        stamp.write_text(key)

    def kuryr_wheel_file(self) -> Path:
        """Kuryr's wheel, from a copy of the tree (:func:`copy_source`)."""
        source = self.root / "source"
        for old in (source, self.kuryr_wheel):
            shutil.rmtree(old, ignore_errors=True)
        copy_source(self.repo, source)
        self.pip(
            ["wheel", "--no-deps", "--wheel-dir", str(self.kuryr_wheel), str(source)],
            "pip wheel (kuryr)",
        )
        found = sorted(self.kuryr_wheel.glob("kuryr-*.whl"))
        if len(found) != 1:
            raise BuildError(f"expected one kuryr wheel in {self.kuryr_wheel}, found {found}")
        return found[0]

    def fill_venv(self, requirements: list[str], key: str, wheel: Path) -> None:
        venv = str(plugin_config.VENV)
        pip = [f"{venv}/bin/pip", "--disable-pip-version-check", "-q", "install", "--no-index"]
        pip += ["--no-cache-dir", "--find-links", f"/{WHEELHOUSE}"]
        house = self.rootfs / WHEELHOUSE
        shutil.rmtree(house, ignore_errors=True)
        stamp = self.root / "venv.stamp"
        try:
            if not _stamped(stamp, key):
                stamp.unlink(missing_ok=True)
                shutil.rmtree(self.rootfs / venv.lstrip("/"), ignore_errors=True)
                shutil.copytree(self.wheels, house)
                in_rootfs(self.rootfs, ["python3", "-m", "venv", venv], "python3 -m venv")
                in_rootfs(self.rootfs, [*pip, *requirements], "pip install (deps, offline)")
                stamp.write_text(key)
            house.mkdir(parents=True, exist_ok=True)
            shutil.copy2(wheel, house)
            in_rootfs(
                self.rootfs,
                [*pip, "--no-deps", "--force-reinstall", f"/{WHEELHOUSE}/{wheel.name}"],
                "pip install (kuryr, offline)",
            )
        finally:
            shutil.rmtree(house, ignore_errors=True)


def _size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_symlink() and p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kuryr.stack.plugin_build", description=__doc__)
    parser.add_argument("--dir", help="build directory (default <stack dir>/plugin)")
    args = parser.parse_args(argv)
    root = Path(args.dir).absolute() if args.dir else Layout.resolve(None).sub("plugin")
    builder = Builder(root)
    began = time.monotonic()
    try:
        bundle = builder.build()
    except (BuildError, OSError) as exc:
        print(f"plugin: {exc}", file=sys.stderr)
        return 1
    for name, seconds in builder.steps:
        print(f"  {seconds:6.1f} s  {name}")
    size = _size(builder.rootfs) / 1e6
    print(f"plugin built in {time.monotonic() - began:.1f} s: {bundle} (rootfs {size:.0f} MB)")
    print(f"install: docker plugin create kuryr {bundle} && docker plugin enable kuryr")
    return 0


if __name__ == "__main__":
    sys.exit(main())
