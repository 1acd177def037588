"""Erase one profile's personal data, keeping its opt-out (owners only), after asking why."""

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from app.core import actors, erasure, text_rules
from app.core.errors import SubgroupsError
from app.core.store import Store


class EraseProfileModal(ModalScreen[str | None]):
    """Returns a one-line account of the erasure, or None when cancelled.

    The service refuses anyone but an owner; its message shows in the dialog.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="erase_profile.cancel"),
        Binding("ctrl+s", "erase", "Erase", id="erase_profile.erase"),
    ]

    @dataclass
    class Done(Message):
        summary: str

    @dataclass
    class Failed(Message):
        message: str

    def __init__(self, store: Store, identity: str) -> None:
        super().__init__()
        self.store = store
        self.identity = identity

    def compose(self) -> ComposeResult:
        with Vertical(id="erase-profile", classes="dialog"):
            yield Static(
                Content(f"Erase {text_rules.shown(self.identity)}?"), classes="dialog-title"
            )
            yield Static(
                "Removes the email, name, properties and identity for good. The opt-out is "
                "kept: the address stays suppressed, and the ledger still verifies."
            )
            yield Static("", id="form-error", classes="form-error -empty")
            yield Label("Reason (required, kept in the ledger)", classes="field-label")
            yield Input(id="reason", placeholder="e.g. GDPR request 42", compact=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Erase (ctrl+s)", variant="error", id="erase", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#erase")
    @on(Input.Submitted)
    def action_erase(self) -> None:
        self.query_one("#erase", Button).disabled = True
        self._erase(self.query_one("#reason", Input).value)

    @work(thread=True, exclusive=True)
    def _erase(self, reason: str) -> None:
        try:
            with self.store.write() as session:
                done = erasure.erase_profile(
                    session=session,
                    identity=self.identity,
                    reason=reason,
                    source="console",
                    actor=actors.actor_name(),
                )
        except SubgroupsError as exc:
            self.post_message(self.Failed(exc.message))
            return
        self.post_message(
            self.Done(
                f"Erased {text_rules.shown(self.identity)}: {done.events_redacted} events "
                "redacted, the address suppressed"
            )
        )

    @on(Done)
    def _done(self, message: Done) -> None:
        self.dismiss(message.summary)

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#erase", Button).disabled = False
        error = self.query_one("#form-error", Static)
        error.update(Content(message.message))
        error.remove_class("-empty")
