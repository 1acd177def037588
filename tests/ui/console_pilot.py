"""Helpers for the console's Pilot tests: pinned constants, waiting for the
console's workers (never the ledger poller, which runs until exit), typing,
and reading what widgets show.

Import from here (``from console_pilot import settle``), not from
``conftest``: with two conftest.py files collected in one run, "conftest"
names whichever was imported last.
"""

import os
import pty
import select
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime

from rich.text import Text
from textual import events
from textual.pilot import Pilot
from textual.widgets import ContentSwitcher, DataTable, OptionList

from app.ui.app import SubgroupsApp
from app.ui.sections.groups import GroupsSection
from app.ui.sections.profiles import ProfilesSection
from app.ui.widgets.event_log import EventLogPane

# The instant the sample data is loaded at; fixed_clock starts here too.
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SEED_ACTOR = "seed-script"
CONSOLE_USER = "console-admin"
# The terminal the tests run the console in (run_test(size=SIZE)).
SIZE = (120, 40)


# --- waiting -------------------------------------------------------------------


def busy_workers(app: SubgroupsApp) -> list[object]:
    """The app's running workers except the ledger poller (which runs until exit)."""
    return [w for w in app.workers if w.group != "ledger" and not w.is_finished]


def reload_pending(app: SubgroupsApp) -> bool:
    """The app has seen new events and will reload the groups in a moment (a 0.5 s timer).

    Waiting for it also keeps tests from exiting while it is pending: the app
    crashes (NoMatches) when that timer fires during shutdown (reported).
    """
    return getattr(app, "_reload_timer", None) is not None


async def settle(
    pilot: Pilot[None],
    until: Callable[[], bool] | None = None,
    *,
    timeout: float = 5.0,
    what: str = "",
) -> None:
    """Wait until no worker but the poller runs, no reload is pending and ``until()`` holds,
    twice in a row.

    Twice, because a worker's result arrives as a message whose handler may
    start the next worker (search, then show the first profile). Note that an
    exclusive thread worker that was superseded counts as finished at once,
    though its thread still runs and may post a (stale) result later.
    """
    app = pilot.app
    assert isinstance(app, SubgroupsApp)
    deadline = time.monotonic() + timeout
    quiet = 0
    while True:
        busy = busy_workers(app)
        if not busy and not reload_pending(app) and (until is None or until()):
            quiet += 1
            if quiet >= 2:
                return
        else:
            quiet = 0
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what or 'the console'}; busy workers: {busy}"
            )
        await pilot.pause(0.02)


async def wait_for(
    pilot: Pilot[None], until: Callable[[], bool], *, timeout: float = 5.0, what: str = ""
) -> None:
    """Wait until ``until()`` holds, whatever workers run (settle would wait for them too).

    For a test that holds a worker on purpose (a slow store, a send in progress)
    and waits for something else meanwhile.
    """
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'a condition'}")
        await pilot.pause(0.02)


def groups_loaded(app: SubgroupsApp) -> bool:
    """The groups table is filled and every count cell holds a number."""
    section = app.query_one(GroupsSection)
    if section.active is None or section.counts is None:
        return False
    table = app.query_one("#groups-table", DataTable)
    return all("…" not in cell for row in table_rows(table) for cell in row[-2:])


def profiles_ready(app: SubgroupsApp) -> bool:
    """The Profiles section, if built (it is when first shown), shows its first profile."""
    built = app.query(ProfilesSection)
    if not built:
        return True
    table = app.query_one("#profiles-table", DataTable)
    return table.row_count == 0 or built.first().view is not None


def console_ready(app: SubgroupsApp) -> bool:
    """Groups and counts shown, the first profile shown (if built), the log pane fed."""
    pane = app.query_one(EventLogPane)
    return (
        app.built_section(app.section) is not None
        and (app.built_section("groups") is None or groups_loaded(app))
        and bool(pane.events)
        and profiles_ready(app)
    )


def changes_heard(app: SubgroupsApp) -> list[bool]:
    """From now on, each store change the sections are told of (True: its burst is over)."""
    heard: list[bool] = []
    app.store_changes.subscribe(app, lambda change: heard.append(change.settled))
    return heard


async def show_section(pilot: Pilot[None], key: str) -> None:
    """Show a section (built the first time: its widgets exist from then on) and let it load."""
    app = pilot.app
    assert isinstance(app, SubgroupsApp)
    app.section = key
    switcher = app.query_one("#sections", ContentSwitcher)
    # Built, then shown (and told to load): the switcher shows it.
    await wait_for(pilot, lambda: switcher.current == key, what=f"section {key}")
    await settle(pilot, lambda: profiles_ready(app), what=f"section {key}")


async def start(pilot: Pilot[None]) -> None:
    """Wait for the console's first loads on a store with data."""
    await settle(pilot, lambda: console_ready(pilot.app), what="the first loads")  # type: ignore[arg-type]


# --- reading widgets -------------------------------------------------------------


def cell_text(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def table_rows(table: DataTable) -> list[list[str]]:  # type: ignore[type-arg]
    """Every row of a DataTable as plain strings, in display order."""
    return [[cell_text(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def column(table: DataTable, index: int = 0) -> list[str]:  # type: ignore[type-arg]
    return [row[index] for row in table_rows(table)]


def log_lines(app: SubgroupsApp) -> list[str]:
    """The lines of the log pane (whole, not cut to the pane's width), oldest first."""
    lines = app.query_one("#log-lines", OptionList)
    return [
        cell_text(lines.get_option_at_index(i).prompt).rstrip() for i in range(lines.option_count)
    ]


def rendered_lines(table: DataTable) -> list[str]:  # type: ignore[type-arg]
    """What the table draws on screen, line by line (header included)."""
    return [table.render_line(y).text for y in range(table.size.height)]


async def select_row(pilot: Pilot[None], table: DataTable, first_cell: str) -> None:  # type: ignore[type-arg]
    """Move the focused table's cursor, with the arrow keys, to the row starting ``first_cell``."""
    names = column(table)
    assert first_cell in names, f"{first_cell!r} not in {names}"
    assert table.has_focus, "select_row types arrow keys: the table must have focus"
    target = names.index(first_cell)
    while table.cursor_row != target:
        await pilot.press("down" if table.cursor_row < target else "up")
    assert column(table)[table.cursor_row] == first_cell


async def type_text(pilot: Pilot[None], text: str) -> None:
    """Type text key by key, as a user would (about 0.1 s a key: keep it short)."""
    await pilot.press(*[("space" if ch == " " else ch) for ch in text])


async def paste(pilot: Pilot[None], text: str) -> None:
    """Paste text into the focused widget, as a terminal's bracketed paste does.

    One event instead of one per character: how the longer texts get in fast.
    """
    pilot.app.post_message(events.Paste(text))
    await pilot.pause()


# --- the console for real -------------------------------------------------------


def run_on_a_terminal(args: list[str], *, timeout: float = 60.0) -> int:
    """Run a command with a pseudo-terminal as its terminal (120x40); its exit code."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color"}
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    os.read(leader, 65536)  # the screen: read so the console never blocks
                except OSError:
                    break
        return proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
