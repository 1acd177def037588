"""Change one profile's state for a group or for all email, with a reason."""

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Select, Static

from app.core import actors, subscriptions, text_rules
from app.core.errors import SubgroupsError
from app.core.models import SUBSCRIBED, UNSUBSCRIBED
from app.core.store import Store

ALL_EMAIL = -1
# Group names longer than this are cut in the list, so "(now subscribed)" still shows.
LABEL_WIDTH = 36


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, the last one an ellipsis when cut (a Select's
    options are one line: a long group name would push its state off the edge)."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


@dataclass(frozen=True)
class StateTarget:
    """A choice in the form: a group (id, name, current effective state) or all email."""

    group_id: int
    label: str
    effective: str


class ChangeStateModal(ModalScreen[str | None]):
    """Returns a one-line account of what changed, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="change_state.cancel"),
        Binding("ctrl+s", "save", "Save", id="change_state.save"),
    ]

    @dataclass
    class Done(Message):
        summary: str

    @dataclass
    class Failed(Message):
        message: str

    def __init__(
        self,
        store: Store,
        identity: str,
        targets: list[StateTarget],
        selected: int | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.identity = identity
        self.targets = {t.group_id: t for t in targets}
        # Not all email unless asked: the first group when the one asked for is not offered.
        first_group = next((t.group_id for t in targets if t.group_id != ALL_EMAIL), ALL_EMAIL)
        self.selected = selected if selected in self.targets else first_group

    def compose(self) -> ComposeResult:
        current = self.targets[self.selected].effective
        with Vertical(id="change-state", classes="dialog"):
            yield Static(
                Content(f"Change a subscription of {text_rules.shown(self.identity)}"),
                classes="dialog-title",
            )
            yield Static("", id="form-error", classes="form-error -empty")
            yield Label("Group", classes="field-label")
            yield Select(
                # Text, not Content: the list's type-to-search reads only Text and str
                # prompts (and a str would be read as markup). A long name is cut so
                # its state stays on the line.
                [
                    (Text(f"{shorten(t.label, LABEL_WIDTH)} (now {t.effective})"), t.group_id)
                    for t in self.targets.values()
                ],
                value=self.selected,
                allow_blank=False,
                id="target",
                compact=True,
            )
            yield Label("New state", classes="field-label")
            with RadioSet(id="status", compact=True):
                yield RadioButton("Subscribed", value=current != SUBSCRIBED, id="subscribed")
                yield RadioButton("Unsubscribed", value=current == SUBSCRIBED, id="unsubscribed")
            yield Label("Reason (optional, kept in the ledger)", classes="field-label")
            yield Input(id="reason", placeholder="e.g. asked by phone", compact=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#status", RadioSet).focus()

    @on(Select.Changed, "#target")
    def _target_changed(self, event: Select.Changed) -> None:
        """Offer the other state of the newly chosen group (or all email)."""
        value = event.value
        target = self.targets.get(value) if isinstance(value, int) else None
        if target is not None:
            offer = "unsubscribed" if target.effective == SUBSCRIBED else "subscribed"
            self.query_one(f"#{offer}", RadioButton).value = True

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    @on(Input.Submitted)
    def action_save(self) -> None:
        target = int(self.query_one("#target", Select).value)  # type: ignore[arg-type]
        pressed = self.query_one("#status", RadioSet).pressed_button
        status = (
            UNSUBSCRIBED if pressed is not None and pressed.id == "unsubscribed" else SUBSCRIBED
        )
        self.query_one("#save", Button).disabled = True
        self._save(target, status, self.query_one("#reason", Input).value)

    @work(thread=True, exclusive=True)
    def _save(self, target: int, status: str, reason: str) -> None:
        try:
            with self.store.write() as session:
                done = subscriptions.set_state_for(
                    session=session,
                    identity=self.identity,
                    group_id=None if target == ALL_EMAIL else target,
                    all_email=target == ALL_EMAIL,
                    status=status,
                    source="console",
                    actor=actors.actor_name(),
                    reason=reason,
                )
            what = done.target
            if not done.changed:
                self.post_message(
                    self.Done(
                        f"{text_rules.shown(self.identity)} was already {status} for {what}; "
                        "nothing changed"
                    )
                )
            else:
                self.post_message(
                    self.Done(f"{text_rules.shown(self.identity)}: {what} is now {status}")
                )
        except SubgroupsError as exc:
            self.post_message(self.Failed(exc.message))
        except Exception as exc:
            self.post_message(self.Failed(f"The store could not save this: {exc}"))

    @on(Done)
    def _done(self, message: Done) -> None:
        self.dismiss(message.summary)

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#save", Button).disabled = False
        error = self.query_one("#form-error", Static)
        error.update(Content(message.message))
        error.remove_class("-empty")
