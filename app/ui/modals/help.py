"""F1 / ? help: the real keys, read from the bindings themselves."""

from dataclasses import replace

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

ABOUT = (
    "subgroups keeps each person's choice per subscription group. Campaigns skip people who left a "
    "group they name, and people who left all email. Archived groups keep their opt-outs enforced. "
    "Every change is an event in the ledger, shown live in the log pane (l)."
)


def _rows(app: App[object], bindings: list[BindingType]) -> list[tuple[str, str]]:
    rows = []
    for binding in bindings:
        if not isinstance(binding, Binding):
            continue
        keys = ", ".join(
            app.get_key_display(replace(binding, key=key.strip())) for key in binding.key.split(",")
        )
        rows.append((keys, binding.tooltip or binding.description))
    return rows


class HelpScreen(ModalScreen[None]):
    """Lists every key by where it works; Escape, F1 or ? closes it."""

    BINDINGS = [Binding("escape,f1,question_mark,q", "app.pop_screen", "Close", id="help.close")]

    def __init__(self, sections: list[tuple[str, list[BindingType]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Static("subgroups: keys", classes="dialog-title")
            yield Static(ABOUT, id="help-about")
            table: DataTable[str] = DataTable(id="help-keys", cursor_type="none", show_cursor=False)
            yield table
            yield Static(
                Content("Escape, F1 or ? closes this help. ctrl+p finds any action by name."),
                classes="dialog-hint",
            )

    def on_mount(self) -> None:
        table = self.query_one("#help-keys", DataTable)
        table.add_columns("Where", "Key", "What it does")
        for where, bindings in self.sections:
            for key, text in _rows(self.app, bindings):
                table.add_row(where, key, text)
