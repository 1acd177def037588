"""The segment index starts warm: a process loads the store's snapshot and replays
only newer ledger events, and its counts equal a brute-force SQL count.

Each "fresh process" here is a second ``open_store`` of the same store: it has
an empty cache, so its index is built anew from what the store holds.
"""

import logging
import random
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from app.core import (
    groups,
    index_snapshot,
    ledger,
    migrations,
    profiles,
    segments,
    snapshot_writer,
    subscriptions,
)
from app.core.bitsets import page
from app.core.models import Group, Profile
from app.core.segment_index import SegmentIndex
from app.core.segment_rules import EmailCondition, GroupsCondition, SegmentRule
from app.core.store import Store, open_store

ACTOR = "ada"
STATES = ("subscribed", "unsubscribed")


def _people(store: Store, first: int, count: int) -> list[Profile]:
    with store.write() as s:
        return [
            profiles.create_profile(session=s, identity=f"p{n}", email=f"p{n}@example.com")
            for n in range(first, first + count)
        ]


def _changes(store: Store, rng: random.Random, people: list[Profile], n: int) -> None:
    """``n`` random state changes, each with its ledger event (groups and all email)."""
    with store.write() as s:
        made = [g for g in groups.list_groups(s) if g.status == "active"]
        for _ in range(n):
            person = s.get(Profile, rng.choice(people).id)
            assert person is not None
            group: Group | None = rng.choice([*made, None])
            subscriptions.set_state(
                session=s,
                profile=person,
                group=group,
                status=rng.choice(STATES),
                source="console",
                actor=ACTOR,
            )


@pytest.fixture
def seeded(store: Store) -> Iterator[tuple[Store, list[Profile]]]:
    """Three groups (one opt-in), 60 people, 150 random state changes."""
    rng = random.Random(10)
    with store.write() as s:
        groups.create_group(session=s, name="Newsletter", actor=ACTOR)
        groups.create_group(session=s, name="Offers", actor=ACTOR)
        groups.create_group(session=s, name="Beta", policy="opt-in", actor=ACTOR)
    people = _people(store, 0, 60)
    _changes(store, rng, people, 150)
    yield store, people


def _sql_subscribed(store: Store, group: Group) -> set[int]:
    """Brute force: who is effectively subscribed, straight from the tables."""
    with store.engine.connect() as conn:
        everyone = {r[0] for r in conn.execute(text("SELECT id FROM profile"))}
        rows = conn.execute(
            text("SELECT profile_id, state FROM group_state WHERE group_id = :g"), {"g": group.id}
        ).all()
    stored = dict(rows)
    if group.policy == "opt-in":
        return {p for p in everyone if stored.get(p) == "subscribed"}
    return {p for p in everyone if stored.get(p) != "unsubscribed"}


def _sql_email_unsubscribed(store: Store) -> int:
    with store.engine.connect() as conn:
        query = text("SELECT count(*) FROM profile WHERE all_email = 'unsubscribed'")
        return int(conn.execute(query).scalar() or 0)


def _assert_counts_match_sql(store: Store) -> None:
    with store.read() as s:
        every_group = groups.list_groups(s, status="all")
    active = [g for g in every_group if g.status == "active"]
    for group in every_group:
        assert group.id is not None
        expected = _sql_subscribed(store, group)
        rule = SegmentRule((GroupsCondition("include", (group.id,)),))
        assert segments.count(store, rule).total == len(expected), group.name
        everyone = segments.count(store, SegmentRule()).total
        rule = SegmentRule((GroupsCondition("exclude", (group.id,)),))
        assert segments.count(store, rule).total == everyone - len(expected), group.name
    both = set.intersection(*(_sql_subscribed(store, g) for g in active))
    all_rule = SegmentRule((GroupsCondition("include", None, "all"),))
    assert segments.count(store, all_rule).total == len(both)
    email_rule = SegmentRule((EmailCondition("unsubscribed"),))
    assert segments.count(store, email_rule).total == _sql_email_unsubscribed(store)


def _snapshot(store: Store) -> int:
    """Write the store's snapshot from a fresh index; its ledger id."""
    index = SegmentIndex()
    assert snapshot_writer.write_snapshot(store, index)
    with store.read() as s:
        found = index_snapshot.stored_ledger_id(s)
    assert found is not None
    return found


def _fresh(store: Store) -> Store:
    return open_store(store.url)


def _no_table_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("built from the tables, not from the snapshot")

    monkeypatch.setattr(SegmentIndex, "_build_from_tables", refuse)


def test_counts_after_snapshot_and_newer_events_equal_sql(
    seeded: tuple[Store, list[Profile]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, people = seeded
    written = _snapshot(store)
    # After the snapshot: more changes, new people, a new group, an archived one.
    rng = random.Random(11)
    people += _people(store, 60, 15)
    _changes(store, rng, people, 120)
    with store.write() as s:
        groups.create_group(session=s, name="Late", actor=ACTOR)
        offers = groups.find_group(s, "Offers")
        assert offers.id is not None
        groups.archive_group(session=s, group_id=offers.id, actor=ACTOR)
    _changes(store, rng, people, 40)
    with store.read() as s:
        assert ledger.latest_id(s) > written

    _no_table_build(monkeypatch)
    again = _fresh(store)
    try:
        _assert_counts_match_sql(again)
        index = segments.index_for(again)
        assert index.snapshot_ledger_id == written  # it started from the snapshot
        assert index.profile_count == 75
    finally:
        again.dispose()


def test_a_snapshot_with_no_newer_events_gives_the_same_counts(
    seeded: tuple[Store, list[Profile]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _people_ = seeded
    _snapshot(store)
    _no_table_build(monkeypatch)
    again = _fresh(store)
    try:
        _assert_counts_match_sql(again)
    finally:
        again.dispose()


@pytest.mark.parametrize(
    "damage",
    [
        # A flipped byte: the checksum no longer matches.
        "UPDATE index_snapshot SET data = :garbage WHERE part = 'everyone'",
        # Bytes that are no roaring bitmap, under a matching checksum.
        "UPDATE index_snapshot SET data = :garbage, checksum = :crc WHERE part = 'everyone'",
        # Parts from two different writes.
        "UPDATE index_snapshot SET ledger_id = ledger_id - 1 WHERE part = 'everyone'",
        # A snapshot ahead of the store's ledger (a restored store): replay cannot fix it.
        "UPDATE index_snapshot SET ledger_id = ledger_id + 1000",
    ],
)
def test_an_unusable_snapshot_is_rebuilt_from_the_tables(
    seeded: tuple[Store, list[Profile]], damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    store, people = seeded
    _snapshot(store)
    # Changes the damaged snapshot would hide if it were used.
    _changes(store, random.Random(12), people, 60)
    garbage = b"\x00not a bitmap\xff"
    with store.engine.begin() as conn:
        conn.execute(text(damage), {"garbage": garbage, "crc": index_snapshot.checksum(garbage)})

    again = _fresh(store)
    try:
        with caplog.at_level(logging.WARNING, logger="app.core"):
            _assert_counts_match_sql(again)
        assert "snapshot" in caplog.text
        index = segments.index_for(again)
        # Rewritten, and usable by the next process.
        assert snapshot_writer.write_snapshot(again, index)
        with again.read() as s:
            assert index_snapshot.load(s) is not None
    finally:
        again.dispose()


def test_the_background_writer_refreshes_a_large_enough_index(
    seeded: tuple[Store, list[Profile]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, people = seeded
    monkeypatch.setattr(snapshot_writer, "MIN_PROFILES", 10)
    monkeypatch.setattr(snapshot_writer, "EVENTS_BEHIND", 50)
    segments.count(store, SegmentRule())
    writer = store.cache[snapshot_writer.WRITER_KEY]
    writer.join(timeout=30)
    with store.read() as s:
        first = index_snapshot.stored_ledger_id(s)
        assert first == ledger.latest_id(s)
    # A few events behind: not worth a rewrite; many: rewritten.
    _changes(store, random.Random(13), people, 10)
    segments.count(store, SegmentRule())
    assert store.cache[snapshot_writer.WRITER_KEY] is writer
    _changes(store, random.Random(14), people, 60)
    segments.count(store, SegmentRule())
    store.cache[snapshot_writer.WRITER_KEY].join(timeout=30)
    with store.read() as s:
        assert index_snapshot.stored_ledger_id(s) == ledger.latest_id(s) > (first or 0)


def test_a_failed_snapshot_write_is_logged_and_counts_go_on(
    seeded: tuple[Store, list[Profile]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, _people_ = seeded
    monkeypatch.setattr(snapshot_writer, "MIN_PROFILES", 10)

    def broken(*_: object, **__: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(index_snapshot, "save", broken)
    with caplog.at_level(logging.ERROR, logger="app.core.snapshot_writer"):
        total = segments.count(store, SegmentRule()).total
        store.cache[snapshot_writer.WRITER_KEY].join(timeout=30)
    assert total == 60
    assert "could not write the segment index snapshot" in caplog.text
    with store.read() as s:
        assert index_snapshot.stored_ledger_id(s) is None
    _assert_counts_match_sql(store)


def test_member_pages_come_by_rank(seeded: tuple[Store, list[Profile]]) -> None:
    store, _people_ = seeded
    with store.read() as s:
        newsletter = groups.find_group(s, "Newsletter")
    ids = sorted(_sql_subscribed(store, newsletter))
    rule = SegmentRule((GroupsCondition("include", (newsletter.id or 0,)),))
    with store.engine.connect() as conn:
        identity = dict(conn.execute(text("SELECT id, identity FROM profile")).all())
    for offset, limit in [(0, 5), (7, 4), (len(ids) - 2, 10), (len(ids), 5)]:
        shown = [m.identity for m in segments.members(store, rule, offset=offset, limit=limit)]
        assert shown == [identity[i] for i in ids[offset : offset + limit]], (offset, limit)
    assert page(segments.index_for(store).all_profiles(), offset=3, limit=2) == [4, 5]


def test_a_version_8_store_is_upgraded_and_then_snapshotted(store_url: str) -> None:
    first = open_store(store_url)
    try:
        with first.write() as s:
            groups.create_group(session=s, name="Newsletter", actor=ACTOR)
        _people(first, 0, 5)
        with first.engine.begin() as conn:
            conn.execute(text("DROP TABLE index_snapshot"))
            conn.execute(text("UPDATE schema_meta SET value = '8' WHERE key = 'schema_version'"))
    finally:
        first.dispose()

    upgraded = open_store(store_url)
    try:
        with upgraded.engine.connect() as conn:
            assert migrations.schema_version(conn) == migrations.LATEST_VERSION
        assert segments.count(upgraded, SegmentRule()).total == 5
        _snapshot(upgraded)
    finally:
        upgraded.dispose()
    again = open_store(store_url)
    try:
        with again.read() as s:
            newsletter = groups.find_group(s, "Newsletter")
        rule = SegmentRule((GroupsCondition("include", (newsletter.id or 0,)),))
        assert segments.count(again, rule).total == 5
        assert segments.index_for(again).snapshot_ledger_id is not None
    finally:
        again.dispose()


def test_a_cli_count_finishes_the_snapshot_it_started(
    seeded: tuple[Store, list[Profile]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short-lived command waits for its writer, so the next process starts warm."""
    from app.cli import run

    store, _people_ = seeded
    monkeypatch.setattr(snapshot_writer, "MIN_PROFILES", 10)
    assert run(["--db", store.url, "segments", "count", "--include", "Newsletter"]) == 0
    with store.read() as s:
        assert index_snapshot.stored_ledger_id(s) == ledger.latest_id(s)
        assert index_snapshot.load(s) is not None


def test_a_change_held_open_makes_the_next_writer_wait_before_the_snapshot(
    seeded: tuple[Store, list[Profile]],
) -> None:
    """PostgreSQL hands out ledger ids at insert, but a change holds the hash chain's
    head until it commits: the next writer waits, so a snapshot can never see id N+1
    while id N is still to come, and the snapshot taken after both matches SQL."""
    store, people = seeded
    if store.is_sqlite:
        pytest.skip("SQLite serialises writers, so ids always commit in order there")
    from sqlmodel import Session

    with store.read() as s:
        newsletter = groups.find_group(s, "Newsletter")
    index = segments.index_for(store)
    rule = SegmentRule((GroupsCondition("include", (newsletter.id or 0,)),))
    segments.count(store, rule)
    slow = store.engine.connect()
    slow_tx = slow.begin()
    slow_session = Session(bind=slow)
    late = slow_session.get(Profile, people[0].id)
    assert late is not None
    subscriptions.set_state(
        session=slow_session,
        profile=late,
        group=slow_session.get(Group, newsletter.id),
        status="unsubscribed",
        source="console",
        actor=ACTOR,
        reason="late",
    )
    slow_session.flush()

    def next_writer() -> None:
        with store.write() as s:
            person = s.get(Profile, people[1].id)
            assert person is not None
            subscriptions.set_state(
                session=s,
                profile=person,
                group=s.get(Group, newsletter.id),
                status="unsubscribed",
                source="console",
                actor=ACTOR,
            )

    waiting = threading.Thread(target=next_writer)
    waiting.start()
    waiting.join(timeout=1.0)
    assert waiting.is_alive()  # held at the chain's head
    with store.read() as s:
        before = ledger.latest_id(s)
    slow_tx.commit()
    slow_session.close()
    slow.close()
    waiting.join(timeout=30)
    assert not waiting.is_alive()
    with store.read() as s:
        newest = s.exec(
            text("SELECT profile_id FROM ledger_event WHERE id > :b ORDER BY id"),
            params={"b": before},
        ).all()
    assert [row[0] for row in newest] == [people[0].id, people[1].id]  # in commit order
    segments.count(store, rule)
    assert snapshot_writer.write_snapshot(store, index)

    again = _fresh(store)
    try:
        _assert_counts_match_sql(again)
    finally:
        again.dispose()
