"""Processes the bench starts and stops by PID (pidfiles), and daemons' peak memory."""

from __future__ import annotations

from pathlib import Path

# Started, found and stopped the same way as the stack's daemons.
from kuryr.stack.proc import alive as alive
from kuryr.stack.proc import read_pid as read_pid
from kuryr.stack.proc import running as running
from kuryr.stack.proc import spawn as spawn
from kuryr.stack.proc import stop_pidfile as stop_pidfile
from kuryr.stack.proc import terminate as terminate
from kuryr.stack.proc import wait_for as wait_for


def argv(pid: int) -> list[str]:
    """The process's argv, to start it again the same way ([] when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


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


def memory_kib(pid: int) -> tuple[int, int] | None:
    """(PSS, RSS) of ``pid`` in KiB, or None when it is gone. PSS shares each page among
    the processes mapping it, so the PSS of several processes adds up without counting
    their shared libraries twice."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    return parse_rollup(rollup)


def parse_rollup(text: str) -> tuple[int, int] | None:
    fields = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Pss", "Rss") and rest.split():
            fields[name] = int(rest.split()[0])
    if "Pss" not in fields or "Rss" not in fields:
        return None
    return fields["Pss"], fields["Rss"]


def comm(pid: int) -> str:
    """The process's command name ("" when it is gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
