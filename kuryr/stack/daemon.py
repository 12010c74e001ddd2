"""The Kuryr daemon (``kuryr serve``) registered with Docker through its plugin socket.

``up`` restarts it when the kuryr package's code or its config is newer than its pidfile,
so that a test run always exercises the code in the tree; otherwise it is left alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from kuryr.backends import unixhttp
from kuryr.stack import hostplan, proc
from kuryr.stack.errors import StackError
from kuryr.stack.layout import NEUTRON_URL, PLUGIN_SOCK, Layout, write_if_changed
from kuryr.stack.ovs import hostname

MARKER = "serve"
START_TIMEOUT = 20.0
PACKAGE = Path(__file__).resolve().parent.parent


def executable() -> str:
    beside = Path(sys.executable).parent / "kuryr"
    if beside.exists():
        return str(beside)
    return shutil.which("kuryr") or str(beside)


def log_size(log: Path) -> int:
    try:
        return log.stat().st_size
    except OSError:
        return 0


def last_line_since(log: Path, offset: int) -> str:
    """The last non-blank line written to ``log`` after ``offset`` (the log is appended to
    by every start, so older lines would blame an earlier run); "" when there is none."""
    try:
        with open(log, "rb") as f:
            f.seek(max(offset, log_size(log) - 4096))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def newest_code_mtime() -> float:
    """The newest modification time among the daemon's code (the stack's own excluded)."""
    stack = PACKAGE / "stack"
    return max(
        (p.stat().st_mtime for p in PACKAGE.rglob("*.py") if stack not in p.parents),
        default=0.0,
    )


def stale(pid: int, pidfile: Path, config: Path) -> bool:
    """A daemon of another checkout's code (``up`` from another clone), or started (its
    pidfile written) before its code or config last changed."""
    if executable() not in proc.cmdline(pid):
        return True
    try:
        started = pidfile.stat().st_mtime
    except OSError:
        return True
    return max(newest_code_mtime(), config.stat().st_mtime) > started


def activates(sock: Path = PLUGIN_SOCK) -> tuple[bool, str]:
    try:
        status, body = unixhttp.request(sock, "POST", "/Plugin.Activate", b"", timeout=3)
    except OSError as exc:
        return False, f"{sock}: {exc.strerror or exc}"
    if status != 200 or b"NetworkDriver" not in body:
        return False, f"Plugin.Activate answered {status}: {body[:80]!r}"
    return True, body.decode(errors="replace").strip()


def child_answers(sock: Path, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether a ``kuryr serve`` this process started answers Plugin.Activate on ``sock``
    within ``timeout``; False as soon as it has exited. Only an answer says it serves: the
    socket's file exists from bind(), before listen()."""
    answered = False

    def ready() -> bool:
        nonlocal answered
        answered = activates(sock)[0]
        return answered or process.poll() is not None

    proc.wait_for(ready, timeout, 0.05)
    return answered


class KuryrDaemon:
    name = "kuryr"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.pidfile = layout.pidfile("kuryr")
        self.config = layout.sub("kuryr.conf")

    @property
    def log(self) -> Path:
        return self.layout.log("kuryr")

    @property
    def state_dir(self) -> Path:
        return self.layout.sub("kuryr-state")

    def config_text(
        self, socket: Path | None = None, state_dir: Path | None = None, neutron: bool = True
    ) -> str:
        """The stack's Kuryr config; the managed plugin names its own paths inside it, and
        gives its Neutron keys as the plugin's settings instead (``neutron=False``)."""
        # With simulated hosts, containers here talk TCP to containers there (kuryr.stack.hosts).
        offload = "false" if hostplan.hosts_dir(self.layout.root).is_dir() else "true"
        keys = f"auth_type = none\nendpoint = {NEUTRON_URL}\n" if neutron else ""
        return f"""[DEFAULT]
socket = {socket or self.layout.plugin_sock}
state_dir = {state_dir or self.state_dir}

[neutron]
{keys}
[binding]
host = {hostname()}
tx_checksum_offload = {offload}

[pool]
min = 2
max = 40
batch = 4
initial = 4
window = 10
idle_after = 300
bookkeeping_delay = 1

[reconcile]
interval = 10
grace = 20
"""

    def start(self) -> None:
        write_if_changed(self.config, self.config_text())
        sock = self.layout.plugin_sock
        offset = log_size(self.log)
        pid = proc.running(self.pidfile, MARKER)
        if pid is not None and stale(pid, self.pidfile, self.config):
            proc.terminate(pid)
            pid = None
        if pid is None:
            if activates(sock)[0]:
                raise StackError(self.name, f"another Kuryr daemon already answers on {sock}")
            sock.parent.mkdir(parents=True, exist_ok=True)
            # A killed daemon leaves its socket; nobody else may hold our plugin name.
            sock.unlink(missing_ok=True)
            pid = proc.spawn(
                [executable(), "--config-file", str(self.config), "serve"], self.log, self.pidfile
            )
        started = pid

        def ready() -> bool:
            if not proc.alive(started):
                raise self._failed("the Kuryr daemon (kuryr serve) exited during start", offset)
            return activates(sock)[0]

        if not proc.wait_for(ready, START_TIMEOUT, 0.1):
            raise self._failed(
                f"the Kuryr daemon (kuryr serve) does not answer Plugin.Activate on {sock} "
                f"within {START_TIMEOUT:.0f} s",
                offset,
            )

    def _failed(self, what: str, offset: int) -> StackError:
        """``what`` went wrong, with the last line the daemon logged since ``offset``."""
        said = last_line_since(self.log, offset)
        return StackError(self.name, f"{what}: {said}" if said else what, self.log)

    def stop(self) -> None:
        proc.stop_pidfile(self.pidfile, MARKER)
        self.layout.plugin_sock.unlink(missing_ok=True)

    def check(self) -> tuple[bool, str]:
        if proc.running(self.pidfile, MARKER) is None:
            return False, "kuryr serve is not running"
        ok, detail = activates(self.layout.plugin_sock)
        return ok, f"unix://{self.layout.plugin_sock} answers Plugin.Activate" if ok else detail

    def purge(self) -> None:
        """Its state lives in the stack directory."""
