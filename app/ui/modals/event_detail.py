"""One ledger event in full: opened with Enter on a line of the live event log.

Every field and every property, as stored, one per line; long values wrap
rather than being cut. Nothing is read as markup, and control characters are
shown escaped (``\\x1b``), so an event can neither style nor drive the
terminal. A resubscribe keeps its name (``Channel Unsubscribed``) and says
what it is beside it; its ``Resubscribed`` property reads ``true``.
"""

import json
from datetime import UTC
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from app.core.ledger import EventRecord
from app.core.text_rules import shown
from app.ui.event_labels import RESUBSCRIBED, is_resubscribe, label

KEY_WIDTH = 18


def when(event: EventRecord) -> str:
    """The event's time in local time, to the microsecond if it has them, and in UTC
    too when local time is not UTC."""
    local = event.ts.astimezone()
    fmt = "%Y-%m-%d %H:%M:%S" + (".%f" if local.microsecond else "")
    text = f"{local.strftime(fmt)} {local.tzname()}"
    if local.utcoffset():
        text += f" ({event.ts.astimezone(UTC).strftime(fmt)} UTC)"
    return text


def value_text(value: Any) -> str:
    """A property value as the event's JSON has it (true, null, 12), strings as they are."""
    if value == "":
        return "(empty)"
    if isinstance(value, str):
        return shown(value)
    return shown(json.dumps(value, ensure_ascii=False, default=str))


def detail_rows(event: EventRecord) -> list[tuple[str, str]]:
    """(field, value) for every field of the event, then every property."""
    name = event.name
    if is_resubscribe(event):
        name += " (a resubscribe)" if label(event) == RESUBSCRIBED else " (a subscribe)"
    rows = [
        ("Event", str(event.id)),
        ("Time", when(event)),
        ("Name", shown(name)),
        ("Identity", shown(event.identity) if event.identity is not None else "—"),
        ("Group ID", str(event.group_id) if event.group_id is not None else "—"),
        ("Source", shown(event.source)),
        ("Actor", shown(event.actor) if event.actor else "—"),
    ]
    return rows + [(shown(key), value_text(value)) for key, value in event.properties.items()]


class EventDetailModal(ModalScreen[None]):
    """The whole event; Escape closes."""

    BINDINGS = [Binding("escape", "close", "Close", id="event_detail.close")]

    def __init__(self, event: EventRecord) -> None:
        super().__init__()
        self.event = event

    def compose(self) -> ComposeResult:
        rows = detail_rows(self.event)
        fields = len(rows) - len(self.event.properties)
        with Vertical(id="event-detail-dialog", classes="dialog"):
            yield Static(
                Content(f"Event {self.event.id}: {shown(self.event.name)}"),
                classes="dialog-title",
            )
            with VerticalScroll(id="event-detail-rows"):
                for index, (key, value) in enumerate(rows):
                    if index == fields:
                        yield Static(Content("Properties"), classes="event-detail-heading")
                    with Horizontal(classes="event-detail-row"):
                        yield Static(Content(key), classes="event-detail-key")
                        yield Static(Content(value), classes="event-detail-value")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close (esc)", id="close", compact=True)

    def on_mount(self) -> None:
        self.query_one("#event-detail-rows").focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
