"""The live event log pane: every ledger event as it commits, from any process.

The app's poller hands events in with ``add``; the pane keeps the newest
``capacity`` of them, shows them newest at the bottom, can pause (new events
are kept and counted, not shown) and filters by event name, group, source and
person (identity). The lines are a list with a cursor: with the list focused,
the arrows move it and Enter opens the whole event (``EventDetailModal``).
While the cursor is on the newest line (or the list was never focused) the
list follows new events; moved up, it stays where the reader is.
"""

from collections import deque
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from app.core import clock, text_rules
from app.core.event_names import CHANNEL_UNSUBSCRIBED, SOURCES
from app.ui.event_labels import is_resubscribe, label

if TYPE_CHECKING:
    from app.core.ledger import EventRecord

CAPACITY = 1000
# The filter boxes: (id, placeholder, what it is matched against).
FILTERS = (
    ("log-filter-name", "event name"),
    ("log-filter-group", "group"),
    ("log-filter-source", "source"),
    ("log-filter-person", "person"),
)


def event_line(event: "EventRecord") -> Text:
    """One event as a line of plain text (user text is never read as markup).

    Control characters show as escapes (``\\x1b``, ``\\n``): a stored newline
    cannot forge a line, nor ESC reach the terminal.
    """
    line = Text(no_wrap=True, overflow="ellipsis")
    local = event.ts.astimezone()
    # Today's events by time alone; older ones (history, replays) with the date.
    fmt = "%H:%M:%S" if local.date() == clock.now().astimezone().date() else "%m-%d %H:%M"
    line.append(f"{local.strftime(fmt):<11}", style="dim")
    line.append("  ")
    if is_resubscribe(event):
        style = "bold green"
    elif event.name == CHANNEL_UNSUBSCRIBED:
        style = "bold"
    else:
        style = "bold italic"
    line.append(f"{text_rules.shown(label(event)):<20}", style=style)
    line.append(" ")
    from app.core.ledger import summary  # the data layer: loaded once the store is open

    line.append(text_rules.shown(summary(event)))
    return line


class LogLines(OptionList):
    """The log's lines: a cursor (arrows, when focused) and Enter for the whole event."""

    BINDINGS = [
        Binding(
            "enter",
            "select",
            "Whole event",
            tooltip="Show every field of the event under the cursor",
            id="log.open",
        )
    ]

    def on_focus(self) -> None:
        if self.highlighted is None and self.option_count:
            self.highlighted = self.option_count - 1


class EventLogPane(Vertical):
    """The bottom pane; the app binds ``l`` (show/hide) and ``p`` (pause) to it."""

    paused: reactive[bool] = reactive(False)

    def __init__(self, *, capacity: int = CAPACITY, id: str | None = None) -> None:
        super().__init__(id=id)
        self.capacity = capacity
        self.events: deque[EventRecord] = deque(maxlen=capacity)
        self.by_id: dict[str, EventRecord] = {}
        self.unseen = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="log-bar"):
            yield Static("Live events", id="log-title")
            yield Static("", id="log-status")
            for filter_id, placeholder in FILTERS:
                box = Input(placeholder=placeholder, id=filter_id, compact=True)
                if filter_id == "log-filter-source":
                    box.tooltip = "Where the change came from: " + ", ".join(SOURCES)
                elif filter_id == "log-filter-person":
                    box.tooltip = "Part of the person's identity"
                yield box
        yield LogLines(id="log-lines", markup=False)

    def on_mount(self) -> None:
        self._update_status()

    def _filter(self, filter_id: str) -> str:
        return self.query_one(f"#{filter_id}", Input).value.strip().casefold()

    def _matches(self, event: "EventRecord") -> bool:
        name = self._filter("log-filter-name")
        group = self._filter("log-filter-group")
        source = self._filter("log-filter-source")
        person = self._filter("log-filter-person")
        if name and name not in event.name.casefold() and name not in label(event).casefold():
            return False
        if group and group not in (event.group_name or "").casefold():
            return False
        if source and source not in event.source.casefold():
            return False
        return not (person and person not in (event.identity or "").casefold())

    @staticmethod
    def _option(event: "EventRecord") -> Option:
        return Option(event_line(event), id=str(event.id))

    def add(self, events: list["EventRecord"], *, skipped: int = 0) -> None:
        """Take new events (oldest first); show them unless paused.

        ``skipped``: events of a bulk write that went by before these, not shown.
        """
        lines = self.query_one("#log-lines", LogLines)
        follow = self._following(lines)
        if skipped:
            notice = Text(
                f"… {skipped:,} events of a bulk write not shown (`subgroups events` lists them)",
                style="dim italic",
            )
            lines.add_option(Option(notice, disabled=True))
        self.events.extend(events)
        self.by_id = {str(e.id): e for e in self.events}
        if self.paused:
            self.unseen += len(events)
            self._update_status()
            return
        lines.add_options([self._option(e) for e in events if self._matches(e)])
        if lines.option_count > self.capacity + self.capacity // 10:
            self._redraw()  # drop the lines of events the pane no longer keeps
        self._follow(lines, follow)

    @staticmethod
    def _following(lines: LogLines) -> bool:
        """The cursor is on the newest line, or nowhere: new lines are followed."""
        return lines.highlighted is None or lines.highlighted >= lines.option_count - 1

    def _follow(self, lines: LogLines, follow: bool) -> None:
        if not follow or not lines.option_count:
            return
        if lines.highlighted is not None:
            lines.highlighted = lines.option_count - 1
        # Now, so the new line is drawn in this frame (add_options sized the list); and
        # after the refresh for a list not laid out yet.
        lines.scroll_end(animate=False, immediate=True)
        lines.call_after_refresh(lines.scroll_end, animate=False, immediate=True)

    def _redraw(self) -> None:
        """Show the kept events again through the filters; the cursor stays on its event."""
        lines = self.query_one("#log-lines", LogLines)
        follow = self._following(lines)
        current = lines.highlighted_option
        lines.clear_options()
        lines.add_options([self._option(e) for e in self.events if self._matches(e)])
        if current is not None and current.id is not None and lines.option_count:
            try:
                lines.highlighted = lines.get_option_index(current.id)
            except OptionDoesNotExist:  # filtered out now: to the newest line
                follow = True
            if follow:
                lines.highlighted = lines.option_count - 1
        self._follow(lines, follow)

    @on(OptionList.OptionSelected, "#log-lines")
    def _open_event(self, message: OptionList.OptionSelected) -> None:
        from app.ui.modals.event_detail import EventDetailModal

        message.stop()
        event = self.by_id.get(message.option.id or "")
        if event is not None:
            self.app.push_screen(EventDetailModal(event))

    @on(Input.Changed, "#log-filter-name, #log-filter-group")
    @on(Input.Changed, "#log-filter-source, #log-filter-person")
    def _filter_changed(self) -> None:
        self._redraw()
        self._update_status()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused

    def watch_paused(self, paused: bool) -> None:
        if not paused:
            self.unseen = 0
            self._redraw()
        self._update_status()

    def _update_status(self) -> None:
        filtered = any(self._filter(filter_id) for filter_id, _ in FILTERS)
        parts = []
        if self.paused:
            parts.append(f"PAUSED · {self.unseen} new (p resumes)")
        if filtered:
            parts.append("filtered")
        self.query_one("#log-status", Static).update(Content(" · ".join(parts)))
