"""Who listens on a TCP port: read from /proc so a port taken by someone else is reported
with its owner instead of surfacing later as a daemon's obscure bind error."""

from __future__ import annotations

from pathlib import Path

from kuryr.stack import proc

_LISTEN = "0A"


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == _LISTEN:
                inodes.add(fields[9])
    return inodes


def listener(port: int) -> int | None:
    """PID of a process listening on ``port`` (any address), or None when the port is free.

    Returns 0 when the port is taken but its owner cannot be seen."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if str(fd.readlink()) in targets:
                    return int(entry.name)
            except OSError:
                continue
    return 0


def describe(pid: int) -> str:
    return f"pid {pid} ({proc.cmdline(pid)[:80]})" if pid else "an unknown process"
