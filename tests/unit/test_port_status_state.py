"""Port status in the local state (schema 3), as ``kuryr port`` shows it, and its bound's
setting (pure SQLite and config parsing)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kuryr import config
from kuryr.backends.state import _SCHEMA, _UPGRADES, DB_NAME, State
from kuryr.domain.ports.status import ACTIVE, describe


def test_unchecked_port_has_no_status() -> None:
    assert describe(State.in_memory(), "p1") is None


def test_active_shows_alone_and_down_shows_its_reason() -> None:
    state = State.in_memory()
    state.save_port_status("p1", ACTIVE)
    state.save_port_status("p2", "DOWN", "ovn-controller has not wired interface tapp2")
    state.save_port_status("p3", "DOWN")
    assert describe(state, "p1") == "ACTIVE"
    assert describe(state, "p2") == "DOWN: ovn-controller has not wired interface tapp2"
    assert describe(state, "p3") == "DOWN"


def test_forgotten_port_status_is_gone() -> None:
    state = State.in_memory()
    state.save_port_status("p1", "DOWN", "why")
    state.save_port_status("p2", ACTIVE)
    assert state.port_status_ids() == {"p1", "p2"}
    state.forget_port_status("p1")
    assert state.port_status("p1") is None
    assert state.port_status_ids() == {"p2"}


def test_schema_2_file_is_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    old.executescript(_SCHEMA)
    old.executescript(_UPGRADES[2])
    old.execute("INSERT INTO meta VALUES ('schema', '2')")
    old.execute("INSERT INTO removals VALUES (?, 1.0)", ("a" * 64,))
    old.close()

    state = State.open(tmp_path)
    assert state.removals() == ["a" * 64]
    state.save_port_status("p1", ACTIVE)
    state.close()
    again = State.open(tmp_path)
    row = again.port_status("p1")
    assert row is not None and row.status == ACTIVE
    again.close()


def test_port_active_timeout_is_read_and_must_be_positive() -> None:
    parser = config.new_parser()
    parser.read_string("[neutron]\nport_active_timeout = 12.5\n")
    assert config.parse(parser).neutron.port_active_timeout == 12.5
    assert "port_active_timeout" not in config.parse(parser).neutron.auth
    assert config.parse(config.new_parser()).neutron.port_active_timeout == 30.0
    parser.read_string("[neutron]\nport_active_timeout = 0\n")
    with pytest.raises(ValueError, match="port_active_timeout must be positive"):
        config.parse(parser)
