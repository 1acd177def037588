"""The ledger partitioned by month on PostgreSQL (issue 13, ask 4).

On the real PostgreSQL (``SUBGROUPS_TEST_PG_URL``; skipped with the reason
without it): events land in their UTC month's partition; the months around
today are made when a store opens; an event that landed in the default
partition is moved into its month at the next open; the append-only trigger
refuses changes in every partition; ``subgroups events verify`` passes across
months and finds a tampered event in an old partition; a version-15 store
with events is partitioned in place keeping every event and its id; and a
second process starts warm from the index snapshot the database holds.
"""

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from app.core import (
    clock,
    groups,
    ledger,
    ledger_chain,
    ledger_days,
    ledger_partitions,
    ledger_verify,
    migrations,
    profiles,
    snapshot_writer,
    subscriptions,
)
from app.core.models import Group, Profile
from app.core.segment_index import SegmentIndex
from app.core.store import Store, open_store
from app.core.synthetic import seed_synthetic

ACTOR = "ada"
NOV = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@contextmanager
def at(when: datetime) -> Iterator[None]:
    """Services in this thread write at ``when`` (a millisecond later per read)."""
    with clock.pinned(when):
        yield


def open_at(url: str, when: datetime) -> Store:
    """Open the store as a process would on that day (the window of months follows it)."""
    with at(when):
        return open_store(url)


def rows(store: Store) -> list[tuple[Any, ...]]:
    """Every event as (id, ts, partition, content hash, chain hash), by id."""
    with store.engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT id, ts, tableoid::regclass::text, content_hash, chain_hash "
                "FROM ledger_event ORDER BY id"
            )
        ).all()
    return [tuple(row) for row in found]


def day_counts(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        found = conn.execute(text("SELECT * FROM ledger_day ORDER BY 1, 2, 3, 4, 5")).all()
    return [tuple(row) for row in found]


def partition_names(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return ledger_partitions.partitions(conn)


def write_month(store: Store, when: datetime, name: str) -> None:
    """A group created and a person who leaves it, at ``when``: two events."""
    with at(when), store.write() as session:
        group = groups.create_group(session=session, name=name, actor=ACTOR)
        person = profiles.create_profile(session=session, identity=f"{name}@example.com")
        subscriptions.set_state(
            session=session,
            profile=person,
            group=group,
            status="unsubscribed",
            source="cli",
            actor=ACTOR,
        )


def cli(python: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = open_at(pg_url, NOV)
    yield store
    store.dispose()


def test_events_land_in_their_months_partition(pg_store: Store) -> None:
    write_month(pg_store, datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), "October")
    write_month(pg_store, datetime(2026, 11, 1, 0, 0, tzinfo=UTC), "November")
    write_month(pg_store, datetime(2027, 1, 15, tzinfo=UTC), "January")

    found = rows(pg_store)

    assert [r[2] for r in found] == [
        *["ledger_event_2026_10"] * 2,
        *["ledger_event_2026_11"] * 2,
        *["ledger_event_2027_01"] * 2,
    ]
    assert all(r[2] == ledger_partitions.partition_of(r[1]) for r in found)
    with pg_store.engine.connect() as conn:
        assert ledger_partitions.is_partitioned(conn)
        (inherited,) = conn.execute(
            text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'ledger_event'::regclass")
        ).one()
    assert inherited == len(partition_names(pg_store))


def test_the_months_around_today_are_made_when_the_store_opens(pg_url: str) -> None:
    first = open_at(pg_url, NOV)
    try:
        assert partition_names(first) == [
            "ledger_event_2026_10",
            "ledger_event_2026_11",
            "ledger_event_2026_12",
            "ledger_event_2027_01",
            "ledger_event_2027_02",
            "ledger_event_default",
        ]
    finally:
        first.dispose()

    # Seven months later two processes open the store at once: each month is made once.
    clock.set_clock(lambda: datetime(2027, 6, 10, tzinfo=UTC))
    failures: list[BaseException] = []

    def opener() -> None:
        try:
            open_store(pg_url).dispose()
        except BaseException as exc:  # reported below
            failures.append(exc)

    try:
        threads = [threading.Thread(target=opener) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        clock.set_clock(None)

    assert failures == []
    later = open_at(pg_url, datetime(2027, 6, 10, tzinfo=UTC))
    try:
        names = partition_names(later)
        for month in ("2027_05", "2027_06", "2027_07", "2027_08", "2027_09"):
            assert f"ledger_event_{month}" in names
        # Months with no events between the two windows are not made.
        assert "ledger_event_2027_03" not in names
        with later.engine.connect() as conn:
            upkeep = ledger_partitions.maintain(conn, today=date(2027, 6, 10))
        assert upkeep == ledger_partitions.Upkeep(made=[], moved=0)
    finally:
        later.dispose()


def test_events_in_the_default_partition_move_to_their_month_at_the_next_open(
    pg_store: Store, pg_url: str
) -> None:
    write_month(pg_store, NOV, "November")
    far = datetime(2028, 5, 3, 12, 0, tzinfo=UTC)
    write_month(pg_store, far, "Later")  # no partition for May 2028: the default one
    before = rows(pg_store)
    counts = day_counts(pg_store)
    assert [r[2] for r in before[2:]] == ["ledger_event_default"] * 2

    again = open_at(pg_url, NOV)
    try:
        after = rows(again)
        assert [r[2] for r in after[2:]] == ["ledger_event_2028_05"] * 2
        # Same ids, times and hashes: only the partition changed.
        assert [(r[0], r[1], r[3], r[4]) for r in after] == [
            (r[0], r[1], r[3], r[4]) for r in before
        ]
        assert day_counts(again) == counts  # moved, not counted again
        with again.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM ledger_event_default")).scalar() == 0
            assert ledger_verify.verify(conn).intact
        write_month(again, datetime(2028, 5, 4, tzinfo=UTC), "Later still")
        newest = rows(again)[-2:]
        assert [r[2] for r in newest] == ["ledger_event_2028_05"] * 2
        assert [r[0] for r in newest] == [after[-1][0] + 1, after[-1][0] + 2]  # one sequence
    finally:
        again.dispose()


def _refused(store: Store, sql: str, event_id: int) -> str:
    with pytest.raises(DBAPIError) as caught, store.engine.begin() as conn:
        conn.execute(text(sql), {"i": event_id})
    return str(caught.value)


def test_every_partition_refuses_to_change_or_delete_an_event(pg_store: Store) -> None:
    write_month(pg_store, NOV, "November")
    write_month(pg_store, datetime(2029, 2, 1, tzinfo=UTC), "Far")  # the default partition
    events = rows(pg_store)
    in_month, in_default = events[0], events[-1]
    assert (in_month[2], in_default[2]) == ("ledger_event_2026_11", "ledger_event_default")

    for event_id, table in ((in_month[0], in_month[2]), (in_default[0], in_default[2])):
        for target in ("ledger_event", table):  # through the parent, and the partition itself
            for sql in (
                f"UPDATE {target} SET name = 'Forged' WHERE id = :i",
                f"DELETE FROM {target} WHERE id = :i",
            ):
                assert "the ledger is append-only" in _refused(pg_store, sql, event_id), sql
    assert rows(pg_store) == events
    # Every partition, the ones made later too, carries the trigger (cloned from the parent).
    with pg_store.engine.connect() as conn:
        guarded = conn.execute(
            text(
                "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_inherits i ON i.inhrelid = c.oid "
                "WHERE i.inhparent = 'ledger_event'::regclass "
                "AND t.tgname = 'ledger_event_append_only' AND t.tgenabled = 'O'"
            )
        ).scalars()
        assert set(partition_names(pg_store)) <= set(guarded)


def test_verify_passes_across_months_and_finds_a_tampered_event_in_an_old_partition(
    pg_store: Store, python: str, subprocess_env: dict[str, str]
) -> None:
    write_month(pg_store, datetime(2026, 10, 31, 23, 59, tzinfo=UTC), "October")
    write_month(pg_store, datetime(2026, 11, 30, 23, 59, tzinfo=UTC), "November")
    write_month(pg_store, datetime(2026, 12, 1, 0, 1, tzinfo=UTC), "December")
    events = rows(pg_store)
    assert len({r[2] for r in events}) == 3

    done = cli(python, subprocess_env, "events", "verify", "--db", pg_store.url)
    assert (done.returncode, done.stdout, done.stderr) == (0, "6 events, chain intact\n", "")

    target = events[1][0]  # October's partition
    with pg_store.engine.begin() as conn:  # an attacker with the password
        conn.execute(text("DROP TRIGGER ledger_event_append_only ON ledger_event"))
        conn.execute(text("UPDATE ledger_event SET name = 'Forged' WHERE id = :i"), {"i": target})

    done = cli(python, subprocess_env, "events", "verify", "--db", pg_store.url)
    assert done.returncode == 1 and done.stdout == ""
    assert f"event {target} (" in done.stderr and "content does not match" in done.stderr


def _make_version_15_store(conn: Connection) -> None:
    """A store as subgroups made it before step 17: one plain ``ledger_event`` table."""
    SQLModel.metadata.create_all(conn)
    ledger_chain.start_head(conn)
    migrations._guard_ledger(conn)
    ledger_days.install(conn)
    migrations._give_store_id(conn)
    migrations._stamp(conn, 15)


def test_a_version_15_store_is_partitioned_in_place_keeping_every_event(pg_url: str) -> None:
    old = open_store(pg_url, migrate=False)
    with old.engine.begin() as conn:
        _make_version_15_store(conn)
    for when, name in ((datetime(2026, 9, 30, 23, 0, tzinfo=UTC), "September"), (NOV, "Nov")):
        write_month(old, when, name)
    with old.engine.connect() as conn:
        assert not ledger_partitions.is_partitioned(conn)
    before, counts = rows(old), day_counts(old)
    assert {r[2] for r in before} == {"ledger_event"}
    old.dispose()

    upgraded = open_at(pg_url, NOV)
    try:
        with upgraded.engine.connect() as conn:
            assert migrations.schema_version(conn) == migrations.LATEST_VERSION == 17
            assert ledger_partitions.is_partitioned(conn)
            assert ledger_verify.verify(conn).intact
        after = rows(upgraded)
        assert [(r[0], r[1], r[3], r[4]) for r in after] == [
            (r[0], r[1], r[3], r[4]) for r in before
        ]
        assert [r[2] for r in after] == ["ledger_event_2026_09"] * 2 + ["ledger_event_2026_11"] * 2
        assert day_counts(upgraded) == counts
        write_month(upgraded, NOV, "After")
        newest = rows(upgraded)[-2:]
        assert [r[0] for r in newest] == [before[-1][0] + n for n in (1, 2)]
        assert len(day_counts(upgraded)) == len(counts) + 1  # the trigger counts again
        assert "append-only" in _refused(
            upgraded, "DELETE FROM ledger_event WHERE id = :i", before[0][0]
        )
    finally:
        upgraded.dispose()


CHILD = """
import json, sys
from sqlalchemy import event
from app.core.store import open_store
from app.core.segment_index import SegmentIndex
from app.core.segment_rules import GroupsCondition, SegmentRule

store = open_store(sys.argv[1])
sent = []
event.listen(store.engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
index = SegmentIndex()
with store.read() as session:
    index.build(session)
    subscribed = index.subscribed(int(sys.argv[2]))
print(json.dumps({
    "snapshot_ledger_id": index.snapshot_ledger_id,
    "replayed_to": index._follower.last,
    "profiles_read_whole": any(" ".join(s.split()) == "SELECT id FROM profile" for s in sent),
    "subscribed": len(subscribed),
}))
"""


def test_a_second_process_starts_warm_from_the_snapshot_in_the_database(
    pg_store: Store, python: str, subprocess_env: dict[str, str]
) -> None:
    with at(NOV), pg_store.write() as session:
        news = groups.create_group(session=session, name="Newsletter", actor=ACTOR)
        people = [
            profiles.create_profile(session=session, identity=f"p{n}@example.com")
            for n in range(40)
        ]
    assert news.id is not None
    _leave(pg_store, news, people[:10])
    assert snapshot_writer.write_snapshot(pg_store, SegmentIndex())
    with pg_store.read() as session:
        snapshot_id = ledger.latest_id(session)
    _leave(pg_store, news, people[10:15])  # after the snapshot: replayed by the child
    with pg_store.read() as session:
        latest = ledger.latest_id(session)

    done = subprocess.run(
        [python, "-c", CHILD, pg_store.url, str(news.id)],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found == {
        "snapshot_ledger_id": snapshot_id,
        "replayed_to": latest,
        "profiles_read_whole": False,
        "subscribed": 40 - 15,
    }
    assert latest - snapshot_id == 5


def _leave(store: Store, group: Group, people: list[Profile]) -> None:
    with at(NOV), store.write() as session:
        for person in people:
            subscriptions.set_state(
                session=session,
                profile=session.get(Profile, person.id),  # type: ignore[arg-type]
                group=group,
                status="unsubscribed",
                source="cli",
                actor=ACTOR,
            )


def test_a_seeded_history_goes_straight_into_its_months(pg_store: Store) -> None:
    """The synthetic seed writes 150 days back: those months are made before it writes,
    so the next open has nothing to move (at 10M profiles that would be 30M events)."""
    with at(NOV):
        seed_synthetic(store=pg_store, profiles=300, actor=ACTOR)

    found = rows(pg_store)

    assert len(found) > 300
    assert not [r for r in found if r[2] == "ledger_event_default"]
    assert {r[2] for r in found} >= {"ledger_event_2026_06", "ledger_event_2026_11"}
    assert all(r[2] == ledger_partitions.partition_of(r[1]) for r in found)


def test_on_sqlite_the_ledger_stays_one_table(sqlite_store: Store) -> None:
    write_month(sqlite_store, NOV, "November")
    with sqlite_store.engine.connect() as conn:
        assert migrations.schema_version(conn) == 17
        assert not ledger_partitions.is_partitioned(conn)
        assert ledger_partitions.maintain(conn) == ledger_partitions.Upkeep()
        assert ledger_verify.verify(conn).intact
