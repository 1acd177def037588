"""The Groups section's Subscribed / Unsubscribed counts follow the ledger's events:
a state change made by another process moves its group's counts by one, from the
event the log follower read, without counting every state again."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from console_pilot import SIZE, column, settle, start, table_rows, wait_for
from sqlmodel import col, select
from textual.widgets import DataTable

from app.core import groups, segments, subscriptions
from app.core.event_names import CHANNEL_UNSUBSCRIBED
from app.core.groups import GroupCounts
from app.core.ledger import EventRecord
from app.core.models import SUBSCRIBED, UNSUBSCRIBED, GroupState, Profile
from app.ui.reads.group_counts import LiveCounts
from app.ui.sections.groups import GroupsSection


def counts_shown(app, name: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """The Subscribed and Unsubscribed cells of a group's row, as numbers."""
    table = app.query_one("#groups-table", DataTable)
    row = table_rows(table)[column(table).index(name)]
    return int(row[-2].replace(",", "")), int(row[-1].replace(",", ""))


async def test_a_state_change_elsewhere_moves_the_count_by_one_without_a_recount(
    sample_db: Path, make_app, open_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    full_counts = []
    count_all = segments.group_counts  # the full count (from the index, or SQL)

    def counting(store, **kwargs):  # type: ignore[no-untyped-def]
        full_counts.append(1)
        return count_all(store, **kwargs)

    monkeypatch.setattr(segments, "group_counts", counting)
    other = open_db(sample_db)  # another process's connection
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        assert len(full_counts) == 1
        before = counts_shown(app, "Newsletter")

        # Someone still subscribed leaves the Newsletter, through the landing server
        # (another process).
        with other.write() as session:
            newsletter = groups.find_group(session, "Newsletter")
            left = select(GroupState.profile_id).where(
                GroupState.group_id == newsletter.id, GroupState.state == UNSUBSCRIBED
            )
            person = session.exec(
                select(Profile).where(col(Profile.id).not_in(left)).order_by(col(Profile.id))
            ).first()
            assert person is not None
            subscriptions.set_state(
                session=session,
                profile=person,
                group=newsletter,
                status=UNSUBSCRIBED,
                source="landing_page",
                actor="",
            )
        await wait_for(
            pilot,
            lambda: counts_shown(app, "Newsletter") != before,
            what="the Newsletter's counts to move",
        )
        await settle(pilot)
        assert counts_shown(app, "Newsletter") == (before[0] - 1, before[1] + 1)
        assert len(full_counts) == 1, "the counts were read again in full"

        # And back: subscribed again, the counts are where they were.
        with other.write() as session:
            subscriptions.set_state(
                session=session,
                profile=person,
                group=newsletter,
                status=SUBSCRIBED,
                source="landing_page",
                actor="",
            )
        await wait_for(pilot, lambda: counts_shown(app, "Newsletter") == before)
        await settle(pilot)
        assert len(full_counts) == 1
        # What the section shows is what a full count (in SQL) finds now.
        with other.read() as session:
            assert app.query_one(GroupsSection).counts == groups.group_counts(session)


def event(event_id: int, group_id: int | None, old: str | None, new: str) -> EventRecord:
    """A Channel Unsubscribed event of a group (None: all email)."""
    return EventRecord(
        id=event_id,
        ts=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        name=CHANNEL_UNSUBSCRIBED,
        identity="p1",
        group_id=group_id,
        source="landing_page",
        actor="",
        properties={"Group ID": group_id, "Old State": old, "New State": new},
    )


def test_events_move_the_counts_by_the_effective_change() -> None:
    """Never set means the policy's default: opting in to an opt-in group moves one
    person to Subscribed; unsubscribing from an opt-out group moves one the other way;
    a change to the same effective state, all email, or an event already counted
    moves nothing."""
    live = LiveCounts({1: GroupCounts(10, 90), 2: GroupCounts(90, 10)}, as_of=5)
    policies = {1: "opt-in", 2: "opt-out"}
    moved = live.apply(
        [
            event(5, 1, None, SUBSCRIBED),  # already in the count (as_of 5)
            event(6, 1, None, SUBSCRIBED),  # opt-in, never set -> subscribed
            event(7, 2, None, UNSUBSCRIBED),  # opt-out, never set -> unsubscribed
            event(8, 2, None, SUBSCRIBED),  # opt-out default already subscribed
            event(9, None, None, UNSUBSCRIBED),  # all email: not a group count
        ],
        policies,
    )
    assert moved == 2
    assert live.counts == {1: GroupCounts(11, 89), 2: GroupCounts(89, 11)}
    assert live.as_of == 9
