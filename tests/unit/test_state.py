"""The local state file: schema, round trips, journal coalescing, pool ports (pure SQLite)."""

from __future__ import annotations

import ipaddress
import sqlite3
from pathlib import Path

import pytest

from kuryr.backends.model import Network, Subnet
from kuryr.backends.state import (
    DB_NAME,
    FREE,
    MODE_EXACT,
    SCHEMA_VERSION,
    TAKEN,
    PoolPort,
    PoolRow,
    State,
    StateError,
    iter_hosts,
)


def network() -> Network:
    subnet = Subnet(
        id="s1",
        network_id="n1",
        cidr=ipaddress.ip_network("10.1.2.0/24"),
        gateway_ip="10.1.2.1",
        host_routes=(("10.9.0.0/16", "10.1.2.254"),),
        subnetpool_id="sp1",
        name="kuryr-subnet-10.1.2.0/24",
    )
    return Network(docker_id="d" * 64, neutron_id="n1", mtu=1442, tags=["t"], subnets=[subnet])


def test_network_survives_reopen(tmp_path: Path) -> None:
    state = State.open(tmp_path)
    state.save_network(network())
    state.close()
    again = State.open(tmp_path)
    assert again.network("d" * 64) == network()
    assert again.networks() == [network()]
    again.forget_network("d" * 64)
    assert again.network("d" * 64) is None


def test_file_is_wal_and_versioned(tmp_path: Path) -> None:
    State.open(tmp_path).close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == str(
        SCHEMA_VERSION
    )


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    State.open(tmp_path).close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StateError, match="newer"):
        State.open(tmp_path)


def test_journal_keeps_only_the_newest_entry_per_port(tmp_path: Path) -> None:
    state = State.open(tmp_path)
    first = state.journal_put("p1", {"op": "update", "device_id": "a"})
    second = state.journal_put("p1", {"op": "update", "device_id": ""})
    state.journal_put("p2", {"op": "delete"})
    assert [(e.port_id, e.desired.get("device_id")) for e in state.journal()] == [
        ("p1", ""),
        ("p2", None),
    ]
    # Applying the superseded entry must not drop the newer one.
    assert not state.journal_done("p1", first)
    assert state.journal_done("p1", second)
    assert [e.port_id for e in state.journal()] == ["p2"]


def test_journal_sequence_continues_after_reopen(tmp_path: Path) -> None:
    state = State.open(tmp_path)
    seq = state.journal_put("p1", {"op": "delete"})
    state.close()
    again = State.open(tmp_path)
    assert again.journal_put("p2", {"op": "delete"}) > seq


def test_endpoint_round_trip(tmp_path: Path) -> None:
    state = State.open(tmp_path)
    port = {"id": "p1", "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.1.2.5"}]}
    state.save_endpoint("e1", "d1", port)
    assert state.endpoint("e1") == ("d1", port)
    assert state.endpoints() == {"e1": ("d1", port)}
    state.forget_endpoint("e1")
    assert state.endpoint("e1") is None


def test_pool_rows_and_ports(tmp_path: Path) -> None:
    state = State.open(tmp_path)
    state.save_pool(PoolRow("s1", "n1", MODE_EXACT, [("10.1.2.2", "10.1.2.9")]))
    state.save_pool_port(PoolPort("p1", {"id": "p1"}, "s1", "10.1.2.2", FREE))
    state.save_pool_port(PoolPort("p2", {"id": "p2"}, "s1", "10.1.2.3", FREE))
    state.set_pool_port_status("p1", TAKEN)
    assert state.pools() == [PoolRow("s1", "n1", MODE_EXACT, [("10.1.2.2", "10.1.2.9")])]
    assert [(pp.port_id, pp.status) for pp in state.pool_ports()] == [("p1", TAKEN), ("p2", FREE)]
    state.forget_pool("s1")
    assert state.pools() == [] and state.pool_ports() == []


def test_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    state = State.open(tmp_path)
    with pytest.raises(RuntimeError), state.transaction():
        state.save_endpoint("e1", "d1", {"id": "p1"})
        raise RuntimeError("crash in the middle")
    assert state.endpoint("e1") is None


def test_hosts_walk_ranges_lowest_first() -> None:
    ranges = [("10.0.0.10", "10.0.0.11"), ("10.0.0.2", "10.0.0.3")]
    assert list(iter_hosts(ranges)) == ["10.0.0.2", "10.0.0.3", "10.0.0.10", "10.0.0.11"]
    assert list(iter_hosts([("fd00::1", "fd00::2")])) == ["fd00::1", "fd00::2"]


def test_published_records_survive_a_reopen_without_a_schema_step(tmp_path: Path) -> None:
    state = State.open(tmp_path)
    state.save_published("e" * 64, {"owner": "o", "floating_ips": ["f"], "forwardings": []})
    state.close()
    again = State.open(tmp_path)
    assert again.published("e" * 64) == {"owner": "o", "floating_ips": ["f"], "forwardings": []}
    again.forget_published("e" * 64)
    assert again.published("e" * 64) is None
    version = again._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0]
    assert version == str(SCHEMA_VERSION)
