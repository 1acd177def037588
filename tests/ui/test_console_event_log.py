"""The live event log pane: events from another process within a second,
pause and resume, the name and group filters, and l to hide and show it."""

import time
from pathlib import Path

import pytest
from console_pilot import SIZE, column, log_lines, paste, settle, start
from textual.widgets import DataTable, Input, Static

from app.core import groups, profiles, subscriptions
from app.core.models import UNSUBSCRIBED
from app.core.store import Store
from app.ui.app import POLL_SECONDS
from app.ui.widgets.event_log import EventLogPane

CLI_USER = "someone-else"


def create_group_elsewhere(store: Store, name: str) -> None:
    """What `subgroups groups create NAME` does, from another connection (another process)."""
    with store.write() as session:
        groups.create_group(session=session, name=name, actor=CLI_USER, source="cli")


def status_of(app: object) -> str:
    return str(app.query_one("#log-status", Static).render())  # type: ignore[attr-defined]


async def test_events_from_another_process_show_within_a_second(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db, poll_seconds=POLL_SECONDS)  # the product's own poll interval
    cli = open_db(sample_db)
    with cli.read() as session:
        identity = profiles.search_profiles(session, "")[0].identity
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        before = len(log_lines(app))
        committed = time.monotonic()
        create_group_elsewhere(cli, "From the CLI")
        with cli.write() as session:
            subscriptions.set_state(
                session=session,
                profile=profiles.get_profile(session, identity),
                group=groups.find_group(session, "Newsletter"),
                status=UNSUBSCRIBED,
                source="cli",
                actor=CLI_USER,
                reason="by phone",
            )
        # Polled directly: settle would also wait for the groups reload that follows.
        while len(log_lines(app)) < before + 2 and time.monotonic() - committed < 3:
            await pilot.pause(0.02)
        seen_after = time.monotonic() - committed
        created, changed = log_lines(app)[-2:]
        # The groups table follows the ledger too (reloaded after a short pause).
        await settle(
            pilot,
            lambda: "From the CLI" in column(app.query_one("#groups-table", DataTable)),
            timeout=3,
            what="the groups table to reload",
        )
    assert seen_after < 1.0, f"took {seen_after:.2f} s"
    assert "Group Created" in created and f"'From the CLI' by {CLI_USER} [cli]" in created
    assert "Channel Unsubscribed" in changed
    assert f"{identity}: group 'Newsletter' never set → unsubscribed — by phone [cli]" in changed


async def test_l_hides_the_pane_and_p_pauses_it(sample_db: Path, make_app, open_db) -> None:
    app = make_app(sample_db)
    cli = open_db(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        pane = app.query_one(EventLogPane)
        sections = app.query_one("#sections")
        height_with_log = sections.region.height
        assert pane.region.height > 0
        await pilot.press("l")
        assert not pane.display and pane.region.height == 0
        assert sections.region.height > height_with_log
        await pilot.press("l")
        assert pane.display and pane.region.height > 0
        assert sections.region.height == height_with_log

        # p pauses (and shows the pane when it is hidden): new events are counted, not shown.
        shown_before = log_lines(app)
        await pilot.press("l", "p")
        assert pane.display and pane.paused
        assert status_of(app) == "PAUSED · 0 new (p resumes)"
        create_group_elsewhere(cli, "Paused one")
        create_group_elsewhere(cli, "Paused two")
        await settle(
            pilot,
            lambda: status_of(app) == "PAUSED · 2 new (p resumes)",
            what="the count of new events",
        )
        assert log_lines(app) == shown_before
        await pilot.press("p")
        assert not pane.paused
        assert status_of(app) == ""
        lines = log_lines(app)
        assert "'Paused one'" in lines[-2] and "'Paused two'" in lines[-1]
        assert lines[:-2] == shown_before[-(len(lines) - 2) :]


async def test_name_and_group_filters(sample_db: Path, make_app, open_db) -> None:
    app = make_app(sample_db)
    cli = open_db(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        create_group_elsewhere(cli, "Filter me")
        await settle(pilot, lambda: any("'Filter me'" in line for line in log_lines(app)))
        pane = app.query_one(EventLogPane)
        everything = log_lines(app)
        assert len(everything) == len(pane.events) > 10

        await pilot.click("#log-filter-name")
        assert app.focused is app.query_one("#log-filter-name", Input)
        await paste(pilot, "created")
        lines = log_lines(app)
        assert len(lines) == 1 and "Group Created" in lines[0] and "'Filter me'" in lines[0]
        assert status_of(app) == "filtered"

        await pilot.press("ctrl+u")
        assert log_lines(app) == everything
        assert status_of(app) == ""

        await pilot.click("#log-filter-group")
        await paste(pilot, "promo")
        lines = log_lines(app)
        expected = [e for e in pane.events if "promo" in (e.group_name or "").casefold()]
        assert expected, "the sample's recent events include Promotions changes"
        assert len(lines) == len(expected)
        assert all("group 'Promotions'" in line for line in lines)

        # Both filters at once: a name and a group.
        await pilot.click("#log-filter-name")
        await paste(pilot, "created")
        assert log_lines(app) == []


async def test_log_lines_use_the_panes_width_when_no_terminal_is_attached(
    sample_db: Path, make_app, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What Rich finds without a terminal (a browser session through textual-serve).
    monkeypatch.setenv("COLUMNS", "80")
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        pane_width = app.query_one("#log-lines").scrollable_content_region.width
        assert pane_width > 100
        assert max(len(line) for line in log_lines(app)) > 80
