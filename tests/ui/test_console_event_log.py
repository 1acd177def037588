"""The live event log pane: events from another process within a second,
pause and resume, the name, group, source and person filters, l to hide and show it,
the cursor and Enter for the whole event, and resubscribes labelled as such."""

import time
from dataclasses import replace
from pathlib import Path

import pytest
from console_pilot import SIZE, column, log_lines, paste, settle, start
from textual.widgets import DataTable, Input, OptionList, Static

from app.core import groups, profiles, subscriptions
from app.core.ledger import CHANNEL_UNSUBSCRIBED
from app.core.models import SUBSCRIBED, UNSUBSCRIBED
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
        lines = app.query_one("#log-lines")
        pane_width = lines.scrollable_content_region.width
        assert pane_width > 100
        shown = [lines.render_line(y).text.rstrip() for y in range(lines.size.height)]
        assert max(len(line) for line in shown) > 80


# --- the cursor, the whole event, the source and person filters, resubscribes -----


def change_elsewhere(
    store: Store,
    identity: str,
    status: str,
    *,
    group: str | None = "Newsletter",
    source: str = "cli",
    reason: str | None = None,
) -> None:
    """A state change committed by another process (the CLI, the landing server)."""
    with store.write() as session:
        subscriptions.set_state(
            session=session,
            profile=profiles.get_profile(session, identity),
            group=groups.find_group(session, group) if group else None,
            status=status,
            source=source,
            actor=CLI_USER if source == "cli" else "",
            reason=reason,
        )


def two_people(store: Store) -> tuple[str, str]:
    with store.read() as session:
        found = profiles.search_profiles(session, "")
    return found[0].identity, found[1].identity


def detail_text(app: object) -> dict[str, str]:
    """The open event detail as {field: value}."""
    from app.ui.modals.event_detail import EventDetailModal

    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, EventDetailModal)
    rows = {}
    for row in screen.query(".event-detail-row"):
        key, value = (str(s.render()) for s in row.query(Static))
        rows[key] = value
    return rows


LONG_REASON = (
    "[red]moved to the weekly digest[/red] because the monthly one arrives on "
    "Mondays, which is when the whole team is in planning meetings all day long"
)


async def test_enter_on_a_log_line_opens_the_whole_event(
    sample_db: Path, make_app, open_db
) -> None:
    from app.ui.modals.event_detail import EventDetailModal

    app = make_app(sample_db)
    cli = open_db(sample_db)
    first, second = two_people(cli)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        change_elsewhere(cli, first, UNSUBSCRIBED, reason=LONG_REASON)
        change_elsewhere(cli, second, UNSUBSCRIBED, group="Promotions")
        await settle(pilot, lambda: f"{second}: group 'Promotions'" in log_lines(app)[-1])
        lines = app.query_one("#log-lines")
        # The line is cut to the pane; the whole event is one key away.
        assert LONG_REASON not in lines.render_line(lines.size.height - 2).text

        await pilot.press("L")  # to the log's lines: the cursor starts on the newest
        assert app.focused is lines
        await pilot.press("up", "enter")
        await settle(pilot, lambda: isinstance(app.screen, EventDetailModal))
        rows = detail_text(app)
        assert rows["Name"] == "Channel Unsubscribed"
        assert rows["Identity"] == first
        assert rows["Source"] == "cli" and rows["Actor"] == CLI_USER
        assert rows["Reason"] == LONG_REASON  # whole, and as typed (no markup read)
        assert rows["Group"] == "Newsletter"
        assert rows["Old State"] == "null" and rows["New State"] == "unsubscribed"
        assert rows["Resubscribed"] == "false" and rows["Campaign ID"] == "null"

        await pilot.press("escape")
        assert not isinstance(app.screen, EventDetailModal)
        assert app.focused is lines
        # Moved up, the cursor stays on its line when new events come in.
        change_elsewhere(cli, first, UNSUBSCRIBED, group="Promotions")
        await settle(pilot, lambda: f"{first}: group 'Promotions'" in log_lines(app)[-1])
        assert lines.highlighted == len(log_lines(app)) - 3  # type: ignore[attr-defined]


async def test_a_resubscribe_is_labelled_as_one(sample_db: Path, make_app, open_db) -> None:
    from app.ui.modals.event_detail import EventDetailModal

    app = make_app(sample_db)
    cli = open_db(sample_db)
    first, _ = two_people(cli)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        change_elsewhere(cli, first, UNSUBSCRIBED)
        change_elsewhere(cli, first, SUBSCRIBED, reason="Missed the updates")
        await settle(pilot, lambda: "Missed the updates" in log_lines(app)[-1])
        left, back = log_lines(app)[-2:]
        assert left.split()[1:3] == ["Channel", "Unsubscribed"]
        assert back.split()[1] == "Resubscribed"
        assert "Channel Unsubscribed" not in back
        assert f"{first}: group 'Newsletter' unsubscribed → subscribed" in back

        await pilot.press("L", "enter")
        await settle(pilot, lambda: isinstance(app.screen, EventDetailModal))
        rows = detail_text(app)
        # The event keeps its name in the store; the detail says what it is.
        assert rows["Name"] == "Channel Unsubscribed (a resubscribe)"
        assert rows["Resubscribed"] == "true"
        await pilot.press("escape")

        # Joining for the first time is no resubscribe: "Subscribed".
        change_elsewhere(cli, first, SUBSCRIBED, group="Beta program")
        await settle(pilot, lambda: "'Beta program' never set" in log_lines(app)[-1])
        assert "  Subscribed  " in log_lines(app)[-1]

        # The name filter finds a resubscribe by either word.
        await pilot.click("#log-filter-name")
        await paste(pilot, "resub")
        found = log_lines(app)
        assert found[-1] == back and len(found) > 1  # the sample's own resubscribes too
        assert all("  Resubscribed  " in line for line in found)


async def test_source_and_person_filters_apply_to_shown_and_new_lines(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    cli = open_db(sample_db)
    first, second = two_people(cli)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        change_elsewhere(cli, first, UNSUBSCRIBED, source="landing_page")
        change_elsewhere(cli, second, UNSUBSCRIBED, source="cli")
        await settle(pilot, lambda: f"{second}: group" in log_lines(app)[-1])
        assert any(line.endswith("[import]") for line in log_lines(app))

        await pilot.click("#log-filter-source")
        await paste(pilot, "landing")
        assert status_of(app) == "filtered"
        lines = log_lines(app)
        assert len(lines) == 1 and lines[0].startswith(lines[0][:11])
        assert f"{first}: group 'Newsletter'" in lines[0] and lines[0].endswith("[landing_page]")
        # New events go through the filter too.
        change_elsewhere(cli, second, UNSUBSCRIBED, group="Promotions", source="cli")
        change_elsewhere(cli, second, UNSUBSCRIBED, group=None, source="landing_page")
        await settle(pilot, lambda: len(log_lines(app)) == 2, what="the new landing event")
        assert f"{second}: all email" in log_lines(app)[-1]
        await pilot.press("ctrl+u")

        await pilot.click("#log-filter-person")
        await paste(pilot, second.lower())
        lines = log_lines(app)
        assert len(lines) == 3
        assert all(f"{second}:" in line for line in lines)
        # Both: the person's landing-page changes only.
        await pilot.click("#log-filter-source")
        await paste(pilot, "landing_page")
        assert log_lines(app) == [lines[-1]]


def test_the_event_detail_shows_control_characters_escaped() -> None:
    """A second line of defence: whatever got into the ledger cannot drive the terminal
    from the detail dialog (an ESC sequence, a newline forging a row)."""
    from datetime import UTC, datetime

    from app.core.ledger import EventRecord
    from app.ui.modals.event_detail import detail_rows

    event = EventRecord(
        id=9,
        ts=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        name=CHANNEL_UNSUBSCRIBED,
        identity="C1\nEvent  forged",
        group_id=None,
        source="cli",
        actor="ada",
        properties={"Reason": "\x1b]0;owned\x07[b]x[/b]", "Old State": None, "Note": ""},
    )
    rows = dict(detail_rows(event))
    assert rows["Identity"] == "C1\\nEvent  forged"
    assert rows["Reason"] == "\\x1b]0;owned\\x07[b]x[/b]"
    assert rows["Old State"] == "null" and rows["Note"] == "(empty)"
    assert not any(ch in value for value in rows.values() for ch in "\x1b\x07\n")


async def test_the_console_reads_the_ledger_only_when_it_changed(
    sample_db: Path, make_app, open_db
) -> None:
    """Asked every tick whether the ledger changed (data_version), read only when it did."""
    from sqlalchemy import event

    app = make_app(sample_db, poll_seconds=0.02)
    cli = open_db(sample_db)
    reads: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "ledger_event" in statement:
            reads.append(statement)

    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        before = len(log_lines(app))
        event.listen(app.store.engine, "before_cursor_execute", count)
        wakeups = app.ledger_wakeups
        assert wakeups is not None
        checks = wakeups.checks
        while wakeups.checks < checks + 10:
            await pilot.pause(0.02)
        assert reads == []  # ten ticks, nothing new: the ledger was never read
        create_group_elsewhere(cli, "From the CLI")
        while len(log_lines(app)) < before + 1:
            await pilot.pause(0.02)
        assert "From the CLI" in log_lines(app)[-1]


async def test_quitting_does_not_wait_for_a_slow_worker(sample_db: Path, make_app) -> None:
    """ctrl+q while a long read is running: the console is gone, the worker still blocked."""
    import asyncio
    import threading

    app = make_app(sample_db)
    release = threading.Event()
    running: list[threading.Thread] = []

    def slow_read() -> None:
        running.append(threading.current_thread())
        release.wait(10)  # the test holds it (the bound only keeps a failing run from hanging)

    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        app.run_worker(slow_read, thread=True, name="a slow read")
        while not running:
            await pilot.pause(0.01)
        await pilot.press("ctrl+q")
    # What asyncio.run does on the way out, then the interpreter: neither waits for it.
    await asyncio.get_running_loop().shutdown_default_executor()
    assert not release.is_set()
    assert running[0].is_alive()  # still blocked: exit did not join it
    assert running[0].daemon  # so the interpreter's exit does not join it either
    release.set()


async def test_a_new_line_is_in_view_in_the_frame_that_adds_it(sample_db: Path, make_app) -> None:
    """The pane follows new events in the same frame as it takes them: the list is
    scrolled to its newest line at once, not one refresh later (which, with the
    group counts redrawn in between, held each line back by about 100 ms at 1M)."""
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        pane = app.query_one(EventLogPane)
        lines = app.query_one("#log-lines", OptionList)
        assert lines.max_scroll_y > 0  # more lines than fit: following means scrolling
        change = next(e for e in reversed(pane.events) if e.name == CHANNEL_UNSUBSCRIBED)
        fresh = replace(change, id=pane.events[-1].id + 1, identity="fresh-person")
        pane.add([fresh])  # no refresh between this and the checks
        assert lines.scroll_y == lines.max_scroll_y
        await pilot.pause()
        bottom = lines.render_line(lines.scrollable_content_region.height - 1).text
        assert "fresh-person" in bottom
