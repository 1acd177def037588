"""Group pickers of up to 50 groups filter as you type: "news" narrows the list to
Newsletter, a few keys tick it, and ticks made while filtered are kept."""

from pathlib import Path

import pytest
from console_pilot import NOW, SEED_ACTOR, SIZE, settle, start
from textual.widgets import Input, Select, SelectionList

from app.core import groups, landing, profiles
from app.core.store import open_store
from app.ui.modals.change_state import ChangeStateModal
from app.ui.sections.segments import SegmentsSection
from app.ui.widgets.clauses import GroupsClause
from app.ui.widgets.group_picker import GroupPicker
from app.ui.widgets.landing_form import LandingForm


@pytest.fixture
def fifty_db(tmp_path: Path) -> Path:
    """50 active groups, "Newsletter" last of them by name; one profile."""
    path = tmp_path / "store.db"
    store = open_store(path)
    try:
        with store.write() as session:
            for n in range(1, 50):
                groups.create_group(
                    session=session, name=f"Local list {n:02d}", actor=SEED_ACTOR, now=NOW
                )
            groups.create_group(session=session, name="Newsletter", actor=SEED_ACTOR, now=NOW)
            profiles.create_profile(
                session=session, identity="kaito@example.com", name="Kaito", now=NOW
            )
    finally:
        store.dispose()
    return path


def ids_by_name(db: Path) -> dict[str, int]:
    store = open_store(db)
    try:
        with store.read() as session:
            return {g.name: g.id for g in groups.list_groups(session, status="all")}  # type: ignore[misc]
    finally:
        store.dispose()


def shown_labels(listing: SelectionList) -> list[str]:  # type: ignore[type-arg]
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


async def test_the_segment_builder_filters_its_groups_and_keeps_ticks(
    fifty_db: Path, make_app
) -> None:
    ids = ids_by_name(fifty_db)
    app = make_app(fifty_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("3")
        section = app.query_one(SegmentsSection)
        await settle(pilot, lambda: bool(section.query(GroupsClause)), what="the first clause")
        clause = section.query_one(GroupsClause)
        listing = clause.query_one(SelectionList)
        listing.focus()
        await settle(pilot, lambda: listing.has_focus, what="the focus on the group list")
        # Tick one group the slow way, then find Newsletter by typing.
        await pilot.press("down", "down", "space")
        assert "Local list 02" in [str(p) for p in shown_labels(listing)][2:3]
        await pilot.press(*"news")
        assert shown_labels(listing) == ["Newsletter"]
        assert clause.query_one(Input).value == "news"
        await pilot.press("enter", "space")  # back to the list, tick
        await settle(pilot)
        condition = clause.read_controls()
        assert condition.group_ids == (ids["Local list 02"], ids["Newsletter"])
        # Clearing the filter (backspace from the list) shows every group again, both
        # still ticked.
        await pilot.press(*["backspace"] * 4)
        await settle(pilot)
        assert clause.query_one(Input).value == ""
        assert len(shown_labels(listing)) == 51  # "All" and the 50 groups
        assert set(listing.selected) == {ids["Local list 02"], ids["Newsletter"]}
        assert clause.read_controls().group_ids == (ids["Local list 02"], ids["Newsletter"])


async def test_the_landing_page_groups_filter_as_you_type(fifty_db: Path, make_app) -> None:
    ids = ids_by_name(fifty_db)
    app = make_app(fifty_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("5")
        form = app.query_one(LandingForm)
        listing = app.query_one("#landing-groups", SelectionList)
        await settle(pilot, lambda: listing.option_count == 50, what="the shown groups")
        assert form.shown() == set(ids.values())
        listing.focus()
        await settle(pilot, lambda: listing.has_focus, what="the focus on the group list")
        await pilot.press(*"news")
        assert shown_labels(listing) == ["Newsletter"]
        await pilot.press("enter", "space")  # untick: hide Newsletter from the page
        await settle(pilot)
        assert form.shown() == set(ids.values()) - {ids["Newsletter"]}
        await pilot.press("ctrl+s")
        await settle(pilot)
    store = open_store(fifty_db)
    try:
        with store.read() as session:
            shown = {g.id for g in groups.list_groups(session) if g.shown_on_landing_page}
    finally:
        store.dispose()
    assert shown == set(ids.values()) - {ids["Newsletter"]}
    assert landing  # the module the page is built from


async def test_the_change_state_dialog_finds_a_group_by_typing(fifty_db: Path, make_app) -> None:
    ids = ids_by_name(fifty_db)
    app = make_app(fifty_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2", "s")
        form = app.screen
        assert isinstance(form, ChangeStateModal)
        target = form.query_one("#target", Select)
        await pilot.press("shift+tab", "enter")
        await settle(pilot, lambda: target.expanded, what="the list of targets to open")
        await pilot.press(*"news", "enter")
        assert target.value == ids["Newsletter"]


def test_a_picker_keeps_ticks_it_hides() -> None:
    """The widget on its own: hidden ticks count, and a new filter does not lose them."""
    assert GroupPicker.matches("Newsletter", "NEWS")
    assert not GroupPicker.matches("Local list 02", "news")


async def test_the_campaign_wizard_pickers_filter_as_you_type(
    fifty_db: Path, make_app, open_db
) -> None:
    """Step 3's "do not send to" picker: "news" narrows 50 groups to Newsletter; the tick
    made while filtered is saved with the draft, as is one made before filtering."""
    from app.core import campaigns
    from app.ui.screens.campaign_wizard import CampaignWizard

    ids = ids_by_name(fifty_db)
    app = make_app(fifty_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4", "n")
        await settle(pilot, lambda: isinstance(app.screen, CampaignWizard), what="the wizard")
        wizard = app.screen
        assert isinstance(wizard, CampaignWizard)
        for field, value in (
            ("#name", "Winter"),
            ("#subject", "Hello"),
            ("#from-address", "news@example.com"),
        ):
            wizard.query_one(field, Input).value = value
        await pilot.press("ctrl+n")
        await settle(pilot, lambda: wizard.step == 2, what="step 2")
        await pilot.press("ctrl+n")
        await settle(pilot, lambda: wizard.step == 3, what="step 3")
        listing = wizard.query_one("#do-not-send-to", SelectionList)
        assert listing.has_focus
        await pilot.press("down", "space")  # Local list 02, the slow way
        await pilot.press(*"news")
        assert shown_labels(listing) == ["Newsletter"]
        await pilot.press("enter", "space")
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
    with open_db(fifty_db).read() as session:
        saved = campaigns.get_campaign(session, "Winter")
        assert saved.do_not_send_to == [ids["Local list 02"], ids["Newsletter"]]
