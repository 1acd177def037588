"""Charts for the Insights section and the Groups table: unsubscribes per day, and a
sparkline of a group's net change.

The daily chart is a plotext bar chart (textual-plotext) when that package is
installed, imported when the chart is first made; without it, bars drawn here
with block characters. Either way the chart is handed plain data (days and
counts per series) and draws nothing from the store.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from app.core.text_rules import shown

# The series' colours, in order, as RGB (plotext's colour names map to other
# shades than Rich's): the chart draws them and the legend under it names them.
COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 175, 215),
    (215, 95, 135),
    (135, 175, 0),
    (255, 175, 0),
    (135, 135, 215),
)


def rich_colour(rgb: tuple[int, int, int]) -> str:
    """A colour for Rich from an RGB triple."""
    return "rgb({},{},{})".format(*rgb)


# Eighths of a cell, lowest first: the sparkline's and the fallback bars' steps.
BLOCKS = " ▁▂▃▄▅▆▇█"
SPARK = BLOCKS[1:]


def sparkline(values: Sequence[int], width: int) -> Content:
    """``values`` squeezed into ``width`` cells (each cell the sum of its days), lowest ▁.

    For a group's net change the running total is drawn, so the line rises while
    the group gains people and falls while it loses them; a flat line is no change.
    """
    if not values or width < 1:
        return Content("")
    running: list[int] = []
    total = 0
    for value in values:
        total += value
        running.append(total)
    per_cell = -(-len(running) // width)  # ceiling: every day lands in a cell
    cells = [running[min(i + per_cell, len(running)) - 1] for i in range(0, len(running), per_cell)]
    low, high = min(cells), max(cells)
    if high == low:
        return Content.styled(SPARK[0] * len(cells), "dim")
    span = high - low
    line = "".join(SPARK[round((c - low) * (len(SPARK) - 1) / span)] for c in cells)
    # Theme colours: gaining people is success, losing them an error.
    return Content.styled(line, "$success" if total > 0 else "$error" if total < 0 else "")


@dataclass(frozen=True)
class Series:
    """One series of the daily chart: a label and a count per day."""

    label: str
    counts: list[int]


def block_bars(totals: Sequence[int], *, width: int, height: int) -> Text:
    """Vertical bars of ``totals`` (one per day, squeezed to ``width``) ``height`` rows tall."""
    if not totals or width < 1 or height < 1:
        return Text("")
    per_cell = -(-len(totals) // width)
    cells = [sum(totals[i : i + per_cell]) for i in range(0, len(totals), per_cell)]
    top = max(cells) or 1
    eighths = [round(c * height * 8 / top) for c in cells]
    rows = []
    for row in range(height, 0, -1):
        floor = (row - 1) * 8
        rows.append("".join(BLOCKS[max(0, min(8, e - floor))] for e in eighths))
    return Text("\n".join(rows), style="bold")


class DailyChart(Vertical):
    """Unsubscribes per day, stacked by series (the top groups, then the rest)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._plot: Widget | None = None
        self._data: tuple[list[date], list[Series]] = ([], [])

    def compose(self) -> ComposeResult:
        try:
            from textual_plotext import PlotextPlot
        except ImportError:  # the optional package is not installed: bars of our own
            yield Static("", id="chart-bars")
        else:
            self._plot = PlotextPlot(id="chart-plot")
            yield self._plot
        yield Static("", id="chart-legend")

    def _legend(self, series: list[Series]) -> Text:
        """The series' names in their colours (the plot's own legend would cover bars)."""
        legend = Text(no_wrap=True, overflow="ellipsis")
        if self._plot is None:
            legend.append("All unsubscribes, per day", style="dim")
            return legend
        for n, item in enumerate(series):
            legend.append("■ ", style=rich_colour(COLOURS[n % len(COLOURS)]))
            legend.append(shown(item.label) + "  ")
        return legend

    def show(self, days: list[date], series: list[Series]) -> None:
        """Draw ``series`` over ``days`` (oldest first)."""
        self._data = (days, series)
        self.query_one("#chart-legend", Static).update(self._legend(series))
        if self._plot is None:
            totals = [sum(s.counts[i] for s in series) for i in range(len(days))]
            width = max(10, self.size.width or 60)
            bars = self.query_one("#chart-bars", Static)
            bars.update(block_bars(totals, width=width, height=max(2, (self.size.height or 6) - 1)))
            return
        self._draw_plot(days, series)

    def _draw_plot(self, days: list[date], series: list[Series]) -> None:
        from textual_plotext import PlotextPlot

        assert isinstance(self._plot, PlotextPlot)
        plt = self._plot.plt
        plt.clear_data()
        plt.clear_figure()
        if not days:
            self._plot.refresh()
            return
        x = list(range(1, len(days) + 1))
        colours = [COLOURS[n % len(COLOURS)] for n in range(len(series))]
        if len(series) > 1:
            # Stacked, unlabelled: the legend is drawn under the plot.
            plt.stacked_bar(x, [s.counts for s in series], color=colours, width=0.8)  # type: ignore[arg-type]
        else:
            plt.bar(x, series[0].counts, color=colours[0], width=0.8)
        # A date every week (or two) on the x axis: a label a day would crowd 80 columns.
        step = 7 if len(days) <= 31 else 14
        ticks: list[float] = [float(t) for t in range(len(days), 0, -step)][::-1]
        plt.xticks(ticks, [days[int(t) - 1].strftime("%d %b") for t in ticks])
        self._plot.refresh()
