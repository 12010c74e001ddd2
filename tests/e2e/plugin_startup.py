"""How long the managed plugin takes from its start to a socket that answers, timed while
dockerd starts it.

dockerd 20.10 starts each enabled managed plugin before it restores containers, then dials
the plugin's socket 0.5 s after starting it and again every 3 s, three more times: a
socket not listening by the fourth dial (9.5 s after the start) makes dockerd disable the
plugin (at 12.5 s), and containers on its networks then fail to start
(moby plugin/manager_linux.go, ``pluginPostStart``).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kuryr.stack import proc
from kuryr.stack.daemon import activates

# The last dial's time after the plugin's start: listening later is too late.
LAST_DIAL = 9.5
POLL = 0.02


def boottime() -> float:
    """Seconds since boot, the clock /proc/<pid>/stat's start times count on."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def started_at(pid: int) -> float:
    """When ``pid`` was forked, in seconds since boot (to 1/CLK_TCK)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Field 22 of stat; the split starts at field 3.
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def plugin_process(plugin_id: str) -> int | None:
    """The plugin's process: the child of the containerd shim running its task."""
    for shim in proc.find("containerd-shim"):
        argv = proc.cmdline(shim).split()
        if "-id" in argv and argv[argv.index("-id") + 1] == plugin_id:
            children = proc.descendants(shim)
            return children[0] if children else None
    return None


@dataclass(frozen=True)
class Startup:
    """Seconds since boot: when dockerd was asked to start, when the plugin's process was
    forked, when its socket first answered ``Plugin.Activate``."""

    dockerd: float
    process: float
    ready: float

    @property
    def plugin_seconds(self) -> float:
        return self.ready - self.process

    @property
    def dockerd_seconds(self) -> float:
        return self.ready - self.dockerd

    def line(self) -> str:
        return (
            f"managed plugin: socket ready {self.plugin_seconds:.2f} s after its process "
            f"started, {self.dockerd_seconds:.2f} s after dockerd was started "
            f"(dockerd's last dial: {LAST_DIAL} s after the plugin's start)"
        )


class SocketWatch:
    """Polls the plugin's socket from a thread until it answers; started before dockerd is,
    so that the first answer is seen within ``POLL``."""

    def __init__(self, plugin_id: str, sock: Path, timeout: float = 60.0) -> None:
        self.plugin_id = plugin_id
        self.sock = sock
        self.timeout = timeout
        self.began = boottime()
        self.ready: float | None = None
        self.process: float | None = None
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _poll(self) -> None:
        while boottime() - self.began < self.timeout:
            if activates(self.sock)[0]:
                self.ready = boottime()
                pid = plugin_process(self.plugin_id)
                self.process = started_at(pid) if pid is not None else None
                return
            time.sleep(POLL)

    def result(self) -> Startup:
        self._thread.join(self.timeout)
        assert self.ready is not None, f"{self.sock} never answered within {self.timeout:.0f} s"
        assert self.process is not None, f"no process for plugin {self.plugin_id}"
        return Startup(self.began, self.process, self.ready)
