"""The live event log pane: every ledger event as it commits, from any process.

The app's poller hands events in with ``add``; the pane keeps the newest
``capacity`` of them, shows them newest at the bottom, can pause (new events
are kept and counted, not shown) and filters by event name and group.
"""

from collections import deque

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Input, RichLog, Static

from app.core import clock, text_rules
from app.core.ledger import CHANNEL_UNSUBSCRIBED, EventRecord, summary

CAPACITY = 1000


def event_line(event: EventRecord) -> Text:
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
    style = "bold" if event.name == CHANNEL_UNSUBSCRIBED else "bold italic"
    line.append(f"{text_rules.shown(event.name):<20}", style=style)
    line.append(" ")
    line.append(text_rules.shown(summary(event)))
    return line


class EventLogPane(Vertical):
    """The bottom pane; the app binds ``l`` (show/hide) and ``p`` (pause) to it."""

    paused: reactive[bool] = reactive(False)

    def __init__(self, *, capacity: int = CAPACITY, id: str | None = None) -> None:
        super().__init__(id=id)
        self.events: deque[EventRecord] = deque(maxlen=capacity)
        self.unseen = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="log-bar"):
            yield Static("Live events", id="log-title")
            yield Static("", id="log-status")
            yield Input(placeholder="event name", id="log-filter-name", compact=True)
            yield Input(placeholder="group", id="log-filter-group", compact=True)
        yield RichLog(id="log-lines", max_lines=CAPACITY, wrap=False, auto_scroll=True)

    def on_mount(self) -> None:
        self._update_status()

    def on_resize(self) -> None:
        # Lines are cut to the pane's width when written: write them again.
        self._redraw()

    def _matches(self, event: EventRecord) -> bool:
        name = self.query_one("#log-filter-name", Input).value.strip().casefold()
        group = self.query_one("#log-filter-group", Input).value.strip().casefold()
        if name and name not in event.name.casefold():
            return False
        return not (group and group not in (event.group_name or "").casefold())

    def add(self, events: list[EventRecord], *, skipped: int = 0) -> None:
        """Take new events (oldest first); show them unless paused.

        ``skipped``: events of a bulk write that went by before these, not shown.
        """
        if skipped:
            log = self.query_one("#log-lines", RichLog)
            log.write(
                Text(
                    f"… {skipped:,} events of a bulk write not shown (`subgroups events` lists them)",
                    style="dim italic",
                ),
                expand=True,
            )
        self.events.extend(events)
        if self.paused:
            self.unseen += len(events)
            self._update_status()
            return
        log = self.query_one("#log-lines", RichLog)
        for event in events:
            if self._matches(event):
                log.write(event_line(event), expand=True)

    def _redraw(self) -> None:
        log = self.query_one("#log-lines", RichLog)
        log.clear()
        for event in self.events:
            if self._matches(event):
                log.write(event_line(event), expand=True)

    @on(Input.Changed, "#log-filter-name, #log-filter-group")
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
        filtered = any(
            self.query_one(f"#{i}", Input).value.strip()
            for i in ("log-filter-name", "log-filter-group")
        )
        parts = []
        if self.paused:
            parts.append(f"PAUSED · {self.unseen} new (p resumes)")
        if filtered:
            parts.append("filtered")
        self.query_one("#log-status", Static).update(Content(" · ".join(parts)))
