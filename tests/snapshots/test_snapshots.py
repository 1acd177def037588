"""Screenshots of each console view, at a roomy terminal (120x40) and at the
classic 80x24. Review tests/snapshots/__snapshots__ (or snapshot_report.html
after a failure) before accepting changes with --snapshot-update.

What would vary between runs and machines, and what pins it, is listed in
snapshot_support.py. The fixtures are here rather than in a conftest.py, so
tests/ui's ``from conftest import`` (another folder) is never shadowed.
"""

import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from snapshot_support import (
    CONSOLE_USER,
    SIZES,
    STORE_NAME,
    before,
    console_on,
    load_sample_store,
    local_time_in_utc,
    settle,
    write_full_store,
    write_small_store,
)
from textual.pilot import Pilot
from textual.widgets import DataTable

from app.core import clock, profiles
from app.core.models import UNSUBSCRIBED
from app.core.store import Store, open_store
from app.ui.app import SubgroupsApp
from app.ui.screens.help import HelpScreen
from app.ui.screens.profiles import ProfilesSection


@pytest.fixture(autouse=True)
def pinned(
    monkeypatch: pytest.MonkeyPatch, fixed_clock: datetime, tmp_path: Path
) -> Iterator[None]:
    """The services' clock, UTC, the Actor's name, and ./ is the folder the store lives in."""
    monkeypatch.setattr(clock, "os_user", lambda: CONSOLE_USER)
    monkeypatch.chdir(tmp_path)
    with local_time_in_utc():
        yield


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample data loaded once (at NOW); tests copy it."""
    path = tmp_path_factory.mktemp("template") / "sample.db"
    load_sample_store(path)
    return path


@pytest.fixture
def sample_store(sample_template: Path, tmp_path: Path) -> Path:
    """./store.db holds the sample data."""
    path = tmp_path / STORE_NAME
    shutil.copyfile(sample_template, path)
    return path


@pytest.fixture
def full_store(tmp_path: Path) -> Path:
    """./store.db holds 50 active groups (the limit) and one archived."""
    path = tmp_path / STORE_NAME
    write_full_store(path)
    return path


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    """./store.db holds a few groups, two named like markup, and a short history."""
    path = tmp_path / STORE_NAME
    write_small_store(path)
    return path


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[tuple[int, int]], SubgroupsApp]]:
    """Build the console on ./store.db for a terminal of the given size."""
    stores: list[Store] = []

    def make(size: tuple[int, int]) -> SubgroupsApp:
        app, store = console_on(size, monkeypatch)
        stores.append(store)
        return app

    yield make
    for store in stores:
        store.dispose()


def _person_with_a_story(db: Path) -> tuple[str, str]:
    """The search text and the identity of a sample person who left a group, saying why."""
    store = open_store(db)
    try:
        with store.read() as session:
            for hit in profiles.search_profiles(session, "tanaka"):
                view = profiles.profile_view(session, hit.identity)
                if any(g.stored == UNSUBSCRIBED and g.reason for g in view.groups):
                    return "tanaka", hit.identity
    finally:
        store.dispose()
    raise AssertionError("the sample data has no Tanaka who left a group with a reason")


@pytest.mark.parametrize("size", SIZES)
def test_groups(snap_compare, console, sample_store: Path, size: tuple[int, int]) -> None:
    """Groups on the sample data: the 11 active groups with policy, status, landing
    page and their subscribed / unsubscribed counts filled in, "11 / 50 active"
    with its gauge, the filter (active), the first group's details under the table,
    the live event log with the newest sample events (yesterday's with their date,
    today's by time alone), and the footer's keys. At 80 columns the Description
    column gives way, the table scrolls, and the footer loses its last keys."""
    assert snap_compare(console(size), terminal_size=size, run_before=before())


@pytest.mark.parametrize("size", SIZES)
def test_group_form_with_an_error(
    snap_compare, console, sample_store: Path, size: tuple[int, int]
) -> None:
    """The New group form after typing "holiday sale 2025" and pressing ctrl+s: the
    name is taken by an archived group, and the service's message shows in red right
    under the Name field; the form stays open with what was typed."""

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("n", *"holiday", "space", *"sale", "space", *"2025", "ctrl+s")
        await settle(
            pilot, lambda: not pilot.app.screen.query_one("#name-error").has_class("-empty")
        )

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_groups_at_the_limit(
    snap_compare, console, full_store: Path, size: tuple[int, int]
) -> None:
    """Groups with 50 active groups: "50 / 50 active" in the error colour, the gauge
    full, the groups listed by name with zero counts (no profiles), and Group Created
    events in the log pane."""
    assert snap_compare(console(size), terminal_size=size, run_before=before())


@pytest.mark.parametrize("size", SIZES)
def test_profiles(snap_compare, console, sample_store: Path, size: tuple[int, int]) -> None:
    """Profiles after searching "tanaka" and selecting a person who left a group with a
    reason: the results (identity, name, all email), and on the right the person's
    summary, each group's effective and stored state and where it came from, the
    archived group marked, then the start of their history. The detail pane is too
    narrow for "Where from" (its first characters show at 120 columns, none at 80,
    where Stored goes too) and for the history's Detail."""
    query, identity = _person_with_a_story(sample_store)

    async def steps(pilot: Pilot[None]) -> None:
        app = pilot.app
        section = app.query_one(ProfilesSection)
        found = app.query_one("#profiles-found")
        await pilot.press("2", "slash", *query)
        await settle(pilot, lambda: str(found.render()).endswith(f"matching {query!r}"))
        await pilot.press("enter")  # from the search box to the results
        table = app.query_one("#profiles-table", DataTable)
        while str(table.get_row_at(table.cursor_row)[0]) != identity:
            await pilot.press("down")
        await settle(pilot, lambda: section.view is not None and section.view.identity == identity)

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_event_log(snap_compare, console, small_store: Path, size: tuple[int, int]) -> None:
    """A small store's Groups screen: groups named "<b>x</b>" and "[bold red]x[/]"
    shown literally in the table and the detail line. Below, the live event log:
    yesterday's Group Created events with their date (at 120x40), today's
    unsubscribes by time alone with those names and a reason "[red]too many[/red]"
    shown literally, and today's Group Archived event for Newsletter."""
    assert snap_compare(console(size), terminal_size=size, run_before=before())


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, console, sample_store: Path, size: tuple[int, int]) -> None:
    """F1 help over the Groups screen: what subgroups does, then every key by where it
    works (Everywhere, Groups, Profiles, Forms) with what it does; Escape closes it."""

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("f1")
        assert isinstance(pilot.app.screen, HelpScreen)

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


def _save_sample_segment(db: Path) -> None:
    """A saved segment on the sample data: Newsletter or Product updates, not Promotions, DE."""
    from snapshot_support import NOW

    from app.core import segments
    from app.core.segment_rules import (
        ANY,
        EXCLUDE,
        INCLUDE,
        GroupsCondition,
        PropertyCondition,
        SegmentRule,
    )

    store = open_store(db)
    try:
        with store.write() as session:
            ids = {name: gid for gid, name in segments.group_names(session).items()}
            rule = SegmentRule(
                (
                    GroupsCondition(INCLUDE, (ids["Newsletter"], ids["Product updates"]), ANY),
                    GroupsCondition(EXCLUDE, (ids["Promotions"],), ANY),
                    PropertyCondition("country", "equals", ("DE",)),
                )
            )
            segments.save_segment(
                session=session, name="DE readers", rule=rule, actor=CONSOLE_USER, now=NOW
            )
    finally:
        store.dispose()


@pytest.mark.parametrize("size", SIZES)
def test_segment_builder(snap_compare, console, sample_store: Path, size: tuple[int, int]) -> None:
    """Segments with the saved segment "DE readers" opened (enter on the list): the
    sentence "People subscribed to any of Newsletter, Product updates, and not
    subscribed to Promotions, and country is DE", the total of 3,000 profiles, then
    the clauses, each with its own count: Include any of Newsletter and Product
    updates (ticked), Exclude Promotions, and the country property; below, the
    first members with the groups they are subscribed to. At 80x24 the clauses
    scroll."""
    _save_sample_segment(sample_store)

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.screens.segments import SegmentsSection

        app = pilot.app
        section = app.query_one(SegmentsSection)
        await pilot.press("3")
        table = app.query_one("#segments-table", DataTable)
        await settle(pilot, lambda: table.row_count == 1)
        await pilot.press("enter")
        await settle(
            pilot,
            lambda: (
                section.segment_id is not None
                and "Total" in str(section.query_one("#segment-total").render())
                and "…" not in " ".join(str(c.render()) for c in section.query(".clause-count"))
            ),
        )

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_import_preview(
    snap_compare, console, sample_store: Path, tmp_path: Path, size: tuple[int, int]
) -> None:
    """The import dialog's preview of people.csv (3 rows): 2 new profiles, the state
    changes by group (all email, Newsletter, Promotions) and a kept unsubscribe
    (the file says subscribed where the person had unsubscribed), then each change
    by line: nothing is written until ctrl+s."""
    store = open_store(sample_store)
    with store.read() as session:
        kept = next(
            v.identity
            for p in profiles.search_profiles(session, "C1000")
            for v in [profiles.profile_view(session, p.identity)]
            if any(g.group_name == "Newsletter" and g.stored == UNSUBSCRIBED for g in v.groups)
        )
    store.dispose()
    (tmp_path / "people.csv").write_text(
        "identity,email,name,country,group:Newsletter,group:Promotions,all_email\n"
        f"{kept},,,,subscribed,,\n"
        "NEW001,new1@example.com,Nina Neu,DE,subscribed,unsubscribed,\n"
        "NEW002,new2@example.com,Omar Otro,ES,,,unsubscribed\n",
        encoding="utf-8",
    )

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.modals.import_csv import ImportModal

        await pilot.press("2", "i")
        await settle(pilot, lambda: isinstance(pilot.app.screen, ImportModal))
        await pilot.press(*"people.csv", "enter")
        await settle(pilot, lambda: pilot.app.screen.step == "preview")  # type: ignore[attr-defined]

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_import_problems(
    snap_compare, console, sample_store: Path, tmp_path: Path, size: tuple[int, int]
) -> None:
    """The import dialog after a file with problems: "bad.csv: 3 problem(s); nothing
    was imported." and each problem with its line and column: a malformed email, an
    unknown state word (with the allowed words), a duplicate identity."""
    (tmp_path / "bad.csv").write_text(
        "identity,email,group:Newsletter\n"
        "A1,not-an-email,\n"
        "A2,a2@example.com,maybe\n"
        "A1,a1@example.com,\n",
        encoding="utf-8",
    )

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.modals.import_csv import ImportModal

        await pilot.press("2", "i")
        await settle(pilot, lambda: isinstance(pilot.app.screen, ImportModal))
        await pilot.press(*"bad.csv", "enter")
        await settle(pilot, lambda: pilot.app.screen.step == "problems")  # type: ignore[attr-defined]

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))
