"""The walkthrough: a fresh ``subgroups demo`` store (the sample data and its
campaigns, ``sample_campaigns.load_sample`` at NOW), each of the five sections
as its number key opens it, at 120x40 and 80x24. What a presenter shows
first; nothing that matters may be cut off.

Pinned as in test_snapshots.py (snapshot_support.py says what and why); the
demo's simulated traffic is not started, so the log pane holds the story.
"""

import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from snapshot_support import (
    CONSOLE_USER,
    NOW,
    SEED_ACTOR,
    SIZES,
    STORE_NAME,
    before,
    console_on,
    local_time_in_utc,
    profile_shown,
    segment_counted,
    settle,
    show,
)
from textual.pilot import Pilot
from textual.widgets import DataTable

from app.core import clock
from app.core.outbox import MaildirOutbox
from app.core.sample_campaigns import load_sample
from app.core.store import Store, open_store
from app.ui.app import SubgroupsApp

# A fixed signing key: any link shown is the same on every run.
FIXED_KEYRING = '{"current": 1, "keys": {"1": "' + "5e" * 32 + '"}}'


@pytest.fixture(autouse=True)
def pinned(
    monkeypatch: pytest.MonkeyPatch, fixed_clock: datetime, tmp_path: Path
) -> Iterator[None]:
    """The services' clock, UTC, the Actor's name, ./ is the store's folder, a fixed key."""
    monkeypatch.setattr(clock, "os_user", lambda: CONSOLE_USER)
    monkeypatch.chdir(tmp_path)
    keyring = tmp_path / "keys.json"
    keyring.write_text(FIXED_KEYRING, encoding="utf-8")
    keyring.chmod(0o600)
    monkeypatch.setenv("SUBGROUPS_SECRET_FILE", str(keyring))
    with local_time_in_utc():
        yield


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``subgroups demo`` loads, at NOW, once (tests copy it)."""
    folder = tmp_path_factory.mktemp("demo")
    path = folder / "demo.db"
    store = open_store(path)
    try:
        load_sample(store=store, actor=SEED_ACTOR, outbox=MaildirOutbox(folder / "outbox"), now=NOW)
    finally:
        store.dispose()  # the last connection closing checkpoints the WAL into the file
    return path


@pytest.fixture
def demo_store(demo_template: Path, tmp_path: Path) -> Path:
    """./store.db holds the demo's data."""
    path = tmp_path / STORE_NAME
    shutil.copyfile(demo_template, path)
    return path


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[tuple[int, int]], SubgroupsApp]]:
    stores: list[Store] = []

    def make(size: tuple[int, int]) -> SubgroupsApp:
        app, store = console_on(size, monkeypatch)
        stores.append(store)
        return app

    yield make
    for store in stores:
        store.dispose()


@pytest.mark.parametrize("size", SIZES)
def test_demo_1_groups(snap_compare, console, demo_store: Path, size: tuple[int, int]) -> None:
    """1 Groups on the demo store: "11 / 50 active" and its gauge, every active group
    with its policy, status, landing page and Subscribed / Unsubscribed counts (the
    numbers in full at both sizes), the first group's details, and the log pane with
    the newest events: the newsletter's unsubscribes through its links (one_click,
    landing_page, "(campaign 1)") and the draft "Winter sale" created today."""
    assert snap_compare(console(size), terminal_size=size, run_before=before())


@pytest.mark.parametrize("size", SIZES)
def test_demo_2_profiles(snap_compare, console, demo_store: Path, size: tuple[int, int]) -> None:
    """2 Profiles: the profiles listed (identity, name, all email) and the first one's
    detail: summary, each group's effective and stored state, then its history."""

    async def steps(pilot: Pilot[None]) -> None:
        await show(pilot, "2")
        await settle(pilot, lambda: profile_shown(pilot.app))

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_demo_3_segments(snap_compare, console, demo_store: Path, size: tuple[int, int]) -> None:
    """3 Segments: the saved segment "Pro and enterprise" in the list, and the builder
    with its first rule (subscribed to any group) counted: the sentence, the total and
    each clause's count, then the first members."""

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.sections.segments import SegmentsSection

        app = pilot.app
        await show(pilot, "3")
        section = app.query_one(SegmentsSection)
        table = app.query_one("#segments-table", DataTable)
        await settle(
            pilot,
            lambda: (
                table.row_count == 1
                and segment_counted(pilot.app)
                and "…" not in " ".join(str(c.render()) for c in section.query(".clause-count"))
            ),
        )

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_demo_4_campaigns(snap_compare, console, demo_store: Path, size: tuple[int, int]) -> None:
    """4 Campaigns: "2 campaigns · 1 to send · 1 sent"; the draft "Winter sale" (all
    profiles, its reach counted) and "November newsletter" sent to "Pro and enterprise"
    with its messages sent and the unsubscribes made through its links; under the
    table the selected draft's status and what the keys do."""

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("4")
        table = pilot.app.query_one("#campaigns-table", DataTable)
        await settle(
            pilot,
            lambda: (
                table.row_count == 2
                and all("…" not in str(table.get_row_at(i)[3]) for i in range(2))
            ),
        )

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_demo_5_landing_page(
    snap_compare, console, demo_store: Path, size: tuple[int, int]
) -> None:
    """5 Landing page: on the left the stored settings ("All settings saved.") and the
    groups shown on the page; on the right the preview as the first sample recipient,
    their page with each shown group and a box ticked where they are subscribed."""

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.widgets.landing_recipient import RecipientPane

        await show(pilot, "5")
        pane = pilot.app.query_one(RecipientPane)
        await settle(pilot, lambda: pane.draft is not None and pane.recipient is not None)

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))
