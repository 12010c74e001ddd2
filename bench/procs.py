"""Processes the bench starts and stops by PID (pidfiles), and daemons' peak memory."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

# Started and read the same way as the stack's daemons.
from kuryr.stack.proc import read_pid
from kuryr.stack.proc import spawn as spawn


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def running(pidfile: Path, marker: str) -> int | None:
    """The pidfile's PID when that process lives and its argv mentions ``marker`` (a stale
    pidfile whose PID was reused by something else is ignored)."""
    pid = read_pid(pidfile)
    if pid is None or not alive(pid) or marker not in " ".join(cmdline(pid)):
        return None
    return pid


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_for(lambda: not alive(pid), wait):
            return


def stop_pidfile(pidfile: Path, marker: str) -> None:
    pid = running(pidfile, marker)
    if pid is not None:
        terminate(pid)
    pidfile.unlink(missing_ok=True)


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM (peak resident set) of ``pid`` in KiB, or None when it cannot be read."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return parse_vmhwm(status)


def parse_vmhwm(status: str) -> int | None:
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None
