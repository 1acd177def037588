"""Ask for one line of text (a new name, a file path), validated before it returns."""

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from app.core.errors import SubgroupsError


class PromptModal(ModalScreen[str | None]):
    """One labelled input; Enter or ctrl+s returns the text, Escape cancels.

    ``check`` may raise a SubgroupsError: its message shows under the input
    and the dialog stays open.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
        Binding("ctrl+s", "save", "Save", id="prompt.save"),
    ]

    def __init__(
        self,
        title: str,
        label: str,
        value: str = "",
        *,
        check: Callable[[str], str] | None = None,
        confirm_label: str = "Save",
    ) -> None:
        super().__init__()
        self._title, self._label, self._value = title, label, value
        self._check = check
        self._confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Content(self._title), classes="dialog-title")
            yield Label(Content(self._label), classes="field-label")
            yield Input(self._value, id="prompt-value", compact=True)
            yield Static("", id="prompt-error", classes="field-error -empty")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    f"{self._confirm_label} (ctrl+s)", variant="primary", id="save", compact=True
                )
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#prompt-value", Input).focus()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        value = self.query_one("#prompt-value", Input).value
        try:
            value = self._check(value) if self._check else value
        except SubgroupsError as exc:
            error = self.query_one("#prompt-error", Static)
            error.update(Content(exc.message))
            error.remove_class("-empty")
            return
        self.dismiss(value)
