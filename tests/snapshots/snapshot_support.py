"""What makes the console's screenshots the same on every run and machine.

What would otherwise vary, and what pins it:
- data: the sample data loaded at a fixed instant (NOW), or small stores
  written with explicit timestamps;
- the services' clock (``fixed_clock``): the log pane shows a time alone for
  today's events and a date for older ones, judged by ``clock.now()``;
- the time zone: UTC, so "local time" renders the same everywhere;
- the OS user recorded as Actor;
- the store's path in the header: the console is handed a store named by a
  relative path ("store.db") inside the test's temporary folder, since
  ``open_store`` makes paths absolute (and temporary folders differ);
- the terminal size Rich believes in (COLUMNS/LINES): the log pane's lines
  are measured against it, and under pytest it would be 80 or, worse, the
  size of the terminal pytest was started from;
- the cursor blink (off) and animations (``animation_level = "none"``).
"""

import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from textual.pilot import Pilot
from textual.widgets import ContentSwitcher, DataTable, Input, TextArea

from app.core import groups, profiles, subscriptions
from app.core.models import UNSUBSCRIBED
from app.core.seed import load_sample_data
from app.core.store import Store, make_engine, open_store
from app.ui.app import SubgroupsApp
from app.ui.sections.groups import GroupsSection
from app.ui.sections.profiles import ProfilesSection
from app.ui.widgets.event_log import EventLogPane

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SEED_ACTOR = "seed-script"
CONSOLE_USER = "console-admin"
STORE_NAME = "store.db"
SIZES = [pytest.param((120, 40), id="120x40"), pytest.param((80, 24), id="80x24")]


@contextmanager
def local_time_in_utc() -> Iterator[None]:
    """Local time is UTC while inside."""
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        yield
    finally:
        if old_tz is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old_tz
        time.tzset()


# The sample store's id, fixed: the links a screen shows are signed for the store.
FIXED_STORE_ID = "5e" * 16


def load_sample_store(path: Path) -> None:
    """The sample data, loaded at NOW, in a store with a known id."""
    store = open_store(path)
    try:
        load_sample_data(store=store, actor=SEED_ACTOR, now=NOW)
        with store.engine.begin() as conn:
            conn.execute(
                text("UPDATE schema_meta SET value = :v WHERE key = 'store_id'"),
                {"v": FIXED_STORE_ID},
            )
    finally:
        store.dispose()  # the last connection closing checkpoints the WAL into the file
    assert not Path(f"{path}-wal").exists()


def console_on(
    size: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
    *,
    offer_sample_data: bool = False,
    outbox_dir: Path | None = None,
) -> tuple[SubgroupsApp, Store]:
    """The console on ./store.db, for a terminal of ``size``.

    The store is named by a relative path so the header shows "store.db";
    COLUMNS and LINES tell Rich the terminal's size, as a real terminal would.
    ``offer_sample_data`` and ``outbox_dir`` are passed on to the console (an
    outbox named by a relative path keeps temporary folders off the screen).
    """
    monkeypatch.setenv("COLUMNS", str(size[0]))
    monkeypatch.setenv("LINES", str(size[1]))
    url = f"sqlite:///{STORE_NAME}"
    store = Store(engine=make_engine(url), url=url)
    app = SubgroupsApp(store=store, offer_sample_data=offer_sample_data, outbox_dir=outbox_dir)
    app.animation_level = "none"
    return app, store


def write_full_store(path: Path) -> None:
    """50 active groups (the limit) and one archived."""
    store = open_store(path)
    try:
        with store.write() as session:
            for n in range(1, 50):
                groups.create_group(
                    session=session,
                    name=f"Regional list {n:02d}",
                    description=f"Region {n} news",
                    actor=SEED_ACTOR,
                    source="cli",
                    now=NOW,
                )
            old = groups.create_group(
                session=session, name="Old news", actor=SEED_ACTOR, source="cli", now=NOW
            )
            assert old.id is not None
            groups.archive_group(
                session=session, group_id=old.id, actor=SEED_ACTOR, source="cli", now=NOW
            )
            groups.create_group(
                session=session, name="Regional list 50", actor=SEED_ACTOR, source="cli", now=NOW
            )
    finally:
        store.dispose()


def write_small_store(path: Path) -> None:
    """A few groups (two named like markup) and a short history, yesterday and today."""
    store = open_store(path)
    yesterday, today = NOW - timedelta(days=1, hours=3), NOW - timedelta(minutes=30)
    try:
        with store.write() as session:
            made = {}
            for minutes, (name, description) in enumerate(
                [
                    ("Newsletter", "The monthly newsletter"),
                    ("[bold red]x[/]", "Looks like Rich markup; must show as typed"),
                    ("<b>x</b>", "Looks like HTML; must show as typed"),
                    ("Promotions", "Deals & [limited] offers"),
                ]
            ):
                made[name] = groups.create_group(
                    session=session,
                    name=name,
                    description=description,
                    actor=SEED_ACTOR,
                    source="cli",
                    now=yesterday + timedelta(minutes=minutes),
                )
            alice = profiles.create_profile(
                session=session,
                identity="alice@example.com",
                email="alice@example.com",
                name="Alice Example",
                now=yesterday,
            )
            bob = profiles.create_profile(
                session=session,
                identity="bob@example.org",
                email="bob@example.org",
                name="Bob Example",
                now=yesterday,
            )
            for ts, who, group, reason in [
                (today, alice, made["[bold red]x[/]"], "[red]too many[/red]"),
                (today + timedelta(minutes=1), bob, made["Promotions"], None),
                (today + timedelta(minutes=2), alice, made["<b>x</b>"], "asked by phone"),
            ]:
                subscriptions.set_state(
                    session=session,
                    profile=who,
                    group=group,
                    status=UNSUBSCRIBED,
                    source="landing_page",
                    actor="",
                    reason=reason,
                    now=ts,
                )
            groups.archive_group(
                session=session,
                group_id=made["Newsletter"].id,
                actor=CONSOLE_USER,  # type: ignore[arg-type]
                now=today + timedelta(minutes=3),
            )
    finally:
        store.dispose()


# --- waiting ----------------------------------------------------------------------


def _busy(app: SubgroupsApp) -> list[object]:
    return [w for w in app.workers if w.group != "ledger" and not w.is_finished]


async def settle(
    pilot: Pilot[None], until: Callable[[], bool] = lambda: True, timeout: float = 10.0
) -> None:
    """Wait until no worker but the ledger poller runs and ``until()`` holds, twice in a row."""
    app = pilot.app
    assert isinstance(app, SubgroupsApp)
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2:
        # A pending reload timer (new events seen) counts as busy: see tests/ui/conftest.py.
        pending = getattr(app, "_reload_timer", None) is not None
        quiet = quiet + 1 if not _busy(app) and not pending and until() else 0
        assert time.monotonic() < deadline, f"the console did not settle; busy: {_busy(app)}"
        await pilot.pause(0.02)


def console_ready(app: SubgroupsApp) -> bool:
    """Groups and their counts shown, the log pane fed, the first profile shown."""
    if app.built_section(app.section) is None:
        return False
    section = app.query_one(GroupsSection)
    if section.active is None or section.counts is None:
        return False
    table = app.query_one("#groups-table", DataTable)
    cells = [str(c) for i in range(table.row_count) for c in table.get_row_at(i)]
    pane = app.query_one(EventLogPane)
    # The Profiles section is built when first shown: its first profile, if so.
    built = app.query(ProfilesSection)
    shown_profile = not built or profile_shown(app)
    return (
        "…" not in cells
        and bool(pane.events)
        and (shown_profile or not app.query_one("#profiles-table", DataTable).row_count)
    )


def segment_counted(app: SubgroupsApp) -> bool:
    """Segments shows the counts of the rule its editors show now (not those of the rule
    before a change, still on screen until the new count arrives)."""
    from app.ui.widgets.segment_builder import SegmentBuilder

    builder = app.query_one(SegmentBuilder)
    return builder.counts_are_current() and "Total" in str(app.query_one("#segment-total").render())


def profile_shown(app: SubgroupsApp, identity: str | None = None) -> bool:
    """Profiles shows, as a user sees it once it is done, the person under the results'
    cursor (``identity``, if given): the detail read for them, their groups in the table,
    the table laid out with its rows and its columns fitted to that size.

    (``section.view`` alone is set a frame or more earlier: the groups table's height,
    and so whether its rows need a scrollbar's room, follows once the screen lays the
    rows out, and the columns are fitted again then.)"""
    section = app.query_one(ProfilesSection)
    view = section.view
    results = app.query_one("#profiles-table", DataTable)
    if view is None or not results.row_count:
        return False
    under_cursor = results.coordinate_to_cell_key(results.cursor_coordinate).row_key.value
    if under_cursor != view.identity or identity not in (None, view.identity):
        return False
    table = app.query_one("#profile-groups", DataTable)
    max_height = table.styles.max_height
    cap = int(max_height.value) if max_height is not None and max_height.is_cells else None
    rows_height = table.header_height + len(view.groups)
    laid_out = table.size.height >= (rows_height if cap is None else min(rows_height, cap))
    return (
        table.row_count == len(view.groups) and laid_out and section.groups_fitted_to == table.size
    )


async def show(pilot: Pilot[None], number: str) -> None:
    """Press a section's number key and wait until the section is built (it is built
    the first time it is shown, so its widgets exist only from then on)."""
    app = pilot.app
    assert isinstance(app, SubgroupsApp)
    await pilot.press(number)
    key = list(app.SECTIONS)[int(number) - 1]
    deadline = time.monotonic() + 10
    switcher = app.query_one("#sections", ContentSwitcher)
    while switcher.current != key:  # built, then shown (and told to load)
        assert time.monotonic() < deadline, f"section {key} was not built"
        await pilot.pause(0.02)


def steady_cursors(app: SubgroupsApp) -> None:
    """Cursor blink off in every input and text area of the current screen (and the main one)."""
    for screen in {app.screen, app.screen_stack[0]}:
        for widget in screen.query(Input):
            widget.cursor_blink = False
        for area in screen.query(TextArea):
            area.cursor_blink = False


def before(
    steps: Callable[[Pilot[None]], Awaitable[None]] | None = None,
) -> Callable[[Pilot[None]], Awaitable[None]]:
    """A run_before: wait for the first loads, run ``steps``, settle, blink off, pause."""

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, SubgroupsApp)
        await settle(pilot, lambda: console_ready(app))
        steady_cursors(app)
        if steps is not None:
            await steps(pilot)
            await settle(pilot)
        steady_cursors(app)
        await pilot.pause()

    return run_before
