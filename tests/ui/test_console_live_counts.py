"""The Groups section's Subscribed / Unsubscribed counts follow the ledger's events:
a state change made by another process moves its group's counts by one, from the
event the log follower read, without counting every state again."""

from pathlib import Path

import pytest
from console_pilot import SIZE, column, settle, start, table_rows, wait_for
from sqlmodel import col, select
from textual.widgets import DataTable

from app.core import groups, subscriptions
from app.core.models import SUBSCRIBED, UNSUBSCRIBED, GroupState, Profile
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
    count_all = groups.group_counts

    def counting(session):  # type: ignore[no-untyped-def]
        full_counts.append(1)
        return count_all(session)

    monkeypatch.setattr(groups, "group_counts", counting)
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
        # What the section shows is what a full count finds now.
        with other.read() as session:
            assert app.query_one(GroupsSection).counts == count_all(session)
