"""Screenshots of the demo tour (``subgroups demo --tour``): its first step, at the
classic 80x24 and at 120x40. Review tests/snapshots/__snapshots__ (or
snapshot_report.html after a failure) before accepting changes with --snapshot-update.
"""

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import test_snapshots as shared
from snapshot_support import SIZES, STORE_NAME, before, settle
from textual.pilot import Pilot

from app.core.store import Store, make_engine
from app.ui.tour_app import TourApp

# The shared fixtures: the pinned clock, user and time zone, and the sample data.
pinned = shared.pinned
sample_template = shared.sample_template


@pytest.fixture
def tour(
    sample_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[tuple[int, int]], TourApp]]:
    """The console with the tour on ./store.db (the sample data), for a terminal of a size."""
    shutil.copyfile(sample_template, tmp_path / STORE_NAME)
    stores: list[Store] = []

    def make(size: tuple[int, int]) -> TourApp:
        monkeypatch.setenv("COLUMNS", str(size[0]))
        monkeypatch.setenv("LINES", str(size[1]))
        url = f"sqlite:///{STORE_NAME}"
        store = Store(engine=make_engine(url), url=url)
        stores.append(store)
        app = TourApp(store=store, offer_sample_data=False)
        app.animation_level = "none"
        return app

    yield make
    for store in stores:
        store.dispose()


async def tour_started(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, TourApp)
    await settle(pilot, lambda: app.tour.state.after_id is not None)


@pytest.mark.parametrize("size", SIZES)
def test_tour_first_step(snap_compare, tour, size: tuple[int, int]) -> None:
    """The tour's first step over the Groups section on the sample data: the panel
    docked above the footer, titled "Tour 1/6: Create a group", says to press 1 then
    n and ctrl+s and to watch "N / 50 active" (11 / 50 above it), waits for a new
    group, and names the presenter's keys on its bottom border ("F8 next step · F9
    restart"); the footer keeps its keys, f8 Tour among them. At 80x24 the groups
    table and the log pane give rows to the panel."""
    assert snap_compare(tour(size), terminal_size=size, run_before=before(tour_started))
