"""A yes/no question before anything destructive."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmModal(ModalScreen[bool]):
    """Ask before acting; ``y`` confirms, ``n`` or Escape cancels."""

    BINDINGS = [
        Binding("y", "confirm", "Yes", id="confirm.yes"),
        Binding("n,escape", "cancel", "No", id="confirm.no"),
    ]

    def __init__(self, title: str, message: str | Content, *, confirm_label: str = "Yes") -> None:
        super().__init__()
        self._title = title
        # Callers build the message from user text: Content is never markup.
        self._message = message if isinstance(message, Content) else Content(message)
        self._confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="dialog"):
            yield Static(Content(self._title), classes="dialog-title")
            yield Static(self._message, id="confirm-message")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    Content(f"{self._confirm_label} (y)"),
                    variant="warning",
                    id="confirm-yes",
                    compact=True,
                )
                yield Button("No (n / esc)", id="confirm-no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
