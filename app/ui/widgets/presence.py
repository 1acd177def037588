"""The line that says which other admins are connected over SSH (hidden when none are).

Read when the store opens and again whenever an ``Admin Session Started`` or
``Ended`` event arrives, in a worker (``app.core.presence``).
"""

from dataclasses import dataclass

from textual import on, work
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from app.core.event_names import ADMIN_SESSION_ENDED, ADMIN_SESSION_STARTED
from app.ui.context import console
from app.ui.messages import StoreChanged

SESSION_EVENTS = frozenset({ADMIN_SESSION_STARTED, ADMIN_SESSION_ENDED})


class PresenceLine(Static):
    """``Also connected over SSH: bob (viewer)``, under the section bar."""

    DEFAULT_CSS = """
    PresenceLine {
        display: none;
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    """

    @dataclass
    class Read(Message):
        text: str

    def start(self) -> None:
        """The store is open: read who is connected now, and again on each session event."""
        console(self).store_changes.subscribe(self, self._store_changed)
        self._read()

    def _store_changed(self, change: StoreChanged) -> None:
        if change.settled and (change.everything or SESSION_EVENTS & change.names):
            self._read()

    @work(thread=True, exclusive=True, group="presence")
    def _read(self) -> None:
        from app.core import presence

        try:
            with console(self).store.read() as session:
                text = presence.describe(presence.connected_admins(session))
        except Exception:  # the store is busy or gone: the line stays as it was
            return
        self.post_message(self.Read(text))

    @on(Read)
    def _show(self, message: Read) -> None:
        self.update(Content(message.text))  # names are login names: no markup in them
        self.display = bool(message.text)
