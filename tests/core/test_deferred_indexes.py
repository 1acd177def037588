"""A seed holds back the plain indexes and builds them at its end; a store is never left
without them silently (``app.core.deferred_indexes``)."""

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.core import deferred_indexes, synthetic
from app.core.errors import StoreUnavailable
from app.core.store import open_store

ACTOR = "tester"


def indexes_of(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    return {name for (name,) in rows}


def mark_of(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT value FROM schema_meta WHERE key = ?", (deferred_indexes.MARK_KEY,)
        ).fetchone()
    return None if row is None else str(row[0])


PLAIN = {str(index.name) for index in deferred_indexes.plain_indexes()}


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    path = tmp_path / "seeded.db"
    store = open_store(path)
    try:
        synthetic.seed_synthetic(store=store, profiles=300, actor=ACTOR, chunk_size=100)
    finally:
        store.dispose()
    return path


def test_the_held_back_indexes_are_the_address_state_and_ledger_ones() -> None:
    assert {
        "ix_profile_email_key",
        "ix_group_state_group_state_profile",
        "ix_ledger_event_other_names",
        "ix_ledger_event_profile",
        "ix_ledger_event_campaign",
    } == PLAIN


def test_a_finished_seed_leaves_every_index_and_no_mark(seeded: Path) -> None:
    assert indexes_of(seeded) >= PLAIN
    assert mark_of(seeded) is None


def test_the_seed_is_told_before_the_indexes_are_built(tmp_path: Path) -> None:
    store = open_store(tmp_path / "told.db")
    seen: list[set[str]] = []
    try:
        synthetic.seed_synthetic(
            store=store,
            profiles=50,
            actor=ACTOR,
            on_build=lambda: seen.append(indexes_of(tmp_path / "told.db")),
        )
    finally:
        store.dispose()
    assert len(seen) == 1 and not (PLAIN & seen[0])  # told while they were still held back


def _leave_as_a_stopped_seed(path: Path, holder: str) -> None:
    """The store as a seed killed half-way leaves it: no plain indexes, the mark in place."""
    with sqlite3.connect(path) as conn:
        for name in PLAIN:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute(
            "INSERT INTO schema_meta (key, value) VALUES (?, ?)",
            (deferred_indexes.MARK_KEY, holder),
        )


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_store_left_by_a_dead_seed_gets_its_indexes_on_the_next_open(seeded: Path) -> None:
    _leave_as_a_stopped_seed(seeded, f"{socket.gethostname()} {_dead_pid()}")
    store = open_store(seeded)
    try:
        with store.read() as session:
            plan = session.connection().exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM ledger_event WHERE profile_id = 7 "
                "ORDER BY id DESC"
            )
            details = " ".join(str(row[-1]) for row in plan)
    finally:
        store.dispose()
    assert indexes_of(seeded) >= PLAIN
    assert mark_of(seeded) is None
    assert "ix_ledger_event_profile" in details


def test_a_store_whose_seed_still_runs_is_refused_and_left_alone(seeded: Path) -> None:
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = f"{socket.gethostname()} {running.pid}"
        _leave_as_a_stopped_seed(seeded, holder)
        with pytest.raises(StoreUnavailable) as refused:
            open_store(seeded)
    finally:
        running.kill()
        running.wait()
    assert f"{seeded} is being seeded by process {running.pid}" in str(refused.value)
    assert not (PLAIN & indexes_of(seeded))  # nothing was changed
    assert mark_of(seeded) == holder


def test_a_mark_from_another_host_is_a_stopped_seed(seeded: Path) -> None:
    """A store copied from another machine mid-seed: no process here can finish it."""
    _leave_as_a_stopped_seed(seeded, f"elsewhere.invalid {os.getpid()}")
    open_store(seeded).dispose()
    assert indexes_of(seeded) >= PLAIN
    assert mark_of(seeded) is None
