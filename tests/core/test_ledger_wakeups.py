"""Live log wake-ups: a follower reads the ledger only when it changed, and then at once.

SQLite: ``PRAGMA data_version`` on a kept connection; PostgreSQL: LISTEN, with
every ledger write sending a NOTIFY in its transaction.
"""

import queue
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, event, text

from app.core import ledger
from app.core.ledger_wakeups import LedgerWakeups
from app.core.store import Store, open_store
from tests.conftest import PG_SCHEMA, PG_URL, pg_store_url, reset_pg_schema

WRITE_ELSEWHERE = """
import sys
from app.core import ledger
from app.core.store import open_store
store = open_store(sys.argv[1])
with store.write() as session:
    ledger.record(session, name=sys.argv[2], source="cli", actor="other", properties={})
store.dispose()
"""


def ledger_reads(store: Store) -> list[str]:
    """Every SELECT on the ledger that goes through the store's engine, as it happens."""
    seen: list[str] = []

    def before(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "ledger_event" in statement:
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", before)
    return seen


def wait_until(condition, limit: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for something to happen (a generous bound against a hang, not a timing)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "it never happened"
        time.sleep(0.01)


@pytest.fixture
def following(store: Store) -> Iterator[tuple[LedgerWakeups, "queue.Queue[str]"]]:
    """A follower loop as the console runs it: wait for a wake-up, then read ``id > last``."""
    yield from _follow(store)


@pytest.fixture
def following_pg(pg_url: str) -> Iterator[tuple[LedgerWakeups, "queue.Queue[str]", Store]]:
    """The same follower on a PostgreSQL store (this run's schema)."""
    store = open_store(pg_url)
    for wakeups, seen in _follow(store):
        yield wakeups, seen, store
    store.dispose()


def _follow(store: Store) -> Iterator[tuple[LedgerWakeups, "queue.Queue[str]"]]:
    # A fallback far away: on PostgreSQL only a notification can wake it in this test.
    wakeups = LedgerWakeups(store.engine, interval=0.01, fallback=600)
    with store.read() as session:
        follower = ledger.LedgerFollower(after_id=ledger.latest_id(session))
    seen: queue.Queue[str] = queue.Queue()
    stop = threading.Event()

    def loop() -> None:
        while wakeups.wait(stop):
            with store.read() as session:
                for found in follower.poll(session):
                    seen.put(found.name)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield wakeups, seen
    stop.set()
    thread.join(timeout=10)
    wakeups.close()


def test_an_event_from_another_process_wakes_the_follower_which_reads_only_then(
    store: Store, following, python: str, subprocess_env: dict[str, str]
) -> None:
    wakeups, seen = following
    reads = ledger_reads(store)
    wait_until(lambda: wakeups.checks >= 5)
    assert reads == []  # nothing changed: the ledger was not read, only asked whether it changed
    subprocess.run(
        [python, "-c", WRITE_ELSEWHERE, store.url, "From elsewhere"],
        env=subprocess_env,
        check=True,
    )
    assert seen.get(timeout=20) == "From elsewhere"
    assert reads  # read once it changed
    settled = len(reads)
    checks = wakeups.checks
    wait_until(lambda: wakeups.checks >= checks + 5)
    assert len(reads) == settled  # and not again while nothing changed


def test_the_processes_own_writes_wake_it_too(store: Store, following) -> None:
    """data_version ignores the kept connection's own commits: the pool's writes still count."""
    _wakeups, seen = following
    with store.write() as session:
        ledger.record(session, name="From here", source="cli", actor="test", properties={})
    assert seen.get(timeout=20) == "From here"


@pytest.mark.postgres
def test_a_store_in_another_schema_of_the_same_database_does_not_wake_it(
    pg_url: str, following_pg
) -> None:
    """NOTIFY is database-wide: each store listens on a channel of its own schema."""
    wakeups, seen, store = following_pg
    reads = ledger_reads(store)
    neighbour_url = pg_store_url(PG_URL or "", schema=f"{PG_SCHEMA}_neighbour")
    reset_pg_schema(neighbour_url)
    neighbour = open_store(neighbour_url)
    try:
        with neighbour.write() as session:
            ledger.record(session, name="Next door", source="cli", actor="test", properties={})
        checks = wakeups.checks
        wait_until(lambda: wakeups.checks >= checks + 20)
        assert reads == []  # the neighbour's event did not make it read
        with store.write() as session:
            ledger.record(session, name="Here", source="cli", actor="test", properties={})
        assert seen.get(timeout=20) == "Here"
    finally:
        neighbour.dispose()
        drop = create_engine(PG_URL or "")
        with drop.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}_neighbour" CASCADE'))
        drop.dispose()


@pytest.mark.postgres
def test_a_batch_of_500_events_sends_one_notification_as_it_commits(pg_url: str) -> None:
    """One NOTIFY per committed transaction, not one per event: a batch costs one round trip.

    PostgreSQL folds identical notifications of one transaction into one for
    the listener, so what a batch used to cost shows in what was *sent*.
    """
    store = open_store(pg_url)
    wakeups = LedgerWakeups(store.engine, interval=0.01, fallback=600)
    sent: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if "pg_notify" in statement:
            sent.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        with store.write() as session:
            for number in range(500):
                ledger.record(
                    session, name=f"Batch {number}", source="cli", actor="test", properties={}
                )
            assert sent == []  # nothing is said before the commit
        assert len(sent) == 1
        heard = list(wakeups._raw.notifies(timeout=5, stop_after=1))
        heard += list(wakeups._raw.notifies(timeout=0.5))
        assert len(heard) == 1
        with pytest.raises(RuntimeError), store.write() as session:
            ledger.record(session, name="Rolled back", source="cli", actor="test", properties={})
            raise RuntimeError("the transaction fails")
        with store.write() as session:
            session.execute(text("SELECT 1"))  # a transaction that wrote no event
        assert len(sent) == 1  # neither the rolled-back one nor the eventless one said anything
    finally:
        wakeups.close()
        store.dispose()


@pytest.mark.postgres
def test_a_wake_from_a_notification_is_counted_apart_from_the_fallback(following_pg) -> None:
    wakeups, seen, store = following_pg
    with store.write() as session:
        ledger.record(session, name="Told", source="cli", actor="test", properties={})
    assert seen.get(timeout=20) == "Told"
    assert wakeups.told_wakes >= 1 and wakeups.fallback_wakes == 0
