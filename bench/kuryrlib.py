"""The reference implementation, kuryr-libnetwork 18.0.0 from PyPI, in its own venv,
registered with Docker as network and IPAM driver ``kuryrlib`` and run against the stack's
Neutron with noauth. It plugs veths into br-int with kuryr-lib's ``ovs`` binding script.
The migration test runs the same install under Kuryr's own driver name (``kuryr``), on
another address, with files of its own (:meth:`Reference.as_driver`).

Its default subnetpools are ``kuryrlib`` / ``kuryrlib6``, created here: on failures it has
been seen deleting its default pool, which must never be Kuryr's ``kuryr`` pool."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import neutron, procs

VERSION = "18.0.0"
DRIVER = "kuryrlib"
# dockerd keeps the first address it resolved for a plugin until it restarts: never change.
LISTEN_URL = "http://127.0.0.1:23750"
SPEC_DIR = Path("/usr/lib/docker/plugins")
POOL_V4 = ("kuryrlib", "10.250.0.0/16", 24)
POOL_V6_NAME = "kuryrlib6"
MARKER = "kuryr-server"


@dataclass(frozen=True)
class Reference:
    root: Path
    driver: str = DRIVER
    url: str = LISTEN_URL

    @classmethod
    def default(cls) -> Reference:
        return cls(Path(os.environ.get("KURYR_BENCH_DIR", "/var/lib/kuryr-bench")))

    def as_driver(self, driver: str, url: str) -> Reference:
        """The same install serving Docker as ``driver`` on ``url`` (its own config, pidfile
        and log; the venv is shared)."""
        return Reference(self.root, driver, url)

    @property
    def name(self) -> str:
        return DRIVER if self.driver == DRIVER else f"{DRIVER}-as-{self.driver}"

    @property
    def venv(self) -> Path:
        return self.root / "kuryrlib-venv"

    @property
    def server(self) -> Path:
        return self.venv / "bin" / "kuryr-server"

    @property
    def config(self) -> Path:
        return self.root / f"{self.name}.conf"

    @property
    def pidfile(self) -> Path:
        return self.root / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.root / f"{self.name}.log"

    @property
    def spec_file(self) -> Path:
        """Where dockerd looks the driver name up (after ``<name>.sock`` in /run/docker/plugins)."""
        return SPEC_DIR / self.driver / f"{self.driver}.spec"

    def installed_version(self) -> str | None:
        done = subprocess.run(
            [str(self.venv / "bin" / "python"), "-m", "pip", "show", "kuryr-libnetwork"],
            capture_output=True,
            text=True,
            check=False,
        )
        for line in done.stdout.splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
        return None

    def install(self) -> None:
        """Create the venv and install the pinned release unless it is already there."""
        if self.server.exists() and self.installed_version() == VERSION:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        subprocess.run(
            [
                str(self.venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                f"kuryr-libnetwork=={VERSION}",
            ],
            check=True,
        )

    def ensure_pools(self) -> None:
        name, prefix, length = POOL_V4
        neutron.ensure_subnetpool(name, prefix, length)
        neutron.ensure_subnetpool(POOL_V6_NAME, _random_ula(), 64)

    def write_config(self, neutron_endpoint: str) -> None:
        self.config.write_text(
            f"""[DEFAULT]
bindir = {self.venv / "libexec" / "kuryr"}
kuryr_uri = {self.url}
capability_scope = local
debug = false

[neutron]
auth_type = none
endpoint = {neutron_endpoint}
default_subnetpool_v4 = {POOL_V4[0]}
default_subnetpool_v6 = {POOL_V6_NAME}
"""
        )

    def register(self) -> None:
        self.spec_file.parent.mkdir(parents=True, exist_ok=True)
        if not self.spec_file.exists() or self.spec_file.read_text().strip() != self.url:
            self.spec_file.write_text(self.url + "\n")

    def unregister(self) -> None:
        """Remove the spec file (and its directory once empty): the name is free again."""
        self.spec_file.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.spec_file.parent.rmdir()

    def pid(self) -> int | None:
        return procs.running(self.pidfile, MARKER)

    def start(self, neutron_endpoint: str) -> int:
        """(Re)start the daemon talking to ``neutron_endpoint``; returns its PID."""
        self.stop()
        self.write_config(neutron_endpoint)
        self.register()
        pid = procs.spawn(
            [str(self.server), "--config-file", str(self.config)], self.log, self.pidfile
        )
        if not procs.wait_for(
            lambda: _answers(self.url) or not procs.alive(pid), 60, 0.2
        ) or not _answers(self.url):
            raise RuntimeError(f"kuryr-libnetwork did not start; see {self.log}")
        return pid

    def stop(self) -> None:
        procs.stop_pidfile(self.pidfile, MARKER)


def _answers(url: str) -> bool:
    req = urllib.request.Request(url + "/Plugin.Activate", data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _random_ula() -> str:
    return str(ipaddress.IPv6Network(((0xFD << 120) | (secrets.randbits(40) << 80), 48)))
