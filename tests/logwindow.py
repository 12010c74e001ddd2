"""The lines a log file holds for a time window, read from the end of the file.

The stack's logs grow for as long as the stack lives (hundreds of MB after a benchmark), while
a test's window is its last minutes: the file is read backwards, block by block, only until a
line older than the window shows up. A line without a timestamp (a traceback's continuation)
belongs to the stamped line above it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

# kuryr:          2026-12-04 17:07:49,187 INFO kuryr.domain.ports.pools: ...       (local time)
# neutron-server: 2026-12-04 17:07:54.442 6343 INFO neutron...        (local time)
# ovs, ovn:       2026-12-04T17:07:54.661Z|00690|binding|INFO|...     (UTC)
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)[.,](\d{3})(Z?)")

BLOCK = 64 * 1024
# How far back a read may go, whatever the window: a test's minutes fit many times over.
MOST_BYTES = 64 * 1024 * 1024


def stamp(line: str) -> float | None:
    """The POSIX time a log line starts with, or None for a line without one."""
    m = _STAMP.match(line)
    if m is None:
        return None
    day, clock, millis, utc = m.groups()
    when = datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S")
    if utc:
        when = when.replace(tzinfo=UTC)
    # A naive datetime's timestamp() is taken in local time, as Python and Neutron log it.
    return when.timestamp() + int(millis) / 1000


def window(lines: Iterable[str], start: float, end: float) -> list[str]:
    """The lines stamped within [start, end], each with its unstamped continuation lines."""
    kept: list[str] = []
    current: float | None = None
    for line in lines:
        current = stamp(line) or current
        if current is not None and start <= current <= end:
            kept.append(line)
    return kept


def _first_stamp(data: bytes) -> float | None:
    for raw in data.split(b"\n"):
        when = stamp(raw.decode(errors="replace"))
        if when is not None:
            return when
    return None


def read_window(
    path: Path, start: float, end: float, block: int = BLOCK, most: int = MOST_BYTES
) -> list[str]:
    """The lines of ``path`` within [start, end]; [] when the file cannot be read."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            pos = size
            chunks: list[bytes] = []
            while pos > 0 and size - pos < most:
                step = min(block, pos)
                pos -= step
                f.seek(pos)
                chunks.append(f.read(step))
                # The block's first line may be cut: judge by the lines after it.
                complete = chunks[-1].partition(b"\n")[2] if pos > 0 else chunks[-1]
                first = _first_stamp(complete)
                if first is not None and first < start:
                    break
    except OSError:
        return []
    data = b"".join(reversed(chunks))
    if pos > 0:
        data = data.partition(b"\n")[2]
    return window(data.decode(errors="replace").splitlines(), start, end)
