"""dockerd on the host socket only, its data in the stack directory, and the offline image
``kuryr/busybox`` built from busybox-static."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

from kuryr.backends import unixhttp
from kuryr.stack import netdev, netstore, proc
from kuryr.stack.errors import StackError
from kuryr.stack.layout import DOCKER_SOCK, Layout

MARKER = "dockerd"
IMAGE = "kuryr/busybox"
BUSYBOX = Path("/bin/busybox")
BRIDGE = "docker0"
EXEC_ROOT = Path("/var/run/docker")


def ping(sock: Path = DOCKER_SOCK) -> bool:
    try:
        status, body = unixhttp.request(sock, "GET", "/_ping", timeout=2)
    except OSError:
        return False
    return status == 200 and body == b"OK"


def busybox_rootfs_tar() -> bytes:
    """A tar of a rootfs: /bin/busybox, its applets as symlinks, passwd, group and /tmp."""
    applets = subprocess.run(
        [str(BUSYBOX), "--list-full"], capture_output=True, check=True, timeout=10
    ).stdout.decode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "proc", "sys"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", BUSYBOX.read_bytes(), 0o755)
        add_file(
            "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
        )
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        for applet in sorted(set(applets.split())):
            if applet == "bin/busybox":
                continue
            link = tarfile.TarInfo(applet)
            link.type, link.linkname = tarfile.SYMTYPE, "/bin/busybox"
            tar.addfile(link)
    return buf.getvalue()


def ensure_image(sock: Path, component: str, log: Path) -> None:
    """Import the busybox image into the dockerd on ``sock`` unless it has it."""
    try:
        status, _ = unixhttp.request(sock, "GET", f"/images/{IMAGE}/json")
    except OSError as exc:
        raise StackError(component, f"dockerd stopped answering: {exc}", log) from exc
    if status == 200:
        return
    proc.run(
        component,
        ["docker", "-H", f"unix://{sock}", "import", "-c", 'CMD ["/bin/sh"]', "-", IMAGE],
        timeout=120,
        input_bytes=busybox_rootfs_tar(),
    )


class Docker:
    name = "dockerd"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.pidfile = layout.pidfile("dockerd")
        self.driver_file = layout.sub("docker-storage-driver")

    @property
    def log(self) -> Path:
        return self.layout.log("dockerd")

    def _argv(self, driver: str) -> list[str]:
        # No iptables: Docker would set the FORWARD policy to DROP, changing the host,
        # and traffic through OVS br-int never passes the Linux bridge anyway.
        return [
            "dockerd",
            f"--storage-driver={driver}",
            f"--data-root={self.layout.sub('docker')}",
            f"--exec-root={EXEC_ROOT}",
            f"--pidfile={self.pidfile}",
            f"--host=unix://{DOCKER_SOCK}",
            "--iptables=false",
            "--ip-forward=false",
        ]

    def start(self) -> None:
        pid = proc.running(self.pidfile, MARKER)
        if pid is None:
            if ping():
                raise StackError(self.name, f"another dockerd already answers on {DOCKER_SOCK}")
            self._clean_stale()
            drivers = [self.driver_file.read_text().strip()] if self.driver_file.exists() else []
            for driver in drivers or ["overlay2", "vfs"]:
                if self._start_with(driver):
                    self.driver_file.write_text(driver + "\n")
                    break
            else:
                raise StackError(self.name, "dockerd did not start", self.log)
        ensure_image(DOCKER_SOCK, self.name, self.log)

    def _clean_stale(self) -> None:
        DOCKER_SOCK.unlink(missing_ok=True)
        self.pidfile.unlink(missing_ok=True)
        containerd = EXEC_ROOT / "containerd" / "containerd.pid"
        proc.stop_pidfile(containerd, "containerd")

    @property
    def network_store(self) -> Path:
        return self.layout.sub("docker") / "network" / "files" / "local-kv.db"

    def _start_with(self, driver: str) -> bool:
        since = self._log_size()
        if self._spawn(driver):
            return True
        return self._repair_network_store(since) and self._spawn(driver)

    def _spawn(self, driver: str) -> bool:
        pid = proc.spawn(self._argv(driver), self.log, None)
        if proc.wait_for(lambda: ping() or not proc.alive(pid), 30, 0.1) and ping():
            return True
        proc.terminate(pid)
        return False

    def _log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except FileNotFoundError:
            return 0

    def _repair_network_store(self, since: int) -> bool:
        """After dockerd died of the reservePools panic (a network removal it did not
        finish), repair its network store; True when something was repaired."""
        with open(self.log, "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        if not netstore.panicked_in_reserve_pools(text) or not self.network_store.exists():
            return False
        try:
            repairs = netstore.repair_file(self.network_store)
        except netstore.StoreError as exc:
            raise StackError(self.name, f"{self.network_store}: {exc}", self.log) from exc
        if not repairs:
            return False
        names = ", ".join(f"{r.name} ({r.network_id[:12]})" for r in repairs)
        line = (
            f"dockerd panicked on networks it had not finished removing: {names}; "
            f"moved them to the null IPAM in {self.network_store} and starting it again"
        )
        print(f"kuryr stack: {line}", file=sys.stderr)
        with open(self.log, "a") as log:
            log.write(f"kuryr stack: {line}\n")
        return True

    def stop(self) -> None:
        pid = proc.running(self.pidfile, MARKER)
        children = proc.descendants(pid) if pid is not None else []
        if pid is not None:
            # dockerd stops its containers and its containerd on SIGTERM.
            proc.terminate(pid, timeout=30)
        # What a killed dockerd left behind: containerd, shims and their containers.
        for orphan in proc.find(str(EXEC_ROOT / "containerd")):
            children += [orphan, *proc.descendants(orphan)]
        for child in children:
            proc.terminate(child, timeout=5)
        self.pidfile.unlink(missing_ok=True)
        netdev.delete_links([BRIDGE])

    def check(self) -> tuple[bool, str]:
        if proc.running(self.pidfile, MARKER) is None:
            return False, "dockerd is not running"
        if not ping():
            return False, f"dockerd does not answer on {DOCKER_SOCK}"
        try:
            status, _ = unixhttp.request(DOCKER_SOCK, "GET", f"/images/{IMAGE}/json")
        except OSError as exc:
            return False, str(exc)
        if status != 200:
            return False, f"image {IMAGE} is missing"
        return True, f"unix://{DOCKER_SOCK}, image {IMAGE}"

    def purge(self) -> None:
        """Its data root lives in the stack directory."""
