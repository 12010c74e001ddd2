"""Time windows of the stack's log formats, read backwards from the end of the file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.logwindow import read_window, stamp, window

KURYR = (
    "2026-12-04 17:07:49,187 INFO kuryr.domain.ports.pools: network 43d8: 8 pool port(s) deleted"
)
NEUTRON = "2026-12-04 17:07:54.442 6343 INFO neutron.db.ovn_revision_numbers_db [None req-8b] ok"
OVN = "2026-12-04T17:07:54.661Z|00690|binding|INFO|Setting lport d40e down in Southbound"
OVS = "2026-12-04T17:07:54.624Z|00258|bridge|INFO|bridge br-int: deleted interface tapd40e"


def local(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def utc(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()


def test_each_format_has_its_stamp() -> None:
    assert stamp(KURYR) == pytest.approx(local("2026-12-04 17:07:49.187"))
    assert stamp(NEUTRON) == pytest.approx(local("2026-12-04 17:07:54.442"))
    assert stamp(OVN) == pytest.approx(utc("2026-12-04 17:07:54.661"))
    assert stamp(OVS) == pytest.approx(utc("2026-12-04 17:07:54.624"))


@pytest.mark.parametrize(
    "line",
    ["Traceback (most recent call last):", "  File x", "", "2026-12-04", "17:07:49,187 INFO"],
)
def test_lines_without_a_leading_stamp_have_none(line: str) -> None:
    assert stamp(line) is None


def lines_at(*seconds: int, traceback_after: int | None = None) -> list[str]:
    out = []
    for s in seconds:
        out.append(f"2026-12-04T10:00:{s:02d}.000Z|{s:05d}|x|INFO|line {s}")
        if s == traceback_after:
            out += ["Traceback (most recent call last):", "  ValueError: boom"]
    return out


def t(second: int) -> float:
    return utc("2026-12-04 10:00:00.000") + second


def test_window_keeps_stamped_lines_inside_and_their_continuations() -> None:
    lines = lines_at(1, 2, 3, 4, 5, traceback_after=3)
    assert window(lines, t(2), t(4)) == [
        lines[1],
        lines[2],
        "Traceback (most recent call last):",
        "  ValueError: boom",
        lines[5],
    ]


def test_continuations_of_a_line_before_the_window_are_left_out() -> None:
    lines = ["  orphan continuation", *lines_at(1, 2, traceback_after=1)]
    assert window(lines, t(2), t(9)) == [lines[-1]]
    assert window(lines, t(5), t(9)) == []


def test_read_window_stops_at_the_first_block_older_than_the_window(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    lines = lines_at(*range(60), traceback_after=50)
    log.write_text("\n".join(lines) + "\n")
    # Small blocks: many reads, lines cut at block edges.
    assert read_window(log, t(48), t(52), block=100) == window(lines, t(48), t(52))
    assert read_window(log, t(0), t(59), block=100) == lines
    assert read_window(log, t(70), t(80), block=100) == []


def test_read_window_reads_no_further_back_than_it_may(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    lines = lines_at(*range(60))
    log.write_text("\n".join(lines) + "\n")
    # The last 500 bytes hold about 8 whole lines; the window asks for all 60.
    kept = read_window(log, t(0), t(59), block=100, most=500)
    assert kept == lines[-len(kept) :] and 5 < len(kept) < 12


def test_an_unreadable_log_has_no_lines(tmp_path: Path) -> None:
    assert read_window(tmp_path / "absent.log", 0, 1) == []
