"""Screenshots for long names and a growing segment: a 64-character group name in
Groups and in the Profiles detail, a 64-character saved segment, and the segment
builder after adding a third condition at 80x24. The fixtures are those of
test_snapshots.py (imported, not redefined)."""

from pathlib import Path

import pytest
import test_snapshots as shared
from snapshot_support import (
    CONSOLE_USER,
    NOW,
    SIZES,
    before,
    profile_shown,
    segment_counted,
    settle,
    show,
)
from textual.pilot import Pilot
from textual.widgets import DataTable

from app.core import groups, segments
from app.core.segment_rules import GroupsCondition, SegmentRule
from app.core.store import open_store
from app.ui.sections.segments import SegmentsSection
from app.ui.widgets.clauses import ClauseEditor

# The shared fixtures: the pinned clock, user and time zone, the sample store, the console.
pinned = shared.pinned
sample_template = shared.sample_template
sample_store = shared.sample_store
console = shared.console

LONG = "A partner and reseller newsletter with a deliberately long name!"
LONG_SEGMENT = "Readers of the partner newsletter who opened anything since May!"


def _add_long_names(db: Path) -> None:
    """A group named with 64 characters (first by name) and a saved segment too."""
    store = open_store(db)
    try:
        with store.write() as session:
            group = groups.create_group(
                session=session, name=LONG, actor=CONSOLE_USER, source="cli", now=NOW
            )
            assert group.id is not None
            segments.save_segment(
                session=session,
                name=LONG_SEGMENT,
                rule=SegmentRule((GroupsCondition(group_ids=(group.id,)),)),
                actor=CONSOLE_USER,
                now=NOW,
            )
    finally:
        store.dispose()


@pytest.mark.parametrize("size", SIZES)
def test_groups_with_a_long_name(
    snap_compare, console, sample_store: Path, size: tuple[int, int]
) -> None:
    """Groups with a 64-character group name at the top: the name ends in "…" and
    every row's Subscribed and Unsubscribed counts stay on screen; the line under
    the table gives the selected (long) name in full."""
    _add_long_names(sample_store)
    assert snap_compare(console(size), terminal_size=size, run_before=before())


@pytest.mark.parametrize("size", SIZES)
def test_profile_detail_with_a_long_group_name(
    snap_compare, console, sample_store: Path, size: tuple[int, int]
) -> None:
    """Profiles, the first person shown: in the detail the 64-character group name
    ends in "…" and the Effective column stays in the pane (at 80x24 Stored is cut at
    the pane's edge and "Where from" is off to the right; the table scrolls)."""
    _add_long_names(sample_store)

    async def steps(pilot: Pilot[None]) -> None:
        await show(pilot, "2")
        await settle(pilot, lambda: profile_shown(pilot.app))

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_saved_segment_with_a_long_name(
    snap_compare, console, sample_store: Path, size: tuple[int, int]
) -> None:
    """Segments with a saved segment of a 64-character name: in the list on the left
    the name ends in "…" and its Count stays on screen."""
    _add_long_names(sample_store)

    async def steps(pilot: Pilot[None]) -> None:
        app = pilot.app
        await show(pilot, "3")
        table = app.query_one("#segments-table", DataTable)
        await settle(
            pilot,
            lambda: table.row_count == 1 and segment_counted(pilot.app),
        )

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


def _last_condition_in_view(section: SegmentsSection) -> bool:
    """The last condition of the segment builder lies wholly inside its scroll's view."""
    from textual.containers import VerticalScroll

    view = section.query_one("#segment-clauses", VerticalScroll).content_region
    box = list(section.query(ClauseEditor))[-1].region
    return box.height > 0 and view.y <= box.y and box.bottom <= view.bottom


def test_segment_builder_third_condition_at_80x24(
    snap_compare, console, sample_store: Path
) -> None:
    """Segments at 80x24 after ctrl+o (filled in: country equals DE) and ctrl+b add a
    second and a third condition to the new segment's groups condition: the third
    (All email) is scrolled into view, outlined as focused, with its count; the
    others are above it, scrolled up."""
    size = (80, 24)

    async def steps(pilot: Pilot[None]) -> None:
        app = pilot.app
        await show(pilot, "3")
        section = app.query_one(SegmentsSection)
        await settle(
            pilot,
            lambda: len(section.query(ClauseEditor)) == 1 and segment_counted(pilot.app),
        )
        await pilot.press("ctrl+o")
        await settle(pilot, lambda: len(section.query(ClauseEditor)) == 2)
        # The new property condition has the focus: country equals DE.
        await pilot.press(*"country", "tab", "tab", "D", "E")
        await pilot.press("ctrl+b")
        await settle(
            pilot,
            lambda: (
                len(section.query(ClauseEditor)) == 3
                and "people" in str(list(section.query(".clause-count"))[-1].render())
            ),
        )
        # Its count may grow the sentence and shrink the view: wait until the section
        # has scrolled the new condition, borders and all, into view (what this shows).
        await settle(pilot, lambda: _last_condition_in_view(section))

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))
