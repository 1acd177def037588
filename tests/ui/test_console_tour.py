"""The demo tour (``subgroups demo --tour``): the presenter's keys move it on and start
it again, each step notices when it is done (from this console or any other
process), and the story runs to its end: a recipient leaves through a campaign's
one-click link, the event shows in the log, the explainer says why they are left out.
"""

from collections.abc import Callable
from pathlib import Path

from console_pilot import SIZE, settle, start, type_text
from textual.pilot import Pilot
from textual.widgets import Static

from app.core import campaigns, groups, segments
from app.core.models import UNSUBSCRIBED, Event
from app.core.segment_rules import GroupsCondition, SegmentRule
from app.core.store import Store, open_store
from app.ui.modals.explain import ExplainModal
from app.ui.tour_app import TourApp
from app.ui.tour_steps import STEPS
from app.ui.widgets.tour import TourPanel, TourView


def make_tour(db: Path) -> tuple[TourApp, Store]:
    store = open_store(db)
    app = TourApp(store=store, offer_sample_data=False, poll_seconds=0.1)
    app.animation_level = "none"
    return app, store


def panel_text(app: TourApp) -> tuple[str, str, str]:
    """(title, narration and status, keys) as the main screen's panel shows them."""
    panel = app.tour
    narration = str(panel.query_one("#tour-narration", Static).content)
    status = str(panel.query_one("#tour-status", Static).content)
    return str(panel.border_title), f"{narration}\n{status}", str(panel.border_subtitle)


async def tour_started(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, TourApp)
    await start(pilot)
    await settle(pilot, lambda: app.tour.state.after_id is not None, what="the tour's start")


async def step_done(pilot: Pilot[None], what: str) -> None:
    app = pilot.app
    assert isinstance(app, TourApp)
    await settle(pilot, lambda: app.tour.state.done, what=what)


async def test_f8_moves_on_and_f9_starts_again(sample_db: Path) -> None:
    app, store = make_tour(sample_db)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await tour_started(pilot)
            title, text, keys = panel_text(app)
            assert title == f"Tour 1/{len(STEPS)}: Create a group"
            assert "then n" in text and "Waiting for a new group" in text
            assert keys == "F8 next step · F9 restart"
            await pilot.press("f8")
            assert panel_text(app)[0] == "Tour 2/6: A segment that excludes a group"
            await pilot.press("f8")
            assert panel_text(app)[0].startswith("Tour 3/6: ")
            await pilot.press("f9")
            await settle(pilot, lambda: app.tour.state.after_id is not None)
            assert panel_text(app)[0] == "Tour 1/6: Create a group"
    finally:
        store.dispose()


async def test_creating_a_group_in_the_console_completes_the_first_step(sample_db: Path) -> None:
    app, store = make_tour(sample_db)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await tour_started(pilot)
            assert not app.tour.state.done
            await pilot.press("n")
            await type_text(pilot, "Spring")
            await pilot.press("ctrl+s")
            await step_done(pilot, "the first step done")
            _, text, _ = panel_text(app)
            assert '✓ Done. Group "Spring" created: 12 / 50 active.' in text
            # Done stays done, and a restart forgets it.
            await pilot.press("f9")
            await settle(pilot, lambda: app.tour.state.after_id is not None)
            assert not app.tour.state.done
            assert "Waiting for a new group" in panel_text(app)[1]
    finally:
        store.dispose()


async def test_steps_done_by_another_process_count_and_names_show_as_typed(
    sample_db: Path, open_db: Callable[[Path], Store]
) -> None:
    """The CLI (another connection) creates a group named like markup, saves a segment
    that excludes it and a draft not sent to people who left it: each step notices."""
    app, store = make_tour(sample_db)
    other = open_db(sample_db)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await tour_started(pilot)
            with other.write() as session:
                group = groups.create_group(session=session, name="[b]VIP[/b]", actor="cli")
                group_id = group.id
            assert group_id is not None
            await step_done(pilot, "the group step")
            assert 'Group "[b]VIP[/b]" created' in panel_text(app)[1]

            await pilot.press("f8")
            with other.write() as session:
                rule = SegmentRule((GroupsCondition(mode="include", group_ids=(group_id,)),))
                segments.save_segment(session=session, name="Only VIP", rule=rule, actor="cli")
            await settle(pilot)
            assert not app.tour.state.done, "an including segment is not the step"
            with other.write() as session:
                rule = SegmentRule((GroupsCondition(mode="exclude", group_ids=(group_id,)),))
                segments.save_segment(session=session, name="No VIP", rule=rule, actor="cli")
            await step_done(pilot, "the segment step")
            assert 'Segment "No VIP" saved: ' in panel_text(app)[1]

            await pilot.press("f8")
            with other.write() as session:
                campaigns.create_campaign(
                    session=session, name="VIP <launch>", actor="cli", do_not_send_to=[group_id]
                )
            await step_done(pilot, "the campaign step")
            assert (
                'Campaign "VIP <launch>" is not sent to people who left [b]VIP[/b].'
                in panel_text(app)[1]
            )
            await pilot.press("f8")
            assert '"VIP <launch>"' in panel_text(app)[1]  # the next step names it
    finally:
        store.dispose()


async def test_the_story_to_its_end(sample_db: Path, open_db: Callable[[Path], Store]) -> None:
    """From the fourth step (the steps before skipped): F8 makes a recipient of the
    draft "Winter sale" (not sent to people who left Promotions, as in the demo's sample)
    press its one-click link; the event shows in the log; F8 opens the explainer, which
    says why they are left out; F8 ends the tour."""
    check = open_db(sample_db)
    with check.write() as session:
        promotions = groups.find_group(session, "Promotions")
        campaigns.create_campaign(
            session=session, name="Winter sale", actor="test", do_not_send_to=[promotions.id]
        )
    app, store = make_tour(sample_db)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await tour_started(pilot)
            await pilot.press("f8", "f8", "f8")
            assert panel_text(app)[2] == "F8 a recipient unsubscribes · F9 restart"
            assert "the draft from step 3" in panel_text(app)[1]
            await pilot.press("f8")
            await step_done(pilot, "the unsubscribe")
            found = app.tour.state.found["landing page unsubscribe"]
            assert found.campaign == "Winter sale"
            with check.read() as session:
                event = session.get(Event, found.event_id)
                assert event is not None
                assert (event.identity, event.source) == (found.identity, "one_click")
                assert event.properties["Group"] == "Promotions"
                assert event.properties["New State"] == UNSUBSCRIBED
                winter = campaigns.get_campaign_by_id(session, found.campaign_id or 0)
                assert winter.name == "Winter sale" and event.campaign_id == winter.id
            assert f"{found.identity} left Promotions" in panel_text(app)[1]

            await pilot.press("f8")
            await step_done(pilot, "the event in the log")
            assert (
                f"Channel Unsubscribed, {found.identity}, Promotions, source one_click"
                in (panel_text(app)[1])
            )

            await pilot.press("f8")
            assert f'why {found.identity} will not get "Winter sale"' in panel_text(app)[1]
            await pilot.press("f8")
            await settle(pilot, lambda: isinstance(app.screen, ExplainModal), what="explainer")
            await step_done(pilot, "the explainer's answer")
            verdict = str(app.screen.query_one("#explain-verdict", Static).content)
            assert verdict.startswith("Verdict: Left out at 'Do not send to'")
            assert "left out at 'Do not send to'" in panel_text(app)[1]
            await pilot.press("escape")
            await pilot.press("f8")
            title, _, keys = panel_text(app)
            assert (title, keys) == ("Tour: the end", "F9 starts the tour again")
    finally:
        store.dispose()


async def test_the_wizard_shows_the_tour_too(sample_db: Path) -> None:
    """The campaign wizard covers the console: it gets a view of the tour of its own."""
    app, store = make_tour(sample_db)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await tour_started(pilot)
            await pilot.press("f8", "f8", "4")
            await settle(pilot, what="Campaigns")
            await pilot.press("n")
            await settle(pilot, lambda: len(app.screen_stack) > 1, what="the wizard")
            views = app.screen.query(TourView)
            assert len(views) == 1 and not isinstance(views.first(), TourPanel)
            assert str(views.first().border_title).startswith("Tour 3/6: ")
    finally:
        store.dispose()
