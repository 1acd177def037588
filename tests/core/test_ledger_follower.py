"""The ledger follower behind the log pane and `events --follow` misses nothing."""

import threading

import pytest
from sqlmodel import Session

from app.core import ledger
from app.core.store import Store


def _record(session, name: str) -> int:  # type: ignore[no-untyped-def]
    event = ledger.record(session, name=name, source="cli", actor="test", properties={"Note": name})
    assert event.id is not None
    return event.id


def test_follower_sees_each_new_event_once(store: Store) -> None:
    with store.read() as session:
        follower = ledger.LedgerFollower(after_id=ledger.latest_id(session))
    with store.write() as session:
        _record(session, "First")
        _record(session, "Second")
    with store.read() as session:
        assert [e.name for e in follower.poll(session)] == ["First", "Second"]
        assert follower.poll(session) == []
    with store.write() as session:
        _record(session, "Third")
    with store.read() as session:
        assert [e.name for e in follower.poll(session)] == ["Third"]


def test_a_second_writer_waits_so_ids_commit_in_order(store: Store) -> None:
    """PostgreSQL hands out ids at insert, but every ledger writer holds the hash
    chain's head until it commits: a second writer waits for the first, so id N
    never commits after id N+1 and the follower sees events in the order written."""
    if store.is_sqlite:
        pytest.skip("SQLite serialises writers, so ids always commit in order there")
    with store.read() as session:
        follower = ledger.LedgerFollower(after_id=ledger.latest_id(session))
    slow = store.engine.connect()
    slow_tx = slow.begin()
    slow_session = Session(bind=slow)
    slow_id = _record(slow_session, "Slow")  # holds id N and the chain's head
    fast_ids: list[int] = []

    def fast_writer() -> None:
        with store.write() as session:
            fast_ids.append(_record(session, "Fast"))

    fast = threading.Thread(target=fast_writer)
    fast.start()
    fast.join(timeout=1.0)
    assert fast.is_alive() and fast_ids == []  # waiting for the slow writer's commit
    with store.read() as session:
        assert follower.poll(session) == []
    slow_tx.commit()
    slow_session.close()
    slow.close()
    fast.join(timeout=30)
    assert not fast.is_alive()
    assert fast_ids[0] > slow_id
    with store.read() as session:
        assert [e.name for e in follower.poll(session)] == ["Slow", "Fast"]
        assert follower.poll(session) == []


def test_a_gap_that_never_fills_is_forgotten(store: Store) -> None:
    """A rolled-back insert leaves an id that never commits: asked for a while, then dropped."""
    if store.is_sqlite:
        pytest.skip("SQLite reuses a rolled-back rowid, so it leaves no gap")
    with store.read() as session:
        follower = ledger.LedgerFollower(after_id=ledger.latest_id(session), gap_seconds=5)
    with store.write() as session:
        lost_id = _record(session, "Lost")
        session.rollback()
    with store.write() as session:
        kept_id = _record(session, "Kept")
    assert kept_id > lost_id
    with store.read() as session:
        assert [e.name for e in follower.poll(session, now=0.0)] == ["Kept"]
        assert lost_id in follower._gaps  # noqa: SLF001
        assert follower.poll(session, now=1.0) == []
        assert lost_id in follower._gaps  # noqa: SLF001
        assert follower.poll(session, now=6.0) == []
        assert follower._gaps == {}  # noqa: SLF001
