"""A private dockerd for one test: its own socket, data root, exec root and containerd, on
the shared OVS/Neutron, so a test may stop and start it without touching the stack's dockerd.

It reaches a private Kuryr daemon through a spec file named after a driver of its own
(``/etc/docker/plugins/<driver>.spec``): the stack's dockerd never asks for that name.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kuryr.stack.docker import ensure_image, ping
from tests.e2e.helpers import run

SPEC_DIR = Path("/etc/docker/plugins")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


@dataclass
class PrivateDockerd:
    root: Path
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def containerd_pidfile(self) -> Path:
        return self.root / "exec" / "containerd" / "containerd.pid"

    def docker(self, *args: str, check: bool = True) -> str:
        argv = ["docker", "-H", f"unix://{self.socket}", *args]
        return run(argv, check=check).stdout.strip()

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while not ping(self.socket):
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "dockerd never answered\n" + self.log.read_text()
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM, as an operator stops dockerd; with live-restore its containers stay."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _stop_containerd(self) -> None:
        """The containerd this dockerd started (live-restore leaves it running)."""
        try:
            pid = int(self.containerd_pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)

    def remove_everything(self) -> None:
        """Containers and networks first (so the driver releases what they hold), then the
        daemons themselves."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        for container in self.docker("ps", "-aq").split():
            self.docker("rm", "-f", container, check=False)
        for network in self.docker("network", "ls", "-q", "--filter", "type=custom").split():
            self.docker("network", "rm", network, check=False)
        self.stop()
        self._stop_containerd()


@contextmanager
def private_dockerd(driver: str, plugin_socket: Path) -> Iterator[PrivateDockerd]:
    """A live-restore dockerd with the busybox image, whose ``driver`` is the Kuryr daemon
    on ``plugin_socket``."""
    spec = SPEC_DIR / f"{driver}.spec"
    # Short: the containerd socket under the exec root must fit a unix socket path.
    root = Path(tempfile.mkdtemp(prefix="kuryr-lr-", dir="/tmp"))
    argv = [
        "dockerd",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}",
        f"--host=unix://{root / 'docker.sock'}",
        "--live-restore",
        "--storage-driver=vfs",
        "--iptables=false",
        "--ip-forward=false",
        "--bridge=none",
    ]
    dockerd = PrivateDockerd(root, argv)
    SPEC_DIR.mkdir(parents=True, exist_ok=True)
    spec.write_text(f"unix://{plugin_socket}\n")
    try:
        dockerd.start()
        ensure_image(dockerd.socket, "private dockerd", dockerd.log)
        yield dockerd
    finally:
        try:
            dockerd.remove_everything()
        finally:
            spec.unlink(missing_ok=True)
            _unmount_under(root)
            shutil.rmtree(root, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    """dockerd bind-mounts its data root onto itself and leaves it mounted on exit."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        run(["umount", point], check=False)
