"""The reach breakdown: each step of a campaign's eligibility chain, with how many
people are left after it and how many it dropped, then the reach.

    All profiles                                   3,000  of 3,000
    Subscribed to all of Newsletter                1,950    −1,050
    Minus people unsubscribed from all email       1,880       −70
    Minus people who left Promotions               1,700      −180
    Reach                                          1,700    people

The labels name groups and segments (user text): they are Content, never
markup. The rows are made once and updated in place, so a recount does not
flicker.
"""

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Static

from app.core.eligibility import Reach


class ReachRow(Horizontal):
    """One line of the breakdown: label (wraps), count, dropped."""

    def __init__(self, *, classes: str = "") -> None:
        super().__init__(classes=("reach-row " + classes).strip())
        self.label = Static("", classes="reach-label")
        self.count = Static("", classes="reach-count")
        self.dropped = Static("", classes="reach-dropped")

    def compose(self) -> ComposeResult:
        yield self.label
        yield self.count
        yield self.dropped

    def show(self, label: Content, count: str, dropped: str) -> None:
        self.label.update(label)
        self.count.update(Content(count))
        self.dropped.update(Content(dropped))


class ReachBreakdown(Vertical):
    """Shows a ``Reach``; ``counting`` greys the numbers while a newer count runs."""

    def __init__(self, *, id: str | None = None, classes: str = "") -> None:
        super().__init__(id=id, classes=classes)
        self.note = Static(Content("Counting…"), classes="reach-note")
        self.total = ReachRow(classes="reach-total")
        self.rows: list[ReachRow] = []
        self.reach: Reach | None = None

    def compose(self) -> ComposeResult:
        yield self.note
        yield self.total

    def on_mount(self) -> None:
        self.total.display = False

    def _ensure_rows(self, count: int) -> None:
        while len(self.rows) < count:
            row = ReachRow()
            self.rows.append(row)
            self.mount(row, before=self.total)
        while len(self.rows) > count:
            self.rows.pop().remove()

    def counting(self) -> None:
        """A count is running: say so, keep the last numbers (dimmed) until it lands."""
        self.add_class("-counting")
        if self.reach is None:
            self.note.update(Content("Counting…"))
            self.note.display = True

    def show(self, reach: Reach) -> None:
        """Show each step's count and what it dropped, then the reach."""
        self.reach = reach
        self.remove_class("-counting", "-error")
        self.note.display = False
        self._ensure_rows(len(reach.steps))
        for number, (row, step) in enumerate(zip(self.rows, reach.steps, strict=True)):
            # The audience is measured against every profile; later steps by what they drop.
            dropped = f"of {reach.profiles:,}" if number == 0 else f"−{step.dropped:,}"
            row.show(Content(step.label), f"{step.count:,}", dropped)
            row.set_class(number > 0 and step.dropped > 0, "-dropped")
        people = "person" if reach.reach == 1 else "people"
        self.total.show(Content("Reach"), f"{reach.reach:,}", people)
        self.total.display = True

    def show_error(self, message: str) -> None:
        """The chain cannot be counted (a deleted segment …): say why, drop the numbers."""
        self.reach = None
        self.remove_class("-counting")
        self.add_class("-error")
        self._ensure_rows(0)
        self.total.display = False
        self.note.update(Content(message))
        self.note.display = True
