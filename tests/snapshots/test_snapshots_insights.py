"""Screenshots of the Insights section (key 6) on the sample store with the demo's
month of history (``demo_history``, at the pinned NOW). The fixtures are those of
test_snapshots.py (imported, not redefined)."""

from pathlib import Path

import pytest
import test_snapshots as shared
from snapshot_support import NOW, SEED_ACTOR, SIZES, before, settle, show
from textual.pilot import Pilot

from app.core.demo_history import add_month_of_history
from app.core.store import open_store
from app.ui.sections.insights import InsightsSection

# The shared fixtures: the pinned clock, user and time zone, the sample store, the console.
pinned = shared.pinned
sample_template = shared.sample_template
sample_store = shared.sample_store
console = shared.console


@pytest.fixture
def demo_store(sample_store: Path) -> Path:
    """./store.db: the sample data and the demo's month of history."""
    store = open_store(sample_store)
    try:
        add_month_of_history(store=store, actor=SEED_ACTOR, now=NOW)
    finally:
        store.dispose()
    return sample_store


async def _show_insights(pilot: Pilot[None]) -> None:
    await show(pilot, "6")
    section = pilot.app.query_one(InsightsSection)
    await settle(pilot, lambda: section.data is not None)


@pytest.mark.parametrize("size", SIZES)
def test_insights(snap_compare, console, demo_store: Path, size: tuple[int, int]) -> None:
    """The Insights section over the last 30 days: the summary line (unsubscribes, reasons
    given, "by group", and the keys d and b), the chart of unsubscribes per day stacked
    by the three groups most left and the rest, with a date every week under it and the
    legend in the series' colours, then the table of unsubscribes by group, most first.
    The section bar shows "6 Insights" highlighted; the footer d 30/90 days and b By."""
    assert snap_compare(console(size), terminal_size=size, run_before=before(_show_insights))


@pytest.mark.parametrize("size", SIZES)
def test_insights_90_days_by_source(
    snap_compare, console, demo_store: Path, size: tuple[int, int]
) -> None:
    """After d and b: the last 90 days (a date every two weeks under the chart, the
    sample's imported history before the month), and the table by source: import first
    (the sample's history), then one_click, landing_page, mailto and the rest, the
    sources nobody used with 0."""

    async def steps(pilot: Pilot[None]) -> None:
        await _show_insights(pilot)
        section = pilot.app.query_one(InsightsSection)
        await pilot.press("d")
        await settle(pilot, lambda: section.data is not None and len(section.data.days) == 90)
        await pilot.press("b")

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))
