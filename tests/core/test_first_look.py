"""The console's first look at a store (``first_look.active_groups``): the active
groups counted with the standard library's sqlite3 before the data layer loads.

It answers only what the opened store would say, and otherwise nothing: a
database URL, a store not made yet (and it makes none), a store at another
schema version, something that is not a store.
"""

import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.core import first_look, groups, migrations, schema_version
from app.core.places import ENV_DB
from app.core.store import open_store

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def make_store(path: Path, *, active: int, archived: int) -> None:
    """A store with ``active`` active groups and ``archived`` archived ones."""
    store = open_store(path)
    try:
        with store.write() as session:
            for n in range(active + archived):
                group = groups.create_group(session=session, name=f"G{n}", actor="t", now=NOW)
                if n >= active:
                    assert group.id is not None
                    groups.archive_group(session=session, group_id=group.id, actor="t", now=NOW)
    finally:
        store.dispose()


def active_in(path: Path) -> int:
    """The count as the opened store gives it (the Groups section's own read)."""
    store = open_store(path)
    try:
        with store.read() as session:
            return groups.active_count(session)
    finally:
        store.dispose()


def test_it_counts_the_active_groups_as_the_store_does(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    make_store(db, active=7, archived=3)
    assert first_look.active_groups(str(db)) == 7 == active_in(db)
    # The same store named as a SQLAlchemy URL.
    assert first_look.active_groups(f"sqlite:///{db}") == 7


def test_it_reads_the_store_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "env.db"
    make_store(db, active=2, archived=0)
    monkeypatch.setenv(ENV_DB, str(db))
    assert first_look.active_groups(None) == 2


def test_a_missing_store_gets_no_answer_and_is_not_made(tmp_path: Path) -> None:
    db = tmp_path / "new" / "store.db"
    assert first_look.active_groups(str(db)) is None
    assert not db.parent.exists()
    db.parent.mkdir()
    assert first_look.active_groups(str(db)) is None
    assert list(db.parent.iterdir()) == []  # no store file, no -wal, no -shm


def test_a_store_to_be_upgraded_gets_no_answer(tmp_path: Path) -> None:
    """The real open upgrades it first (or refuses one that is too new): wait for that."""
    db = tmp_path / "store.db"
    make_store(db, active=4, archived=0)
    for version in (schema_version.LATEST_VERSION - 1, schema_version.LATEST_VERSION + 1):
        with sqlite3.connect(db) as conn:
            conn.execute(
                "UPDATE schema_meta SET value = ? WHERE key = 'schema_version'", (str(version),)
            )
        assert first_look.active_groups(str(db)) is None


def test_the_version_it_trusts_is_the_migrations_last() -> None:
    assert max(migrations.STEPS) == schema_version.LATEST_VERSION


@pytest.mark.parametrize(
    "db",
    [
        "postgresql+psycopg://someone:secret@127.0.0.1:1/nowhere",
        ":memory:",
        "sqlite://",
    ],
)
def test_other_databases_get_no_answer(db: str) -> None:
    assert first_look.active_groups(db) is None


def test_what_is_not_a_store_gets_no_answer_and_is_left_alone(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    empty = tmp_path / "empty.db"
    empty.touch()
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    for path in (notes, empty, other, tmp_path):
        assert first_look.active_groups(str(path)) is None
    assert notes.read_text() == "hello\n"
    assert empty.stat().st_size == 0


def test_it_reads_while_another_process_writes(tmp_path: Path, python: str) -> None:
    """A writer holding the store's write lock does not hold up the look (WAL readers
    do not wait) and its uncommitted groups are not counted."""
    db = tmp_path / "store.db"
    make_store(db, active=5, archived=0)
    writer = subprocess.Popen(
        [
            python,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('BEGIN IMMEDIATE'); "
            "c.execute(\"UPDATE subscription_group SET status = 'archived'\"); "
            "print('locked', flush=True); sys.stdin.readline()",
            str(db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "locked"
        assert first_look.active_groups(str(db)) == 5
    finally:
        assert writer.stdin is not None
        writer.stdin.close()
        writer.wait(timeout=30)
