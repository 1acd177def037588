"""The Insights section: how unsubscribes move over the last 30 or 90 days.

A chart of unsubscribes per day (stacked: the groups most left, then the
rest), and a table by group, source, campaign (with the rate per thousand
sent) or the reasons people gave. d switches 30/90 days, b what the table
counts by. Everything is read in one worker call from the ledger's daily
counts (``app.core.insights``), so a busy store answers as fast as a small one;
new unsubscribes from any process read it again once their burst is over.
"""

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from app.core import insights
from app.core.event_names import CHANNEL_UNSUBSCRIBED, UNSUBSCRIBE_REASON
from app.core.insights import InsightRow, Insights
from app.ui.messages import StoreChanged
from app.ui.sections import keys
from app.ui.sections.base import Section
from app.ui.widgets.charts import DailyChart, Series
from app.ui.widgets.columns import cut

WINDOWS = (30, 90)
BY = insights.BY
HEADINGS = {"group": "Group", "source": "Source", "campaign": "Campaign", "reason": "Reason"}
# The groups the chart names; the rest (and all-email opt-outs) are stacked as one.
CHART_GROUPS = 3


def chart_series(data: Insights) -> list[Series]:
    """The groups most left, each a series, then everything else as one."""
    ranked = sorted(data.groups, key=lambda g: -sum(g.unsubscribes))
    named = [g for g in ranked[:CHART_GROUPS] if sum(g.unsubscribes)]
    series = [Series(g.name, list(g.unsubscribes)) for g in named]
    rest = [total - sum(g.unsubscribes[i] for g in named) for i, total in enumerate(data.total)]
    if any(rest) or not series:
        series.append(Series("Other" if series else "All", rest))
    return series


class InsightsSection(Section):
    """Section 6: unsubscribes over time, by group, source, campaign and reason."""

    MAIN_WIDGET = "#insights-table"
    BINDINGS = keys.INSIGHTS

    days: reactive[int] = reactive(30)
    by: reactive[str] = reactive("group")

    @dataclass
    class Loaded(Message):
        data: Insights

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: Insights | None = None

    def compose(self) -> ComposeResult:
        yield Static("Reading the ledger's daily counts …", id="insights-summary")
        yield DailyChart(id="insights-chart")
        yield DataTable(id="insights-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.reload()

    # --- loading ---------------------------------------------------------------

    def reload(self) -> None:
        self._read(self.days)

    @work(thread=True, exclusive=True, group="insights.load")
    def _read(self, days: int) -> None:
        """One read of everything the section shows, off the UI thread."""
        with self.subgroups.store.read() as session:
            data = insights.insights(session, days=days)
        self.post_message(self.Loaded(data))

    def action_reload(self) -> None:
        self.reload()

    def store_changed(self, change: StoreChanged) -> None:
        """Unsubscribes, reasons or group changes: read again once the burst is over
        (while hidden, when next shown)."""
        if not change.settled:
            return
        if (
            change.bulk
            or change.everything
            or change.groups_changed
            or {CHANNEL_UNSUBSCRIBED, UNSUBSCRIBE_REASON} & change.names
        ):
            self.reload_when_shown()

    def activate(self) -> None:
        self.catch_up()

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if len(message.data.days) != self.days:
            return  # a read for the other window, overtaken by a switch
        self.data = message.data
        self._show()

    # --- showing ------------------------------------------------------------

    def _rows(self) -> list[InsightRow]:
        assert self.data is not None
        return {
            "group": self.data.by_group,
            "source": self.data.by_source,
            "campaign": self.data.by_campaign,
            "reason": self.data.by_reason,
        }[self.by]

    def _show(self) -> None:
        if self.data is None:
            return
        total = sum(self.data.total)
        reasons = sum(r.unsubscribes for r in self.data.by_reason)
        summary = Text()
        summary.append(f"{total:,} unsubscribes", style="bold")
        summary.append(f" in the last {self.days} days · {reasons:,} reasons given · by ")
        summary.append(self.by, style="bold")
        summary.append("   d 30/90 days · b by", style="dim")
        self.query_one("#insights-summary", Static).update(summary)
        self.query_one(DailyChart).show(self.data.days, chart_series(self.data))
        self._fill_table()

    def _fill_table(self) -> None:
        table = self.query_one("#insights-table", DataTable)
        table.clear(columns=True)
        heading = HEADINGS[self.by]
        if self.by == "campaign":
            table.add_columns(heading, "Unsubscribes", "Sent", "Per 1,000 sent")
        else:
            table.add_columns(heading, "Unsubscribes" if self.by != "reason" else "Given")
        rows = self._rows()
        for row in rows:
            cells: list[Text] = [cut(row.key), Text(f"{row.unsubscribes:,}", justify="right")]
            if self.by == "campaign":
                cells += [
                    Text(f"{row.sent or 0:,}", justify="right"),
                    Text(f"{row.per_thousand_sent or 0:.2f}", justify="right"),
                ]
            table.add_row(*cells)
        if not rows:
            empty = "No campaign caused an unsubscribe" if self.by == "campaign" else "None yet"
            table.add_row(Text(empty, style="dim"), *[Text("")] * (len(table.columns) - 1))

    # --- switching ------------------------------------------------------------

    def action_toggle_days(self) -> None:
        self.days = WINDOWS[(WINDOWS.index(self.days) + 1) % len(WINDOWS)]

    def watch_days(self) -> None:
        if self.is_mounted:
            self.query_one("#insights-summary", Static).update(
                f"Reading the last {self.days} days …"
            )
            self.reload()

    def action_cycle_by(self) -> None:
        self.by = BY[(BY.index(self.by) + 1) % len(BY)]

    def watch_by(self) -> None:
        if self.is_mounted:
            self._show()
