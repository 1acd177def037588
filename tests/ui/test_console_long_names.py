"""A 64-character group (or segment) name never pushes the numbers and states off
the screen: the name ends in an ellipsis, at 80x24 and at 120x40 (Groups, the
Profiles detail, the saved segments' Count)."""

from pathlib import Path

import pytest
from console_pilot import SEED_ACTOR, rendered_lines, settle, start
from textual.widgets import DataTable, Select

from app.core import groups, segments
from app.core.segment_rules import GroupsCondition, SegmentRule
from app.core.store import open_store
from app.ui.modals.change_state import ChangeStateModal
from app.ui.sections.profiles import ProfilesSection
from app.ui.sections.segments import SegmentsSection
from app.ui.widgets.columns import fit_widths

LONG = "A partner and reseller newsletter with a deliberately long name!"
LONG_SEGMENT = "Readers of the partner newsletter who opened anything since May!"
SIZES = [pytest.param((120, 40), id="120x40"), pytest.param((80, 24), id="80x24")]


@pytest.fixture
def long_db(sample_db: Path) -> Path:
    """The sample data, a group with a 64-character name (first by name) and a saved
    segment with one."""
    assert len(LONG) == len(LONG_SEGMENT) == 64
    store = open_store(sample_db)
    try:
        with store.write() as session:
            group = groups.create_group(session=session, name=LONG, actor=SEED_ACTOR)
            assert group.id is not None
            segments.save_segment(
                session=session,
                name=LONG_SEGMENT,
                rule=SegmentRule((GroupsCondition(group_ids=(group.id,)),)),
                actor=SEED_ACTOR,
            )
    finally:
        store.dispose()
    return sample_db


def line_of(table: DataTable, start: str) -> str:  # type: ignore[type-arg]
    """The line the table draws for the row whose first cell starts with ``start``."""
    lines = [line for line in rendered_lines(table) if line.strip().startswith(start)]
    assert lines, f"no row starting {start!r} on screen: {rendered_lines(table)}"
    return lines[0]


def drawn_with(table: DataTable, start: str, shown: str) -> bool:  # type: ignore[type-arg]
    """The table draws a row starting ``start`` that shows ``shown``."""
    lines = [line for line in rendered_lines(table) if line.strip().startswith(start)]
    return bool(lines) and shown in lines[0]


@pytest.mark.parametrize("size", SIZES)
async def test_groups_keep_their_counts_on_screen(long_db: Path, make_app, size) -> None:  # type: ignore[no-untyped-def]
    store = open_store(long_db)
    with store.read() as session:
        group = groups.find_group(session, LONG)
        counts = groups.group_counts(session)[group.id]  # type: ignore[index]
    store.dispose()
    app = make_app(long_db)
    async with app.run_test(size=size) as pilot:
        await start(pilot)
        table = app.query_one("#groups-table", DataTable)
        line = line_of(table, LONG[:10])
    assert "…" in line and LONG not in line
    # Subscribed, then Unsubscribed last on the line, both on screen.
    assert f" {counts.subscribed:,} " in line
    assert line.rstrip().endswith(f" {counts.unsubscribed:,}")
    assert len(line) <= size[0]


@pytest.mark.parametrize("size", SIZES)
async def test_the_profile_detail_keeps_the_state_on_screen(long_db: Path, make_app, size) -> None:  # type: ignore[no-untyped-def]
    app = make_app(long_db)
    async with app.run_test(size=size) as pilot:
        await start(pilot)
        await pilot.press("2")
        section = app.query_one(ProfilesSection)
        detail = app.query_one("#profile-groups", DataTable)
        # The view read, then its rows drawn at the pane's width (refitted once shown),
        # the first group's state on its line (asserted below, with the other checks).
        await settle(
            pilot,
            lambda: (
                section.view is not None
                and drawn_with(detail, LONG[:10], f" {section.view.groups[0].effective} ")
            ),
            what="the long group's row drawn with its state",
        )
        view = section.view
        assert view is not None and view.groups[0].group_name == LONG
        line = line_of(detail, LONG[:10])
        right = detail.region.right
    assert "…" in line and LONG not in line
    # The effective state shows, inside the detail pane.
    first = view.groups[0]
    assert f" {first.effective} " in line
    assert right <= size[0]


@pytest.mark.parametrize("size", SIZES)
async def test_saved_segments_keep_their_count_on_screen(long_db: Path, make_app, size) -> None:  # type: ignore[no-untyped-def]
    store = open_store(long_db)
    with store.read() as session:
        group = groups.find_group(session, LONG)
        expected = groups.group_counts(session)[group.id].subscribed  # type: ignore[index]
    store.dispose()
    app = make_app(long_db)
    async with app.run_test(size=size) as pilot:
        await start(pilot)
        await pilot.press("3")
        section = app.query_one(SegmentsSection)
        table = app.query_one("#segments-table", DataTable)
        await settle(
            pilot,
            lambda: drawn_with(table, LONG_SEGMENT[:6], f"{expected:,}"),
            what="the saved segment drawn with its count",
        )
        assert section.saved[0].count == expected
        line = line_of(table, LONG_SEGMENT[:6])
    assert "…" in line and LONG_SEGMENT not in line
    assert f"{expected:,}" in line


def test_fit_widths_shrinks_the_widest_flexible_column_first() -> None:
    # Name 64 and Description 36 share what the fixed columns leave, padding included.
    widths = fit_widths([64, 36, 7, 8, 6, 10, 12], 118, flexible=(0, 1), minimum=12)
    assert widths == [30, 31, 7, 8, 6, 10, 12]
    assert sum(widths) + 2 * len(widths) <= 118
    # Only columns up to keep must fit; a floor per column; no room known: as they are.
    assert fit_widths([64, 10, 6, 30], 40, flexible=(0,), keep=2) == [18, 10, 6, 30]
    assert fit_widths([8, 15, 12], 32, flexible=(0, 1), minimum={0: 8, 1: 6}) == [8, 6, 12]
    assert fit_widths([64, 10], 0, flexible=(0,)) == [64, 10]


async def test_the_change_state_dialog_cuts_a_long_name_not_its_state(
    long_db: Path, make_app
) -> None:
    app = make_app(long_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot)
        await pilot.press("2", "s")
        form = app.screen
        assert isinstance(form, ChangeStateModal)
        target = form.query_one("#target", Select)
        label = next(str(p) for p, v in target._options if v == target.value)  # type: ignore[attr-defined]
    assert label.startswith(LONG[:20]) and "…" in label and label.endswith("(now subscribed)")
    assert len(label) <= 60
