"""First run on an empty store: the console offers the sample data."""

from pathlib import Path

from console_pilot import CONSOLE_USER, SIZE, column, settle
from sqlalchemy import func
from sqlmodel import select
from textual.widgets import DataTable, Static

from app.core import groups
from app.core.models import Group, Profile
from app.core.seed import GROUPS_FILE, read_group_specs, sample_data_dir
from app.core.store import Store
from app.ui.modals.confirm import ConfirmModal
from app.ui.sections.groups import GroupsSection


def counts(store: Store) -> tuple[int, int]:
    with store.read() as session:
        return (
            session.exec(select(func.count()).select_from(Group)).one(),
            session.exec(select(func.count()).select_from(Profile)).one(),
        )


async def wait_for_offer(pilot) -> ConfirmModal:  # type: ignore[no-untyped-def]
    await settle(
        pilot, lambda: isinstance(pilot.app.screen, ConfirmModal), what="the sample data offer"
    )
    modal = pilot.app.screen
    assert str(modal.query_one(".dialog-title", Static).render()) == "This store is empty"
    assert "Load the sample data?" in str(modal.query_one("#confirm-message", Static).render())
    return modal


async def test_y_loads_the_sample_data(empty_db: Path, make_app, open_db) -> None:
    # A quicker poll still: the ~5,600 sample events reach the log pane in 500-event batches.
    app = make_app(empty_db, offer_sample_data=True, poll_seconds=0.05)
    store = open_db(empty_db)
    specs = read_group_specs(sample_data_dir() / GROUPS_FILE)
    active = sorted((s.name for s in specs if s.status == "active"), key=str.casefold)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_offer(pilot)
        await pilot.press("y")
        await settle(
            pilot,
            lambda: (
                column(app.query_one("#groups-table", DataTable)) == active
                and app.query_one(GroupsSection).counts is not None
            ),
            timeout=15,
            what="the sample groups in the table",
        )
        assert str(app.query_one("#active-count").render()) == f"{len(active)} / 50 active"
    n_groups, n_profiles = counts(store)
    assert n_groups == len(specs) and n_profiles > 1000
    with store.read() as session:
        assert {g.created_by for g in groups.list_groups(session, status="all")} == {CONSOLE_USER}


async def test_n_leaves_the_store_empty(empty_db: Path, make_app, open_db) -> None:
    app = make_app(empty_db, offer_sample_data=True)
    store = open_db(empty_db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_offer(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmModal)
        assert app.query_one("#groups-table", DataTable).row_count == 0
        assert (
            str(app.query_one("#groups-detail", Static).render())
            == "No groups here. Press n to create one."
        )
        assert str(app.query_one("#active-count").render()) == "0 / 50 active"
    assert counts(store) == (0, 0)
