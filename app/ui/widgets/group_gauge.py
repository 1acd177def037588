"""The Groups header: ``N / 50 active``, its gauge and the status filter.

Imports nothing of the data layer, so the console can draw the header from its
first look at the store (``GroupsFirstLook``) while SQLAlchemy and the Groups
section still load; the section draws the same header once built.
"""

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Label, Static

from app.core.limits import MAX_ACTIVE_GROUPS

FILTERS = ("active", "archived", "all")
GAUGE_WIDTH = 25


def gauge(active: int | None) -> Content:
    """The N / 50 gauge: one cell per two slots, in the error colour when full.

    Drawn as text rather than a ProgressBar, whose bar rounds to its width at
    the moment the value is set (0 before the first layout) and so could draw
    the same count two ways.
    """
    if active is None:
        return Content.styled("·" * GAUGE_WIDTH, "$foreground-muted")
    filled = round(min(active, MAX_ACTIVE_GROUPS) / MAX_ACTIVE_GROUPS * GAUGE_WIDTH)
    colour = "$error" if active >= MAX_ACTIVE_GROUPS else "$primary"
    return Content.assemble(
        Content.styled("━" * filled, colour),
        Content.styled("━" * (GAUGE_WIDTH - filled), "$panel-lighten-2"),
    )


def active_text(active: int | None) -> str:
    """``N / 50 active`` (``… / 50 active`` before the count is known)."""
    return f"{'…' if active is None else active} / {MAX_ACTIVE_GROUPS} active"


def filter_text(current: str) -> Content:
    """The filters, the current one in brackets."""
    shown = " ".join(f"[{f}]" if f == current else f" {f} " for f in FILTERS)
    return Content(f"f shows: {shown}")


def groups_header(active: int | None, *, status_filter: str = "active") -> ComposeResult:
    """The header's widgets (their ids are what the Groups styles and section use)."""
    with Horizontal(id="groups-bar"):
        yield Label(active_text(active), id="active-count")
        yield Static(gauge(active), id="active-gauge")
        yield Label(filter_text(status_filter), id="groups-filter")


class GroupsFirstLook(Vertical):
    """The Groups header as the console's first look at the store counted it: shown
    in the Groups section's place until the section itself is built."""

    def __init__(self, active: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.active = active
        self.set_class(active >= MAX_ACTIVE_GROUPS, "-at-limit")

    def compose(self) -> ComposeResult:
        yield from groups_header(self.active)
