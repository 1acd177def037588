"""Import a profile CSV: choose the file, read the preview (what would change),
then import with a progress bar and a way to cancel. All or nothing.

Steps in one dialog: ``file`` → ``preview`` (or ``problems``) → ``writing`` →
done. Reading, planning and writing run in workers; Escape cancels at every
step (while writing, it stops the import and nothing is written).
"""

import threading
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    Checkbox,
    ContentSwitcher,
    DataTable,
    Input,
    Label,
    ProgressBar,
    Static,
)

from app.core import actors
from app.core.errors import SubgroupsError
from app.core.store import Store

PREVIEW_ROWS = 200


class ImportModal(ModalScreen[str | None]):
    """Returns a one-line account of the import, or None when nothing was imported."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="import.cancel"),
        Binding("ctrl+s", "next", "Next", id="import.next"),
    ]

    @dataclass
    class Progressed(Message):
        stage: str
        done: int
        total: int

    @dataclass
    class Planned(Message):
        plan: object  # csv_io.ImportPlan

    @dataclass
    class Failed(Message):
        message: str
        problems: list[tuple[str, str]]

    @dataclass
    class Imported(Message):
        summary: str

    def __init__(self, store: Store, path: str = "") -> None:
        super().__init__()
        self.store = store
        self.path = path
        self.plan: object | None = None
        self.step = "file"
        self._cancel = threading.Event()

    def compose(self) -> ComposeResult:
        with Vertical(id="import-dialog", classes="dialog"):
            yield Static("Import profiles from a CSV file", classes="dialog-title")
            with ContentSwitcher(initial="import-file", id="import-steps"):
                with Vertical(id="import-file"):
                    yield Label(
                        "File (header: identity, email, name, properties…, all_email, "
                        "group:<name>)",
                        classes="field-label",
                    )
                    yield Input(
                        self.path,
                        id="import-path",
                        placeholder="/path/to/profiles.csv",
                        compact=True,
                    )
                    yield Checkbox(
                        "Overwrite explicit unsubscribes (needs a reason)",
                        id="import-overwrite",
                        compact=True,
                    )
                    yield Input(
                        id="import-reason",
                        placeholder="reason, recorded on each overwritten unsubscribe",
                        compact=True,
                    )
                    yield Static("", id="import-error", classes="field-error -empty")
                with Vertical(id="import-preview"):
                    yield Static("", id="import-summary")
                    yield DataTable(id="import-changes", cursor_type="row")
                with Vertical(id="import-problems"):
                    yield Static("", id="import-problems-title", classes="form-error")
                    yield DataTable(id="import-problem-list", cursor_type="row")
            yield Static("", id="import-stage")
            yield ProgressBar(id="import-progress", show_eta=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Preview (ctrl+s)", variant="primary", id="import-next", compact=True)
                yield Button("Cancel (esc)", id="import-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#import-changes", DataTable).add_columns("Line", "Identity", "Change")
        self.query_one("#import-problem-list", DataTable).add_columns("Where", "Problem")
        self.query_one("#import-progress").display = False
        self.query_one("#import-path", Input).focus()

    # --- steps -------------------------------------------------------------

    def _show(self, step: str, button: str | None) -> None:
        self.step = step
        self.query_one("#import-steps", ContentSwitcher).current = f"import-{step}"
        next_button = self.query_one("#import-next", Button)
        next_button.display = button is not None
        next_button.disabled = False
        if button:
            next_button.label = button

    def _busy(self, what: str) -> None:
        self.query_one("#import-next", Button).disabled = True
        self.query_one("#import-stage", Static).update(Content(what))
        bar = self.query_one("#import-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)

    @on(Input.Submitted)
    @on(Button.Pressed, "#import-next")
    def action_next(self) -> None:
        if self.query_one("#import-next", Button).disabled:
            return
        if self.step == "file":
            path = self.query_one("#import-path", Input).value.strip()
            if not path:
                self._error("Type the path of a CSV file.")
                return
            self._error("")
            self._busy("Reading and checking the file…")
            self._plan(
                path,
                self.query_one("#import-overwrite", Checkbox).value,
                self.query_one("#import-reason", Input).value,
            )
        elif self.step == "preview" and self.plan is not None:
            self._busy("Importing…")
            self._show("preview", None)
            self._apply(self.plan)
        elif self.step == "problems":
            self._show("file", "Preview (ctrl+s)")
            self.query_one("#import-path", Input).focus()

    def _error(self, text: str) -> None:
        error = self.query_one("#import-error", Static)
        error.update(Content(text))
        error.set_class(not text, "-empty")

    @on(Button.Pressed, "#import-cancel")
    def action_cancel(self) -> None:
        if self.step == "writing":
            self._cancel.set()  # the writer stops at its next batch; nothing is written
            self.query_one("#import-stage", Static).update("Cancelling… nothing will be written.")
            return
        self.dismiss(None)

    # --- workers -------------------------------------------------------------

    def _progress(self, stage: str, done: int, total: int) -> None:
        self.post_message(self.Progressed(stage, done, total))

    @work(thread=True, exclusive=True, group="import")
    def _plan(self, path: str, overwrite: bool, reason: str) -> None:
        from app.core import csv_io

        try:
            actors.require_host_files("importing a file")
            with self.store.read() as session:
                plan = csv_io.plan_import(
                    session=session,
                    source=Path(path).expanduser(),
                    overwrite_unsubscribes=overwrite,
                    reason=reason or None,
                    progress=self._progress,
                )
            self.post_message(self.Planned(plan))
        except csv_io.CsvError as exc:
            problems = [(p.where or "file", p.message) for p in exc.problems]
            title = f"{exc.problems[0].file}: {exc.total:,} problem(s); nothing was imported."
            self.post_message(self.Failed(title, problems))
        except SubgroupsError as exc:
            self.post_message(self.Failed(exc.message, []))
        except OSError as exc:
            self.post_message(self.Failed(f"Cannot read {path}: {exc.strerror}", []))

    @work(thread=True, exclusive=True, group="import")
    def _apply(self, plan: object) -> None:
        from app.core import csv_io

        assert isinstance(plan, csv_io.ImportPlan)
        self.step = "writing"
        try:
            result = csv_io.apply_import(
                store=self.store,
                plan=plan,
                actor=actors.actor_name(),
                progress=self._progress,
                cancel=self._cancel.is_set,
            )
        except csv_io.ImportCancelled:
            self.post_message(self.Failed("Import cancelled: nothing was written.", []))
            return
        except SubgroupsError as exc:
            self.post_message(self.Failed(exc.message, []))
            return
        s = result.plan.summary_json()
        self.post_message(
            self.Imported(
                f"Imported {s['file']}: {s['new_profiles']:,} new, "
                f"{s['updated_profiles']:,} updated, {s['state_changes']:,} state changes, "
                f"{s['kept_unsubscribed']:,} unsubscribes kept ({result.seconds:.1f} s)."
            )
        )

    # --- results -------------------------------------------------------------

    @on(Progressed)
    def _progressed(self, message: Progressed) -> None:
        bar = self.query_one("#import-progress", ProgressBar)
        bar.update(total=max(message.total, 1), progress=message.done)
        share = message.done / message.total if message.total else 1.0
        unit = "" if message.stage == "reading" else f" ({message.done:,} of {message.total:,})"
        self.query_one("#import-stage", Static).update(
            Content(f"{message.stage.capitalize()}: {share:.0%}{unit}")
        )

    @on(Planned)
    def _planned(self, message: Planned) -> None:
        from app.core import csv_io

        plan = message.plan
        assert isinstance(plan, csv_io.ImportPlan)
        self.plan = plan
        self.query_one("#import-progress").display = False
        self.query_one("#import-stage", Static).update("")
        s = plan.summary_json()
        text = Text()
        text.append(f"{plan.file}: {s['rows']:,} rows\n", style="bold")
        text.append(
            f"{s['new_profiles']:,} new profiles · {s['updated_profiles']:,} updated · "
            f"{s['unchanged_rows']:,} unchanged\n"
        )
        text.append(
            f"{s['state_changes']:,} state changes, each written to the ledger (Source import)\n"
        )
        for group in s["by_group"]:
            name = group["group"] or "All email"
            text.append(
                f"  {name}: +{group['subscribed']:,} subscribed, "
                f"+{group['unsubscribed']:,} unsubscribed\n"
            )
        if s["kept_unsubscribed"]:
            text.append(
                f"{s['kept_unsubscribed']:,} explicit unsubscribes kept (the file says subscribed; "
                "overwriting needs the checkbox and a reason)\n",
                style="bold",
            )
        if s["overwritten_unsubscribes"]:
            text.append(
                f"{s['overwritten_unsubscribes']:,} unsubscribes will be overwritten: "
                f"{plan.reason}\n",
                style="bold",
            )
        if plan.shared_addresses:
            shared = plan.shared_addresses[0]
            text.append(
                f"{len(plan.shared_addresses):,} addresses shared by several profiles, each one "
                f"recipient (e.g. {shared.address}: {', '.join(shared.identities)})\n",
                style="bold",
            )
        self.query_one("#import-summary", Static).update(text)
        table = self.query_one("#import-changes", DataTable)
        table.clear()
        # The first rows of each kind, in file order (a big file's plan holds
        # hundreds of thousands; the table shows PREVIEW_ROWS).
        first = PREVIEW_ROWS
        rows = [(p.line, p.identity, "new profile") for p in plan.new_profiles[:first]]
        rows += [
            (u.line, u.identity, ", ".join(f"{c.column}: {c.old!r} → {c.new!r}" for c in u.changes))
            for u in plan.updated_profiles[:first]
        ]
        rows += [
            (
                c.line,
                c.identity,
                f"{c.group_name or 'all email'}: {c.old or 'never set'} → {c.new}"
                + (" (overwrites an unsubscribe)" if c.overwrites_unsubscribe else ""),
            )
            for c in plan.state_changes[:first]
        ]
        rows += [
            (k.line, k.identity, f"{k.group_name or 'all email'}: kept unsubscribed")
            for k in plan.kept_unsubscribed[:first]
        ]
        rows.sort(key=lambda r: r[0])
        total_rows = (
            len(plan.new_profiles)
            + len(plan.updated_profiles)
            + len(plan.state_changes)
            + len(plan.kept_unsubscribed)
        )
        for line, identity, change in rows[:PREVIEW_ROWS]:
            table.add_row(str(line), Text(identity), Text(change))
        if total_rows > PREVIEW_ROWS:
            table.add_row("…", Text(f"and {total_rows - PREVIEW_ROWS:,} more"), "")
        nothing = not (plan.new_profiles or plan.updated_profiles or plan.state_changes)
        self._show("preview", None if nothing else "Import (ctrl+s)")
        if nothing:
            self.query_one("#import-stage", Static).update(
                "Nothing to import: the store already says all of this."
            )

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#import-progress").display = False
        self.query_one("#import-stage", Static).update("")
        self._cancel.clear()
        if not message.problems:
            self._show("file", "Preview (ctrl+s)")
            self._error(message.message)
            return
        self.query_one("#import-problems-title", Static).update(Content(message.message))
        table = self.query_one("#import-problem-list", DataTable)
        table.clear()
        for where, problem in message.problems:
            table.add_row(Text(where), Text(problem))
        self._show("problems", "Choose another file (ctrl+s)")

    @on(Imported)
    def _imported(self, message: Imported) -> None:
        self.dismiss(message.summary)
