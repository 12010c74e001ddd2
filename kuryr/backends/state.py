"""Local durable state: what this host made and knows, so the start path reads nothing remote.

One SQLite file in ``state_dir`` (``kuryr.db``), in WAL mode with ``synchronous=NORMAL``: a
commit is an append to the log without fsync, so it survives the daemon's crash (the case that
matters: SIGKILL, OOM) but not a power loss, and costs tens of microseconds. Calls are made on
the event loop's thread on purpose: each one is short, and a check-then-write (taking a pool
port) is then atomic with respect to every other request without a lock.

Tables: ``networks`` (Docker network -> Neutron network and subnets), ``endpoints`` (Docker
endpoint -> its port), ``pool_ports`` (pre-created ports and whether they are free),
``pools`` (per-subnet pool settings), ``journal`` (bookkeeping writes owed to Neutron),
``views`` (the bookkeeping fields Neutron is believed to hold), ``removals`` (networks Docker
deleted whose removal from Neutron is not finished), ``release_markers`` (addresses whose
port DeleteEndpoint already released, so dockerd's later ReleaseAddress must take nothing) and
``published`` (the floating IPs an endpoint's ``-p`` ports are, or are being, forwarded from,
and where each is reachable: kuryr.domain.published), ``intents`` (creates whose answer may
be lost: kuryr.domain.lost_creates), ``vm_pairs`` (macvlan mode: the pairs this host wrote on
the VM's port, kuryr.backends.binding.macvlan).
The schema is versioned in ``meta``: an older file is upgraded in place, step by step, and a
newer file than this code understands is refused rather than guessed at.
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kuryr.backends.model import Network
from kuryr.backends.neutron_api import Resource
from kuryr.backends.state_codec import network_from_json, network_to_json

SCHEMA_VERSION = 3
DB_NAME = "kuryr.db"

FREE = "free"
TAKEN = "taken"

# Pool modes: ``any`` hands out whichever address a port holds (Kuryr IPAM picks); ``exact``
# keeps ports on the addresses Docker's own IPAM will pick next.
MODE_ANY = "any"
MODE_EXACT = "exact"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS networks (docker_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
    endpoint_id TEXT PRIMARY KEY, network_id TEXT NOT NULL, port TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pools (
    subnet_id TEXT PRIMARY KEY, network_id TEXT NOT NULL, mode TEXT NOT NULL,
    ranges TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pool_ports (
    port_id TEXT PRIMARY KEY, subnet_id TEXT NOT NULL, ip TEXT NOT NULL,
    status TEXT NOT NULL, port TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS pool_ports_subnet ON pool_ports (subnet_id);
CREATE TABLE IF NOT EXISTS journal (
    port_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, at REAL NOT NULL, desired TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS views (port_id TEXT PRIMARY KEY, view TEXT NOT NULL);
"""

# Version n's step upgrades a file of version n - 1; _SCHEMA above is version 1.
_UPGRADES: dict[int, str] = {
    2: """
CREATE TABLE IF NOT EXISTS removals (docker_id TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS release_markers (
    subnet_id TEXT NOT NULL, ip TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (subnet_id, ip));
""",
    3: """
CREATE TABLE IF NOT EXISTS port_status (
    port_id TEXT PRIMARY KEY, status TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL);
""",
}

# Tables an older Kuryr may ignore, made at every open without a version step: a daemon put
# back to an earlier release still opens the file (it refuses a newer schema version).
_ADDITIVE = """
CREATE TABLE IF NOT EXISTS published (endpoint_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS intents (key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vm_pairs (
    ip TEXT NOT NULL, mac TEXT NOT NULL, port_id TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (ip, mac));
"""


class StateError(Exception):
    """The state file cannot be used (unreadable, or written by a newer schema)."""


@dataclass(frozen=True)
class PoolRow:
    subnet_id: str
    network_id: str  # Neutron network id
    mode: str
    ranges: list[tuple[str, str]]  # allocation pools (first, last) the exact mode walks


@dataclass
class PoolPort:
    port_id: str
    port: Resource  # as Neutron's JSON (kuryr.domain.ports.port.Port reads it)
    subnet_id: str
    ip: str
    status: str


@dataclass(frozen=True)
class JournalEntry:
    port_id: str
    seq: int
    at: float
    desired: dict[str, Any]


@dataclass(frozen=True)
class PairRow:
    ip: str
    mac: str  # lower case
    port_id: str  # the container's port whose device the pair lets through
    at: float  # wall clock of the last write of the pair, added or removed


@dataclass(frozen=True)
class PortStatusRow:
    status: str  # Neutron's (ACTIVE, DOWN, ...), or kuryr.domain.ports.status.GONE
    reason: str  # why it is not ACTIVE, when the daemon knows
    at: float  # wall clock of the check


class State:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._seq = 0
        self._migrate()

    @classmethod
    def open(cls, state_dir: Path) -> State:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            db = sqlite3.connect(state_dir / DB_NAME, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise StateError(f"cannot open {state_dir / DB_NAME}: {exc}") from exc
        return cls(db)

    @classmethod
    def in_memory(cls) -> State:
        """State that lives as long as the process (tests and tools without a state_dir)."""
        return cls(sqlite3.connect(":memory:", isolation_level=None))

    def close(self) -> None:
        self._db.close()

    def _migrate(self) -> None:
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', '1')")
        elif int(row[0]) > SCHEMA_VERSION:
            raise StateError(
                f"state schema {row[0]} is newer than this Kuryr understands ({SCHEMA_VERSION})"
            )
        version = int(row[0]) if row is not None else 1
        for step in range(version + 1, SCHEMA_VERSION + 1):
            self._upgrade(step)
        self._db.executescript(_ADDITIVE)
        seq = self._db.execute("SELECT MAX(seq) FROM journal").fetchone()[0]
        self._seq = int(seq or 0)

    def _upgrade(self, version: int) -> None:
        # executescript commits on its own, so the step is idempotent (IF NOT EXISTS) and the
        # version is bumped last: a crash in between repeats the step at the next open.
        self._db.executescript(_UPGRADES[version])
        self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(version),))

    # --- networks -----------------------------------------------------------------------------

    def save_network(self, network: Network) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO networks VALUES (?, ?)",
            (network.docker_id, json.dumps(network_to_json(network))),
        )

    def network(self, docker_id: str) -> Network | None:
        row = self._db.execute(
            "SELECT data FROM networks WHERE docker_id = ?", (docker_id,)
        ).fetchone()
        return network_from_json(json.loads(row[0])) if row else None

    def networks(self) -> list[Network]:
        rows = self._db.execute("SELECT data FROM networks ORDER BY docker_id").fetchall()
        return [network_from_json(json.loads(r[0])) for r in rows]

    def forget_network(self, docker_id: str) -> None:
        self._db.execute("DELETE FROM networks WHERE docker_id = ?", (docker_id,))

    # --- endpoints ----------------------------------------------------------------------------

    def save_endpoint(self, endpoint_id: str, network_id: str, port: Resource) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO endpoints VALUES (?, ?, ?)",
            (endpoint_id, network_id, json.dumps(port)),
        )

    def endpoint(self, endpoint_id: str) -> tuple[str, Resource] | None:
        """(Docker network id, port) of a live endpoint."""
        row = self._db.execute(
            "SELECT network_id, port FROM endpoints WHERE endpoint_id = ?", (endpoint_id,)
        ).fetchone()
        return (str(row[0]), dict(json.loads(row[1]))) if row else None

    def endpoints(self) -> dict[str, tuple[str, Resource]]:
        rows = self._db.execute("SELECT endpoint_id, network_id, port FROM endpoints").fetchall()
        return {str(r[0]): (str(r[1]), dict(json.loads(r[2]))) for r in rows}

    def forget_endpoint(self, endpoint_id: str) -> None:
        self._db.execute("DELETE FROM endpoints WHERE endpoint_id = ?", (endpoint_id,))

    # --- pools --------------------------------------------------------------------------------

    def save_pool(self, row: PoolRow) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO pools VALUES (?, ?, ?, ?)",
            (row.subnet_id, row.network_id, row.mode, json.dumps(row.ranges)),
        )

    def pools(self) -> list[PoolRow]:
        rows = self._db.execute("SELECT subnet_id, network_id, mode, ranges FROM pools").fetchall()
        return [
            PoolRow(str(r[0]), str(r[1]), str(r[2]), [(a, b) for a, b in json.loads(r[3])])
            for r in rows
        ]

    def forget_pool(self, subnet_id: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM pools WHERE subnet_id = ?", (subnet_id,))
            self._db.execute("DELETE FROM pool_ports WHERE subnet_id = ?", (subnet_id,))

    def save_pool_port(self, pp: PoolPort) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO pool_ports VALUES (?, ?, ?, ?, ?)",
            (pp.port_id, pp.subnet_id, pp.ip, pp.status, json.dumps(pp.port)),
        )

    def set_pool_port_status(self, port_id: str, status: str) -> None:
        self._db.execute("UPDATE pool_ports SET status = ? WHERE port_id = ?", (status, port_id))

    def pool_ports(self) -> list[PoolPort]:
        rows = self._db.execute(
            "SELECT port_id, port, subnet_id, ip, status FROM pool_ports ORDER BY rowid"
        ).fetchall()
        return [
            PoolPort(str(r[0]), dict(json.loads(r[1])), str(r[2]), str(r[3]), str(r[4]))
            for r in rows
        ]

    def forget_pool_port(self, port_id: str) -> None:
        self._db.execute("DELETE FROM pool_ports WHERE port_id = ?", (port_id,))

    # --- journal ------------------------------------------------------------------------------

    def journal_put(self, port_id: str, desired: dict[str, Any]) -> int:
        """Record what Neutron must end up holding for ``port_id``; supersedes older entries."""
        self._seq += 1
        self._db.execute(
            "INSERT OR REPLACE INTO journal VALUES (?, ?, ?, ?)",
            (port_id, self._seq, time.time(), json.dumps(desired)),
        )
        return self._seq

    def journal(self) -> list[JournalEntry]:
        rows = self._db.execute(
            "SELECT port_id, seq, at, desired FROM journal ORDER BY seq"
        ).fetchall()
        return [JournalEntry(str(r[0]), int(r[1]), float(r[2]), json.loads(r[3])) for r in rows]

    def journal_entry(self, port_id: str) -> JournalEntry | None:
        row = self._db.execute(
            "SELECT port_id, seq, at, desired FROM journal WHERE port_id = ?", (port_id,)
        ).fetchone()
        return (
            JournalEntry(str(row[0]), int(row[1]), float(row[2]), json.loads(row[3]))
            if row
            else None
        )

    def journal_done(self, port_id: str, seq: int) -> bool:
        """Drop the entry if it is still the one applied; False when a newer one replaced it."""
        cur = self._db.execute("DELETE FROM journal WHERE port_id = ? AND seq = ?", (port_id, seq))
        return cur.rowcount > 0

    def view(self, port_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT view FROM views WHERE port_id = ?", (port_id,)).fetchone()
        return dict(json.loads(row[0])) if row else None

    def save_view(self, port_id: str, view: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO views VALUES (?, ?)", (port_id, json.dumps(view)))

    def forget_view(self, port_id: str) -> None:
        self._db.execute("DELETE FROM views WHERE port_id = ?", (port_id,))

    # --- port status ------------------------------------------------------------------------------

    def save_port_status(self, port_id: str, status: str, reason: str = "") -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO port_status VALUES (?, ?, ?, ?)",
            (port_id, status, reason, time.time()),
        )

    def port_status(self, port_id: str) -> PortStatusRow | None:
        row = self._db.execute(
            "SELECT status, reason, at FROM port_status WHERE port_id = ?", (port_id,)
        ).fetchone()
        return PortStatusRow(str(row[0]), str(row[1]), float(row[2])) if row else None

    def forget_port_status(self, port_id: str) -> None:
        self._db.execute("DELETE FROM port_status WHERE port_id = ?", (port_id,))

    def port_status_ids(self) -> set[str]:
        return {str(r[0]) for r in self._db.execute("SELECT port_id FROM port_status")}

    # --- published ports --------------------------------------------------------------------

    def save_published(self, endpoint_id: str, data: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO published VALUES (?, ?)", (endpoint_id, json.dumps(data))
        )

    def published(self, endpoint_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT data FROM published WHERE endpoint_id = ?", (endpoint_id,)
        ).fetchone()
        return dict(json.loads(row[0])) if row else None

    def forget_published(self, endpoint_id: str) -> None:
        self._db.execute("DELETE FROM published WHERE endpoint_id = ?", (endpoint_id,))

    # --- network removals ----------------------------------------------------------------------

    def removal_put(self, docker_id: str) -> None:
        """Record that ``docker_id`` must leave Neutron (kept until :meth:`removal_done`)."""
        self._db.execute("INSERT OR IGNORE INTO removals VALUES (?, ?)", (docker_id, time.time()))

    def removals(self) -> list[str]:
        """Docker ids of the pending removals, oldest first."""
        rows = self._db.execute("SELECT docker_id FROM removals ORDER BY at, docker_id")
        return [str(r[0]) for r in rows.fetchall()]

    def removal_done(self, docker_id: str) -> None:
        self._db.execute("DELETE FROM removals WHERE docker_id = ?", (docker_id,))

    # --- creates whose answer may be lost (kuryr.domain.lost_creates) --------------------------

    def intent_put(self, key: str, data: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO intents VALUES (?, ?)", (key, json.dumps(data)))

    def intents(self) -> dict[str, dict[str, Any]]:
        rows = self._db.execute("SELECT key, data FROM intents ORDER BY rowid").fetchall()
        return {str(r[0]): dict(json.loads(r[1])) for r in rows}

    def intent_done(self, key: str) -> None:
        self._db.execute("DELETE FROM intents WHERE key = ?", (key,))

    # --- release markers ------------------------------------------------------------------------

    def mark_released(self, subnet_id: str, ip: str, lifetime: float) -> None:
        """Remember that the port holding ``ip`` was released; markers older than ``lifetime``
        seconds go (a ReleaseAddress that late is not coming, e.g. on Docker IPAM networks)."""
        now = time.time()
        self._db.execute("DELETE FROM release_markers WHERE at < ?", (now - lifetime,))
        self._db.execute(
            "INSERT OR REPLACE INTO release_markers VALUES (?, ?, ?)", (subnet_id, ip, now)
        )

    def take_release_marker(self, subnet_id: str, ip: str, lifetime: float) -> bool:
        """Consume the marker of ``ip``; True when one younger than ``lifetime`` was there."""
        cur = self._db.execute(
            "DELETE FROM release_markers WHERE subnet_id = ? AND ip = ? AND at >= ?",
            (subnet_id, ip, time.time() - lifetime),
        )
        return cur.rowcount > 0

    def forget_release_markers(self, subnet_id: str) -> None:
        self._db.execute("DELETE FROM release_markers WHERE subnet_id = ?", (subnet_id,))

    # --- pairs on the VM's port (macvlan mode) -------------------------------------------------

    def pairs_written(self, port_id: str, ips: Iterable[str], mac: str) -> None:
        now = time.time()
        rows = [(ip, mac.lower(), port_id, now) for ip in ips]
        self._db.executemany("INSERT OR REPLACE INTO vm_pairs VALUES (?, ?, ?, ?)", rows)

    def pairs_removed(self, mac: str, ips: Iterable[str] | None = None) -> None:
        """The pairs of ``mac`` (only those of ``ips`` when given) were taken off just now."""
        now, mac = time.time(), mac.lower()
        if ips is None:
            self._db.execute("UPDATE vm_pairs SET at = ? WHERE mac = ?", (now, mac))
            return
        rows = [(now, ip, mac) for ip in ips]
        self._db.executemany("UPDATE vm_pairs SET at = ? WHERE ip = ? AND mac = ?", rows)

    def vm_pairs(self) -> list[PairRow]:
        rows = self._db.execute("SELECT ip, mac, port_id, at FROM vm_pairs ORDER BY ip, mac")
        return [PairRow(ip, mac, port_id, float(at)) for ip, mac, port_id, at in rows]

    def forget_vm_pair(self, ip: str, mac: str) -> None:
        self._db.execute("DELETE FROM vm_pairs WHERE ip = ? AND mac = ?", (ip, mac.lower()))

    # --- transactions -------------------------------------------------------------------------

    def transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """``with state.transaction():`` groups writes into one commit (all or none)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def iter_hosts(ranges: list[tuple[str, str]]) -> Iterator[str]:
    """Every address of the (first, last) ranges, lowest first."""
    for first, last in sorted(ranges, key=lambda r: int(ipaddress.ip_address(r[0]))):
        a, b = ipaddress.ip_address(first), ipaddress.ip_address(last)
        for n in range(int(a), int(b) + 1):
            yield str(ipaddress.ip_address(n) if a.version == 4 else ipaddress.IPv6Address(n))
