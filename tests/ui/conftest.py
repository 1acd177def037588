"""Fixtures for the console's Pilot tests: a sample store per test (copied
from one loaded per session), the app on it, and helpers that wait for the
console's workers without waiting for the ledger poller (it runs until exit).

Everything is pinned: the services' clock (``fixed_clock``), the time zone
(UTC) and the OS user the console records as the Actor.
"""

import asyncio
import inspect
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from rich.text import Text
from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, RichLog

from app.core import clock, groups
from app.core.seed import load_sample_data
from app.core.store import Store, open_store
from app.ui.app import SubgroupsApp
from app.ui.screens.groups import GroupsSection
from app.ui.screens.profiles import ProfilesSection
from app.ui.widgets.event_log import EventLogPane

@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (no async plugin is a test dependency)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True


# The instant the sample data is loaded at; fixed_clock starts here too.
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
SEED_ACTOR = "seed-script"
CONSOLE_USER = "console-admin"
# The terminal the tests run the console in (run_test(size=SIZE)).
SIZE = (120, 40)


@pytest.fixture(autouse=True)
def utc_time_zone() -> Iterator[None]:
    """Local time is UTC, so times the console shows in local time are known."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture(autouse=True)
def terminal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tell Rich the terminal is SIZE, as a real terminal of that size would.

    The app's Rich console (used by RichLog to measure the log pane's lines)
    asks the OS for the terminal size; under pytest there is none (80
    columns) or it finds the developer's own terminal on stdin. COLUMNS and
    LINES are what Rich reads first; the app copies the environment when built.
    """
    monkeypatch.setenv("COLUMNS", str(SIZE[0]))
    monkeypatch.setenv("LINES", str(SIZE[1]))


@pytest.fixture(autouse=True)
def console_user(monkeypatch: pytest.MonkeyPatch, fixed_clock: datetime) -> str:
    """The OS user the console records as Actor, and the services' clock, pinned."""
    monkeypatch.setattr(clock, "os_user", lambda: CONSOLE_USER)
    return CONSOLE_USER


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store with the sample data loaded at NOW; tests get copies (loading takes ~1 s)."""
    path = tmp_path_factory.mktemp("template") / "sample.db"
    store = open_store(path)
    try:
        load_sample_data(store=store, actor=SEED_ACTOR, now=NOW)
    finally:
        store.dispose()  # the last connection closing checkpoints the WAL into the file
    assert not Path(f"{path}-wal").exists()
    return path


@pytest.fixture
def sample_db(sample_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the sample store for this test."""
    path = tmp_path / "store.db"
    shutil.copyfile(sample_template, path)
    return path


@pytest.fixture
def empty_db(tmp_path: Path) -> Path:
    """A fresh, empty store (schema only)."""
    path = tmp_path / "store.db"
    open_store(path).dispose()
    return path


@pytest.fixture
def full_db(tmp_path: Path) -> Path:
    """A store at the limit: "Group 01" to "Group 50" active, "Old news" archived."""
    path = tmp_path / "store.db"
    store = open_store(path)
    try:
        with store.write() as session:
            for n in range(1, 50):
                groups.create_group(session=session, name=f"Group {n:02d}", actor=SEED_ACTOR, now=NOW)
            old = groups.create_group(session=session, name="Old news", actor=SEED_ACTOR, now=NOW)
            assert old.id is not None
            groups.archive_group(session=session, group_id=old.id, actor=SEED_ACTOR, now=NOW)
            groups.create_group(session=session, name="Group 50", actor=SEED_ACTOR, now=NOW)
    finally:
        store.dispose()
    return path


@pytest.fixture
def make_app() -> Iterator[Callable[..., SubgroupsApp]]:
    """Build the console on a store file (its own connection, as in real use)."""
    stores: list[Store] = []

    def make(db: Path, *, offer_sample_data: bool = False, **kwargs: object) -> SubgroupsApp:
        store = open_store(db)
        stores.append(store)
        app = SubgroupsApp(store=store, offer_sample_data=offer_sample_data, **kwargs)  # type: ignore[arg-type]
        app.animation_level = "none"
        return app

    yield make
    for store in stores:
        store.dispose()


@pytest.fixture
def open_db() -> Iterator[Callable[[Path], Store]]:
    """Open another connection to a store file: the tests' view of the rows, or another process."""
    stores: list[Store] = []

    def open_(db: Path) -> Store:
        store = open_store(db)
        stores.append(store)
        return store

    yield open_
    for store in stores:
        store.dispose()


# --- waiting -------------------------------------------------------------------


def busy_workers(app: SubgroupsApp) -> list[object]:
    """The app's running workers except the ledger poller (which runs until exit)."""
    return [w for w in app.workers if w.group != "ledger" and not w.is_finished]


async def settle(
    pilot: Pilot[None], until: Callable[[], bool] | None = None, *, timeout: float = 5.0, what: str = ""
) -> None:
    """Wait until no worker but the poller runs and ``until()`` holds, twice in a row.

    Twice, because a worker's result arrives as a message whose handler may
    start the next worker (search, then show the first profile).
    """
    app = pilot.app
    assert isinstance(app, SubgroupsApp)
    deadline = time.monotonic() + timeout
    quiet = 0
    while True:
        busy = busy_workers(app)
        if not busy and (until is None or until()):
            quiet += 1
            if quiet >= 2:
                return
        else:
            quiet = 0
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'the console'}; busy workers: {busy}")
        await pilot.pause(0.02)


def groups_loaded(app: SubgroupsApp) -> bool:
    """The groups table is filled and every count cell holds a number."""
    section = app.query_one(GroupsSection)
    if section.active is None or section.counts is None:
        return False
    table = app.query_one("#groups-table", DataTable)
    return all("…" not in cell for row in table_rows(table) for cell in row[-2:])


def console_ready(app: SubgroupsApp) -> bool:
    """Groups and counts shown, the first profile shown (if any), the log pane fed."""
    pane = app.query_one(EventLogPane)
    profiles = app.query_one(ProfilesSection)
    table = app.query_one("#profiles-table", DataTable)
    return (
        groups_loaded(app)
        and bool(pane.events)
        and (table.row_count == 0 or profiles.view is not None)
    )


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
    """The lines the log pane shows, as rendered text."""
    return [strip.text.rstrip() for strip in app.query_one("#log-lines", RichLog).lines]


def rendered_lines(table: DataTable) -> list[str]:  # type: ignore[type-arg]
    """What the table draws on screen, line by line (header included)."""
    return [table.render_line(y).text for y in range(table.size.height)]


async def select_row(pilot: Pilot[None], table: DataTable, first_cell: str) -> None:  # type: ignore[type-arg]
    """Move the focused table's cursor with the arrow keys to the row whose first cell reads ``first_cell``."""
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
