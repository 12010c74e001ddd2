"""The managed plugin's base rootfs: a minimal Debian made by debootstrap from the mirror the
machine's apt already uses, with the Python the daemon's venv runs on. No image comes from a
registry. The base is made once and kept (a stamp beside it records what it was made from);
a rebuild after a code change starts from it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

SUITE = "bookworm"
# python3-venv brings ensurepip's wheels, so the venv gets pip without any index.
PACKAGES = ("python3", "python3-venv", "ca-certificates")
FALLBACK_MIRROR = "http://deb.debian.org/debian"
SOURCES = Path("/etc/apt/sources.list")
SOURCES_DIR = Path("/etc/apt/sources.list.d")
# What a plugin never needs and would only make `docker plugin create` copy more.
TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt")
# A plain environment for commands run in the rootfs: none of the host's pip or proxy settings.
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}


class BuildError(Exception):
    """A build step failed; the message says which and why."""


def _one_line_uris(text: str, suite: str) -> Iterable[str]:
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 4 and fields[0] == "deb":
            # Options such as [signed-by=...] come before the URI.
            rest = [f for f in fields[1:] if not f.startswith("[") and not f.endswith("]")]
            if len(rest) >= 3 and rest[1] == suite and "main" in rest[2:]:
                yield rest[0]


def _deb822_uris(text: str, suite: str) -> Iterable[str]:
    for stanza in text.split("\n\n"):
        fields: dict[str, list[str]] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.split()
        if (
            "deb" in fields.get("types", [])
            and suite in fields.get("suites", [])
            and "main" in fields.get("components", [])
            and fields.get("enabled", ["yes"]) != ["no"]
        ):
            yield from fields.get("uris", [])


def debian_mirror(sources: Iterable[tuple[str, str]], suite: str = SUITE) -> str:
    """The first mirror carrying ``suite``'s main component in apt's sources, given as
    (file name, text) pairs in apt's order; Debian's own mirror when none does."""
    for name, text in sources:
        uris = (
            _deb822_uris(text, suite) if name.endswith(".sources") else _one_line_uris(text, suite)
        )
        for uri in uris:
            return uri
    return FALLBACK_MIRROR


def apt_sources() -> list[tuple[str, str]]:
    files = [SOURCES] if SOURCES.exists() else []
    if SOURCES_DIR.is_dir():
        files += sorted(
            p for p in SOURCES_DIR.iterdir() if p.suffix in (".list", ".sources") and p.is_file()
        )
    return [(p.name, p.read_text(errors="replace")) for p in files]


def base_key(mirror: str, suite: str = SUITE, packages: Iterable[str] = PACKAGES) -> str:
    """What the base is made from: a different key means a different base."""
    return f"debootstrap minbase {suite} {mirror} {','.join(sorted(packages))}\n"


def run(argv: list[str], what: str, env: dict[str, str] | None = None) -> str:
    """Run ``argv``; its output, or a BuildError naming ``what`` with the output's tail."""
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BuildError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def in_rootfs(rootfs: Path, argv: list[str], what: str) -> str:
    return run(["chroot", str(rootfs), *argv], what, env=CHROOT_ENV)


def ensure_debootstrap() -> str:
    found = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], "apt-get update", env)
    run(["apt-get", "install", "-y", "-q", "debootstrap"], "apt-get install debootstrap", env)
    return shutil.which("debootstrap", path="/usr/sbin:/usr/bin") or "debootstrap"


def ensure_base(rootfs: Path, stamp: Path) -> bool:
    """Make the base in ``rootfs`` unless ``stamp`` says it is already the wanted one;
    True when it was made now."""
    mirror = debian_mirror(apt_sources())
    key = base_key(mirror)
    if rootfs.is_dir() and stamp.exists() and stamp.read_text() == key:
        return False
    debootstrap = ensure_debootstrap()
    stamp.unlink(missing_ok=True)
    fresh = rootfs.with_name(rootfs.name + ".new")
    for old in (fresh, rootfs):
        shutil.rmtree(old, ignore_errors=True)
    run(
        [
            debootstrap,
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(fresh),
            mirror,
        ],
        f"debootstrap {SUITE} from {mirror}",
    )
    for path in TRIM:
        shutil.rmtree(fresh / path, ignore_errors=True)
    shutil.rmtree(fresh / "var/lib/apt/lists", ignore_errors=True)
    (fresh / "var/lib/apt/lists/partial").mkdir(parents=True)
    fresh.rename(rootfs)
    stamp.write_text(key)
    return True


def python_version(rootfs: Path) -> str:
    """The rootfs's Python as major.minor, which the host's wheels must match."""
    out = in_rootfs(
        rootfs,
        ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        "python3 in the rootfs",
    )
    return out.strip()
