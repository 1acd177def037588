"""The Profiles detail follows the store, and the change-state dialog opens on
the group in context rather than on the most drastic choice (all email)."""

from pathlib import Path

from console_pilot import SEED_ACTOR, SIZE, column, select_row, settle, start
from textual.widgets import DataTable, Select

from app.core import groups, profiles
from app.core.profiles import ProfileView
from app.core.store import Store
from app.ui.modals.change_state import ChangeStateModal
from app.ui.sections.profiles import ProfilesSection


def first_profile(store: Store) -> ProfileView:
    """The profile the Profiles section shows first."""
    with store.read() as session:
        return profiles.profile_view(session, profiles.search_profiles(session, "")[0].identity)


async def test_groups_created_or_renamed_elsewhere_show_in_the_open_detail(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    other = open_db(sample_db)  # another process: the CLI, say
    person = first_profile(other)
    renamed = person.groups[0]
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2")
        section = app.query_one(ProfilesSection)
        detail = app.query_one("#profile-groups", DataTable)
        await settle(pilot, lambda: section.view is not None)
        assert section.view is not None and section.view.identity == person.identity
        assert "Aardvark news" not in column(detail)
        with other.write() as session:
            groups.create_group(
                session=session, name="Aardvark news", actor=SEED_ACTOR, source="cli"
            )
            groups.update_group(
                session=session,
                group_id=renamed.group_id,
                name="Renamed elsewhere",
                actor=SEED_ACTOR,
                source="cli",
            )
        # No key pressed: the detail follows the ledger.
        await settle(
            pilot,
            lambda: "Aardvark news" in column(detail) and "Renamed elsewhere" in column(detail),
            what="the detail to show the new and renamed groups",
        )
        assert renamed.group_name not in column(detail)
        assert section.view is not None and section.view.identity == person.identity


async def test_change_state_opens_on_the_first_group_not_all_email(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    person = first_profile(open_db(sample_db))
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2", "s")
        form = app.screen
        assert isinstance(form, ChangeStateModal)
        assert form.query_one("#target", Select).value == person.groups[0].group_id


async def test_change_state_opens_on_the_group_under_the_detail_cursor(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    person = first_profile(open_db(sample_db))
    chosen = person.groups[3]
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2", "tab")
        detail = app.query_one("#profile-groups", DataTable)
        while app.focused is not detail:
            await pilot.press("tab")
        await select_row(pilot, detail, chosen.group_name)
        # Back to the results list: the group under the detail's cursor is still the context.
        await pilot.press("shift+tab")
        assert app.focused is not detail
        await pilot.press("s")
        form = app.screen
        assert isinstance(form, ChangeStateModal)
        assert form.query_one("#target", Select).value == chosen.group_id


async def test_the_detail_says_when_the_address_bounced(sample_db: Path, make_app, open_db) -> None:
    """A hard bounce recorded elsewhere (the inbound listener) shows in the open detail."""
    from textual.widgets import Static

    from app.core import bounces

    app = make_app(sample_db)
    other = open_db(sample_db)
    person = first_profile(other)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2")
        section = app.query_one(ProfilesSection)
        summary = app.query_one("#profile-summary", Static)
        await settle(pilot, lambda: section.view is not None)
        assert "Undeliverable" not in str(summary.render())
        with other.write() as session:
            bounces.record_bounce(
                session,
                profile_id=person.id,
                campaign_id=None,
                bounce=bounces.Bounce("5.1.1", "failed", "smtp; 550 user unknown", ""),
            )
        await settle(
            pilot,
            lambda: "Undeliverable address" in str(summary.render()),
            what="the detail to say the address bounced",
        )
