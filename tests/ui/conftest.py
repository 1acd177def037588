"""Fixtures for the console's Pilot tests: a sample store per test (copied
from one loaded per session), a store at the 50-group limit, the app on a
store file, and another connection to it. Helpers are in console_pilot.py.

Everything is pinned: the services' clock (``fixed_clock``), the time zone
(UTC) and the OS user the console records as the Actor.
"""

import asyncio
import inspect
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

# The helpers live in console_pilot (a name no other test folder uses); they
# are re-exported here for tests that still import them from conftest.
from console_pilot import (  # noqa: F401
    CONSOLE_USER,
    NOW,
    SEED_ACTOR,
    SIZE,
    busy_workers,
    cell_text,
    column,
    console_ready,
    groups_loaded,
    log_lines,
    paste,
    reload_pending,
    rendered_lines,
    select_row,
    settle,
    start,
    table_rows,
    type_text,
)

from app.core import clock, groups
from app.core.seed import load_sample_data
from app.core.store import Store, open_store
from app.ui.app import SubgroupsApp


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (no async plugin is a test dependency)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True


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
                groups.create_group(
                    session=session, name=f"Group {n:02d}", actor=SEED_ACTOR, now=NOW
                )
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

    def make(
        db: Path, *, offer_sample_data: bool = False, poll_seconds: float = 0.1, **kwargs: object
    ) -> SubgroupsApp:
        # The ledger's wake-up check (the product's is every 0.05 s); the
        # test of "events from another process within a second" uses the default.
        store = open_store(db)
        stores.append(store)
        app = SubgroupsApp(
            store=store,
            offer_sample_data=offer_sample_data,
            poll_seconds=poll_seconds,
            **kwargs,  # type: ignore[arg-type]
        )
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
