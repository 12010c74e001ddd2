"""The Kuryr daemon (``kuryr serve``) registered with Docker through its plugin socket.

``up`` restarts it when the kuryr package's code or its config is newer than its pidfile,
so that a test run always exercises the code in the tree; otherwise it is left alone."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from kuryr import unixhttp
from kuryr.stack import proc
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


def implemented() -> bool:
    return importlib.util.find_spec("kuryr.server") is not None


def newest_code_mtime() -> float:
    """The newest modification time among the daemon's code (the stack's own excluded)."""
    stack = PACKAGE / "stack"
    return max(
        (p.stat().st_mtime for p in PACKAGE.rglob("*.py") if stack not in p.parents),
        default=0.0,
    )


def activates() -> tuple[bool, str]:
    try:
        status, body = unixhttp.request(PLUGIN_SOCK, "POST", "/Plugin.Activate", b"", timeout=3)
    except OSError as exc:
        return False, f"{PLUGIN_SOCK}: {exc.strerror or exc}"
    if status != 200 or b"NetworkDriver" not in body:
        return False, f"Plugin.Activate answered {status}: {body[:80]!r}"
    return True, body.decode(errors="replace").strip()


class KuryrDaemon:
    name = "kuryr"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.pidfile = layout.pidfile("kuryr")
        self.config = layout.sub("kuryr.conf")

    @property
    def log(self) -> Path:
        return self.layout.log("kuryr")

    def _config_text(self) -> str:
        return f"""[DEFAULT]
socket = {PLUGIN_SOCK}
state_dir = {self.layout.sub("kuryr-state")}

[neutron]
auth_type = none
endpoint = {NEUTRON_URL}

[binding]
host = {hostname()}

[pool]
min = 20
max = 40
batch = 4
bookkeeping_delay = 1

[reconcile]
interval = 10
grace = 20
"""

    def _stale(self) -> bool:
        try:
            started = self.pidfile.stat().st_mtime
        except OSError:
            return True
        return max(newest_code_mtime(), self.config.stat().st_mtime) > started

    def start(self) -> None:
        if not implemented():
            return
        write_if_changed(self.config, self._config_text())
        pid = proc.running(self.pidfile, MARKER)
        if pid is not None and self._stale():
            proc.terminate(pid)
            pid = None
        if pid is None:
            if activates()[0]:
                raise StackError(
                    self.name, f"another Kuryr daemon already answers on {PLUGIN_SOCK}"
                )
            PLUGIN_SOCK.parent.mkdir(parents=True, exist_ok=True)
            # A killed daemon leaves its socket; nobody else may hold our plugin name.
            PLUGIN_SOCK.unlink(missing_ok=True)
            pid = proc.spawn(
                [executable(), "--config-file", str(self.config), "serve"], self.log, self.pidfile
            )
        started = pid

        def ready() -> bool:
            if not proc.alive(started):
                raise StackError(self.name, "kuryr serve exited during start", self.log)
            return activates()[0]

        if not proc.wait_for(ready, START_TIMEOUT, 0.1):
            raise StackError(self.name, f"{PLUGIN_SOCK} does not answer Plugin.Activate", self.log)

    def stop(self) -> None:
        proc.stop_pidfile(self.pidfile, MARKER)
        PLUGIN_SOCK.unlink(missing_ok=True)

    def check(self) -> tuple[bool, str]:
        if not implemented():
            return False, "absent: kuryr.server is not written yet"
        if proc.running(self.pidfile, MARKER) is None:
            return False, "kuryr serve is not running"
        ok, detail = activates()
        return ok, f"unix://{PLUGIN_SOCK} answers Plugin.Activate" if ok else detail

    def purge(self) -> None:
        """Its state lives in the stack directory."""
