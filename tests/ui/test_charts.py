"""The charts' drawing: the Groups sparkline (a running total squeezed into cells) and
the bars the Insights chart falls back to without textual-plotext."""

import sys
from pathlib import Path

import pytest
from console_pilot import SIZE, settle, show_section
from test_console_insights import write_story
from textual.widgets import Static

from app.ui.sections.insights import InsightsSection
from app.ui.widgets.charts import block_bars, sparkline


def test_a_sparkline_draws_the_running_total_one_cell_per_few_days() -> None:
    # Six days in three cells: running totals 0, -1, -1, -1, 1, 2 -> cells end at -1, -1, 2.
    line = sparkline([0, -1, 0, 0, 2, 1], 3)
    assert line.plain == "▁▁█"
    assert "$success" in str(line.spans[0].style)  # gained people overall
    assert sparkline([0, 0, 0], 3).plain == "▁▁▁"
    assert "$error" in str(sparkline([0, -2, 1], 3).spans[0].style)
    assert sparkline([], 5).plain == ""


def test_block_bars_are_as_tall_as_the_busiest_day() -> None:
    bars = block_bars([0, 4, 8, 2], width=4, height=2).plain.split("\n")
    # 16 eighths of height for the busiest (8): 4 fills the lower row, 2 half of it.
    assert bars == ["  █ ", " ██▄"]


async def test_without_textual_plotext_the_chart_draws_its_own_bars(
    tmp_path: Path, make_app, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "textual_plotext", None)  # import fails: ImportError
    db = tmp_path / "store.db"
    write_story(db)
    app = make_app(db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await show_section(pilot, "insights")
        section = app.query_one(InsightsSection)
        await settle(pilot, lambda: section.data is not None)
        assert not app.query("#chart-plot")
        bars = str(app.query_one("#chart-bars", Static).render())
        assert "█" in bars
        legend = str(app.query_one("#chart-legend", Static).render())
        assert legend == "All unsubscribes, per day"
