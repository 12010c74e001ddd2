"""What a failing e2e or integration test leaves behind for whoever reads the CI output.

At failure time (the stack may be purged by later tests, ports deleted by teardown), it
writes into one directory per failure, under ``$KURYR_EVIDENCE_DIR`` or ``test-evidence/``
at the repository's top (git-ignored, outside the stack directory):

- ``failure.txt``: the test, its time window and pytest's failure text;
- ``<log>``: the lines of the stack's kuryr, neutron-server, ovn-controller and ovs-vswitchd
  logs from the test's window;
- ``ovn.txt``: the OVN Northbound Logical_Switch_Port and Southbound Port_Binding rows of
  every UUID the failure text names (Neutron names both after the port's UUID).

pytest's terminal summary then prints the directory and a bounded excerpt.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from kuryr.stack.layout import NB_PORT, SB_PORT, Layout
from tests.logwindow import read_window

REPO = Path(__file__).resolve().parent.parent
LOGS = ("kuryr.log", "neutron-server.log", "ovn-controller.log", "ovs-vswitchd.log")
# Directories whose tests run against the stack, the only ones with evidence to keep.
STACK_TESTS = ("e2e", "integration")
# Log lines stamped just before a test's setup or after its failure still belong to it:
# Neutron and OVN finish what a request started after the answer.
BEFORE = 1.0
AFTER = 2.0
MOST_UUIDS = 12
MOST_LINES = 20000
OVSDB_TIMEOUT = 10
# The terminal summary's bounds: last lines per log, characters per line, tests in detail.
EXCERPT_LINES = 6
EXCERPT_WIDTH = 200
EXCERPT_TESTS = 5

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def uuids(text: str, most: int = MOST_UUIDS) -> list[str]:
    """The distinct UUIDs ``text`` names, lower-cased, in order of first mention."""
    seen: dict[str, None] = {}
    for m in _UUID.finditer(text):
        seen.setdefault(m.group(0).lower())
        if len(seen) == most:
            break
    return list(seen)


def base_dir() -> Path:
    return Path(os.environ.get("KURYR_EVIDENCE_DIR") or REPO / "test-evidence")


def run_dir(base: Path, began: float) -> Path:
    """One directory per pytest run, named after its start (UTC) and pid."""
    return base / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(began))}-{os.getpid()}"


def dir_name_of(nodeid: str) -> str:
    return _UNSAFE.sub("_", nodeid).strip("_")[:150]


def is_stack_test(path: Path) -> bool:
    try:
        parts = path.relative_to(REPO / "tests").parts
    except ValueError:
        return False
    return len(parts) > 1 and parts[0] in STACK_TESTS


@dataclass
class LogSlice:
    name: str
    lines: list[str]
    dropped: int = 0


@dataclass
class OvnRows:
    """``find``'s output (rows start with ``_uuid``), or why it could not run."""

    uuid: str
    nb: str
    sb: str

    def found(self) -> str:
        nb = "Logical_Switch_Port" if self.nb.startswith("_uuid") else "no NB row"
        sb = "Port_Binding" if self.sb.startswith("_uuid") else "no SB row"
        return f"{nb}, {sb}"


@dataclass
class Evidence:
    nodeid: str
    directory: Path
    logs: list[LogSlice] = field(default_factory=list)
    ovn: list[OvnRows] = field(default_factory=list)
    error: str = ""


def _ovsdb(argv: list[str]) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=OVSDB_TIMEOUT + 5, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"({argv[0]} failed: {exc})"
    if done.returncode != 0:
        return f"({argv[0]} exited {done.returncode}: {done.stderr.strip()})"
    return done.stdout.strip()


def _find(ctl: str, port: int, table: str, condition: str) -> str:
    return _ovsdb(
        [ctl, f"--db=tcp:127.0.0.1:{port}", f"--timeout={OVSDB_TIMEOUT}", "find", table, condition]
    )


def ovn_rows(uuid: str) -> OvnRows:
    return OvnRows(
        uuid,
        _find("ovn-nbctl", NB_PORT, "Logical_Switch_Port", f"name={uuid}"),
        _find("ovn-sbctl", SB_PORT, "Port_Binding", f"logical_port={uuid}"),
    )


def log_slice(logs: Path, name: str, start: float, end: float) -> LogSlice:
    lines = read_window(logs / name, start, end)
    dropped = max(0, len(lines) - MOST_LINES)
    return LogSlice(name, lines[dropped:], dropped)


def collect(
    nodeid: str, failure: str, start: float, end: float, directory: Path, logs: Path
) -> Evidence:
    """Read the window's log lines and the named ports' OVN rows; write them to
    ``directory``."""
    start, end = start - BEFORE, end + AFTER
    found = Evidence(nodeid, directory)
    found.logs = [log_slice(logs, name, start, end) for name in LOGS]
    found.ovn = [ovn_rows(u) for u in uuids(failure)]
    try:
        write(found, failure, start, end)
    except OSError as exc:
        found.error = f"evidence not written: {exc}"
    return found


def _utc(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when % 1 * 1000):03d}Z"


def write(found: Evidence, failure: str, start: float, end: float) -> None:
    found.directory.mkdir(parents=True, exist_ok=True)
    (found.directory / "failure.txt").write_text(
        f"{found.nodeid}\nwindow {_utc(start)} .. {_utc(end)}\n\n{failure}\n"
    )
    for piece in found.logs:
        head = [f"({piece.dropped} earlier lines of the window left out)"] if piece.dropped else []
        (found.directory / piece.name).write_text("\n".join([*head, *piece.lines, ""]))
    rows = [
        f"== {r.uuid}\n-- NB Logical_Switch_Port name={r.uuid}\n{r.nb or '(no row)'}\n"
        f"-- SB Port_Binding logical_port={r.uuid}\n{r.sb or '(no row)'}\n"
        for r in found.ovn
    ]
    (found.directory / "ovn.txt").write_text("\n".join(rows) or "(the failure names no UUID)\n")


def excerpt(found: Evidence) -> list[str]:
    """A bounded summary: per log its line count and last lines, per UUID which rows exist."""
    out = [f"{found.nodeid}: {found.directory}"]
    if found.error:
        out.append(f"  {found.error}")
    for piece in found.logs:
        out.append(f"  {piece.name}: {len(piece.lines) + piece.dropped} lines in the window")
        out += [f"    {line[:EXCERPT_WIDTH]}" for line in piece.lines[-EXCERPT_LINES:]]
    out += [f"  {r.uuid}: {r.found()}" for r in found.ovn]
    return out


def summary(found: list[Evidence]) -> list[str]:
    out: list[str] = []
    for piece in found[:EXCERPT_TESTS]:
        out += excerpt(piece)
    out += [f"{f.nodeid}: {f.directory}" for f in found[EXCERPT_TESTS:]]
    return out


def stack_logs() -> Path:
    return Layout.resolve(None).logs
