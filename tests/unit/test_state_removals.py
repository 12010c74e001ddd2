"""The state tables of schema 2: pending network removals and release markers, and the
upgrade of a schema 1 file (pure SQLite)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kuryr.backends.state import _SCHEMA, DB_NAME, SCHEMA_VERSION, State

HOUR = 3600.0


def test_pending_removals_survive_reopen_until_done(tmp_path: Path) -> None:
    state = State.open(tmp_path)
    state.removal_put("a" * 64)
    state.removal_put("b" * 64)
    state.removal_put("a" * 64)
    state.close()
    again = State.open(tmp_path)
    assert again.removals() == ["a" * 64, "b" * 64]
    again.removal_done("a" * 64)
    again.removal_done("c" * 64)
    assert again.removals() == ["b" * 64]


def test_release_marker_survives_reopen_and_is_taken_once(tmp_path: Path) -> None:
    state = State.open(tmp_path)
    state.mark_released("s1", "10.0.0.5", HOUR)
    state.close()
    again = State.open(tmp_path)
    assert not again.take_release_marker("s1", "10.0.0.6", HOUR)
    assert not again.take_release_marker("s2", "10.0.0.5", HOUR)
    assert again.take_release_marker("s1", "10.0.0.5", HOUR)
    assert not again.take_release_marker("s1", "10.0.0.5", HOUR)


def test_expired_marker_is_not_taken_and_is_purged_by_the_next_mark() -> None:
    state = State.in_memory()
    state.mark_released("s1", "10.0.0.5", HOUR)
    assert not state.take_release_marker("s1", "10.0.0.5", lifetime=-1.0)
    state.mark_released("s1", "10.0.0.6", lifetime=-1.0)
    assert not state.take_release_marker("s1", "10.0.0.5", HOUR)


def test_forgetting_a_subnet_drops_its_markers_only() -> None:
    state = State.in_memory()
    state.mark_released("s1", "10.0.0.5", HOUR)
    state.mark_released("s2", "10.0.1.5", HOUR)
    state.forget_release_markers("s1")
    assert not state.take_release_marker("s1", "10.0.0.5", HOUR)
    assert state.take_release_marker("s2", "10.0.1.5", HOUR)


def test_schema_1_file_is_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    old.executescript(_SCHEMA)
    old.execute("INSERT INTO meta VALUES ('schema', '1')")
    old.execute("INSERT INTO views VALUES ('p1', '{}')")
    old.close()

    state = State.open(tmp_path)
    assert state.view("p1") == {}
    state.removal_put("a" * 64)
    assert state.removals() == ["a" * 64]
    state.close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == str(
        SCHEMA_VERSION
    )
