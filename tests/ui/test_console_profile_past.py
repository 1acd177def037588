"""The Profiles detail steps back in time through the person's events (``[`` and ``]``),
and erases a person after asking why (issue 12, asks 4 and 5)."""

from pathlib import Path

from console_pilot import SEED_ACTOR, SIZE, paste, settle, start, table_rows
from textual.widgets import DataTable, Input, Static

from app.core import ledger_verify, profiles, subscriptions
from app.core.store import Store
from app.ui.modals.erase_profile import EraseProfileModal
from app.ui.sections.profiles import ProfilesSection


def summary_text(app: object) -> str:
    widget = app.query_one("#profile-summary", Static)  # type: ignore[attr-defined]
    return str(widget.render())


def flip_first_group(store: Store) -> tuple[str, str, int]:
    """Two changes to the first profile's first group: unsubscribed, then subscribed again.
    Returns the identity, the group's name and the id of the unsubscribe."""
    with store.write() as session:
        identity = profiles.search_profiles(session, "")[0].identity
        view = profiles.profile_view(session, identity)
        group = view.groups[0]
        first = subscriptions.set_state_for(
            session=session, identity=identity, group_id=group.group_id,
            status="unsubscribed", source="cli", actor=SEED_ACTOR,
        )  # fmt: skip
        subscriptions.set_state_for(
            session=session, identity=identity, group_id=group.group_id,
            status="subscribed", source="cli", actor=SEED_ACTOR,
        )  # fmt: skip
    assert first.event is not None
    return identity, group.group_name, first.event.id


async def test_brackets_step_back_through_the_events_and_forward_to_now(
    sample_db: Path, make_app, open_db
) -> None:
    identity, group_name, unsubscribe_id = flip_first_group(open_db(sample_db))
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2")
        section = app.query_one(ProfilesSection)
        detail = app.query_one("#profile-groups", DataTable)
        await settle(pilot, lambda: section.view is not None)
        assert section.view is not None and section.view.identity == identity
        row = next(r for r in table_rows(detail) if r[0] == group_name)
        assert row[1] == "subscribed"

        await pilot.press("left_square_bracket")  # before the resubscribe
        await settle(pilot, lambda: "As it was" in summary_text(app))

        assert f"just after event {unsubscribe_id}" in summary_text(app)
        row = next(r for r in table_rows(detail) if r[0] == group_name)
        assert (row[1], row[2], row[3]) == (
            "unsubscribed",
            "unsubscribed",
            f"event {unsubscribe_id}",
        )

        await pilot.press("right_square_bracket")  # the latest event: back to now
        await settle(pilot, lambda: "As it was" not in summary_text(app))
        row = next(r for r in table_rows(detail) if r[0] == group_name)
        assert row[1] == "subscribed"


async def test_erase_asks_why_then_erases_and_the_ledger_still_verifies(
    sample_db: Path, make_app, open_db
) -> None:
    other = open_db(sample_db)
    with other.read() as session:
        person = profiles.search_profiles(session, "")[0]
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2")
        section = app.query_one(ProfilesSection)
        await settle(pilot, lambda: section.view is not None)
        await pilot.press("E")
        dialog = app.screen
        assert isinstance(dialog, EraseProfileModal)
        await pilot.press("ctrl+s")  # no reason: refused, nothing erased
        await settle(pilot, lambda: "reason" in str(dialog.query_one("#form-error").render()))
        assert isinstance(app.screen, EraseProfileModal)
        dialog.query_one("#reason", Input).focus()
        await paste(pilot, "GDPR request 42")
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: not isinstance(app.screen, EraseProfileModal))

    with other.read() as session:
        assert profiles.search_profiles(session, person.identity) == []
        erased = session.get(type(person), person.id)
        assert erased is not None and erased.email is None and erased.name == ""
    with other.engine.connect() as conn:
        assert ledger_verify.verify(conn).intact
