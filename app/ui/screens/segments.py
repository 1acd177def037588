"""The Segments section: saved segments on the left, the builder on the right.

The builder is a column of clause editors (Subscription Groups, profile
property, all email). Every change recounts in a worker: each clause's own
count, the total and the plain sentence. Results carry a generation number
and a late answer for an older rule is dropped, never shown over a newer one.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Static

from app.core import clock, groups, segments, text_rules
from app.core.errors import SubgroupsError
from app.core.groups import clean_name
from app.core.segment_index import BuildCancelled, SegmentCount
from app.core.segment_rules import EmailCondition, GroupsCondition, SegmentRule
from app.ui.messages import GroupRow
from app.ui.modals.confirm import ConfirmModal
from app.ui.modals.prompt import PromptModal
from app.ui.widgets.clauses import (
    ClauseChanged,
    ClauseEditor,
    EmailClause,
    GroupsClause,
    PropertyClause,
    editor_for,
)
from app.ui.widgets.columns import cut, fit_widths, natural_widths, room
from app.ui.widgets.columns import set_columns as fitted_columns

if TYPE_CHECKING:
    from app.ui.app import SubgroupsApp

PREVIEW_ROWS = 20
SAVED_COLUMNS = ("Name", "Count", "Changed")
PREVIEW_COLUMNS = ("Identity", "Name", "All email", "Subscribed to")


def set_columns(
    table: DataTable, labels: tuple[str, ...], rows: list[list[str]], cap: int = 40
) -> None:
    """Replace the table's columns with widths measured here from the rows.

    DataTable measures auto-width columns on idle; refilled quickly, it could
    keep a column at its header's width and cut every cell ("Mari…").
    """
    table.clear(columns=True)
    for i, label in enumerate(labels):
        width = max([len(label)] + [len(row[i]) for row in rows])
        table.add_column(label, width=min(width, cap))


@dataclass(frozen=True)
class SavedRow:
    id: int
    name: str
    rule: SegmentRule
    count: int | None
    updated: str


class SegmentsSection(Vertical, can_focus=False):
    """Section 3: find people by their subscription groups and properties."""

    SECTION_TITLE = "Segments"
    BINDINGS = [
        Binding(
            "ctrl+g",
            "add_groups",
            "+Groups",
            tooltip="Add a Subscription Groups condition",
            id="segments.add_groups",
        ),
        Binding(
            "ctrl+o",
            "add_property",
            "+Property",
            tooltip="Add a profile property condition",
            id="segments.add_property",
        ),
        Binding(
            "ctrl+b",
            "add_email",
            "+All email",
            tooltip="Add the all-email opt-out condition",
            id="segments.add_email",
        ),
        Binding(
            "ctrl+r",
            "remove_clause",
            "Remove",
            tooltip="Remove the condition that has focus",
            id="segments.remove_clause",
        ),
        Binding(
            "ctrl+s",
            "save",
            "Save",
            tooltip="Save the segment (asks for a name the first time)",
            id="segments.save",
        ),
        Binding(
            "ctrl+n", "new_segment", "New", tooltip="Start a new, empty segment", id="segments.new"
        ),
        Binding(
            "ctrl+t",
            "rename",
            "Rename",
            tooltip="Rename the open segment",
            show=False,
            id="segments.rename",
        ),
        Binding(
            "ctrl+y",
            "duplicate",
            "Duplicate",
            tooltip="Save a copy of the open segment",
            show=False,
            id="segments.duplicate",
        ),
        Binding(
            "ctrl+x",
            "delete",
            "Delete",
            tooltip="Delete the open segment (asks first)",
            show=False,
            id="segments.delete",
        ),
        Binding(
            "ctrl+w",
            "export",
            "Export",
            tooltip="Export the members to a CSV file",
            show=False,
            id="segments.export",
        ),
    ]

    @dataclass
    class GroupsLoaded(Message):
        groups: list[GroupRow]
        keys: list[str]

    @dataclass
    class SavedLoaded(Message):
        rows: list[SavedRow]

    @dataclass
    class Counted(Message):
        generation: int
        result: SegmentCount | None
        sentence: str
        error: str | None = None

    @dataclass
    class Previewed(Message):
        generation: int
        members: list[segments.Member]

    @dataclass
    class Done(Message):
        text: str
        error: bool = False
        # The segment to show afterwards (None: a new, empty one).
        open_id: int | None = None
        open_name: str = ""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.groups: list[GroupRow] = []
        self.keys: list[str] = []
        self.saved: list[SavedRow] = []
        self.segment_id: int | None = None
        self.segment_name = ""
        self.generation = 0
        self._recount_timer: Timer | None = None
        self.active = False

    @property
    def subgroups(self) -> "SubgroupsApp":
        return cast("SubgroupsApp", self.app)

    def compose(self) -> ComposeResult:
        with Horizontal(id="segments-body"):
            with Vertical(id="segments-saved"):
                yield Static("Saved segments", classes="subtitle")
                yield DataTable(id="segments-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="segment-builder"):
                yield Static("", id="segment-title")
                yield Static("", id="segment-sentence")
                yield Static("", id="segment-total")
                yield VerticalScroll(id="segment-clauses")
                yield Static("Members", classes="subtitle", id="segment-members-title")
                yield DataTable(id="segment-preview", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#segments-table", DataTable).add_columns(*SAVED_COLUMNS)
        self.query_one("#segment-preview", DataTable).add_columns(*PREVIEW_COLUMNS)
        self._show_title()

    def activate(self) -> None:
        """The section is shown for the first time: load and count now.

        Not at start-up: on a big store the first count builds the segment
        index, work that would compete with the console's first paint.
        """
        if self.active:
            return
        self.active = True
        self.query_one("#segment-total", Static).update(
            Content("Counting… (the first count reads the whole store)")
        )
        self.load_groups()
        self.load_saved()

    # --- loading ------------------------------------------------------------

    @work(thread=True, exclusive=True, group="segments.groups")
    def load_groups(self) -> None:
        with self.subgroups.store.read() as session:
            rows = [GroupRow.from_group(g) for g in groups.list_groups(session, status="all")]
            keys = segments.property_keys(session)
        self.post_message(self.GroupsLoaded(rows, keys))

    @on(GroupsLoaded)
    def _groups_loaded(self, message: GroupsLoaded) -> None:
        first = not self.groups
        self.groups, self.keys = message.groups, message.keys
        if first and not self.query(ClauseEditor):
            self._set_rule(SegmentRule((GroupsCondition(),)))
        else:
            self.recount()

    @work(thread=True, exclusive=True, group="segments.saved")
    def load_saved(self) -> None:
        store = self.subgroups.store
        with store.read() as session:
            found = segments.list_segments(session)
        rows = []
        for seg in found:
            assert seg.id is not None
            try:
                rule = segments.segment_rule(seg)
                total: int | None = segments.count(store, rule, cancelled=self._cancelled).total
            except SubgroupsError:
                rule, total = SegmentRule(), None
            except BuildCancelled:
                return
            rows.append(
                SavedRow(
                    seg.id,
                    seg.name,
                    rule,
                    total,
                    seg.updated_at.astimezone().strftime("%Y-%m-%d %H:%M"),
                )
            )
        self.post_message(self.SavedLoaded(rows))

    @on(SavedLoaded)
    def _saved_loaded(self, message: SavedLoaded) -> None:
        self.saved = message.rows
        self._show_saved()

    def on_resize(self) -> None:
        # Shown for the first time, or the terminal resized: fit the list again.
        self.call_after_refresh(self._show_saved)

    def _show_saved(self) -> None:
        """The saved segments, columns fitted: a long name ends in "…" so Count shows
        (Changed may run off to the right)."""
        table = self.query_one("#segments-table", DataTable)
        cells = [
            [r.name, "—" if r.count is None else f"{r.count:,}", r.updated] for r in self.saved
        ]
        natural = natural_widths(SAVED_COLUMNS, cells)
        natural[0] = min(natural[0], 28)
        widths = fit_widths(natural, room(table, len(cells)), flexible=(0,), keep=1, minimum=8)
        fitted_columns(table, SAVED_COLUMNS, widths)
        for row, (name, count, updated) in zip(self.saved, cells, strict=True):
            table.add_row(cut(name), Text(count, justify="right"), updated, key=str(row.id))
        if self.segment_id is not None and str(self.segment_id) in table.rows:
            table.move_cursor(row=table.get_row_index(str(self.segment_id)))

    @on(DataTable.RowSelected, "#segments-table")
    def _open_saved(self, event: DataTable.RowSelected) -> None:
        row = next((r for r in self.saved if str(r.id) == event.row_key.value), None)
        if row is not None:
            self.segment_id, self.segment_name = row.id, row.name
            self._show_title()
            self._set_rule(row.rule)

    # --- the builder ------------------------------------------------------------

    def _show_title(self) -> None:
        title = self.query_one("#segment-title", Static)
        if self.segment_id is None:
            title.update(Content("New segment (not saved) · ctrl+s saves"))
        else:
            title.update(Content.assemble(("Segment: ", "dim"), (self.segment_name, "bold")))

    def _set_rule(self, rule: SegmentRule) -> None:
        container = self.query_one("#segment-clauses", VerticalScroll)
        container.remove_children()
        container.mount_all([editor_for(c, self.groups, self.keys) for c in rule.conditions])
        self.call_after_refresh(self.recount)

    def _editors(self) -> list[ClauseEditor]:
        return list(self.query_one("#segment-clauses").query_children(ClauseEditor))

    def current_rule(self) -> tuple[SegmentRule, list[str | None]]:
        """The rule the editors show, and per editor the reason it is incomplete (or None)."""
        conditions = []
        problems: list[str | None] = []
        for editor in self._editors():
            try:
                conditions.append(editor.condition())
                problems.append(None)
            except SubgroupsError as exc:
                problems.append(exc.message)
        return SegmentRule(tuple(conditions)), problems

    @on(ClauseChanged)
    def _clause_changed(self) -> None:
        # Toggling fast sends a burst: count once the keys pause a moment.
        if self._recount_timer is not None:
            self._recount_timer.stop()
        self._recount_timer = self.set_timer(0.08, self.recount)

    def recount(self) -> None:
        self.generation += 1
        rule, problems = self.current_rule()
        for editor, problem in zip(self._editors(), problems, strict=True):
            if problem:
                editor.show_count(problem, error=True)
        if any(problems):
            self.query_one("#segment-total", Static).update(
                Content("Finish the highlighted condition to count.")
            )
            return
        self._count(self.generation, rule)

    @work(thread=True, exclusive=True, group="segments.count")
    def _count(self, generation: int, rule: SegmentRule) -> None:
        store = self.subgroups.store
        try:
            result = segments.count(store, rule, cancelled=self._cancelled)
            with store.read() as session:
                sentence = segments.sentence(session, rule)
            self.post_message(self.Counted(generation, result, sentence))
        except SubgroupsError as exc:
            self.post_message(self.Counted(generation, None, "", exc.message))
            return
        except BuildCancelled:
            return
        self._preview(generation, rule)

    def _cancelled(self) -> bool:
        """Is the console quitting? (Then a long index build stops.)

        Not the worker's own flag: a newer count cancels an older worker, and
        throwing away a half-done build would only start it again.
        """
        return self.subgroups.closing.is_set()

    def _preview(self, generation: int, rule: SegmentRule) -> None:
        found = segments.members(
            self.subgroups.store, rule, limit=PREVIEW_ROWS, cancelled=self._cancelled
        )
        self.post_message(self.Previewed(generation, found))

    @on(Counted)
    def _counted(self, message: Counted) -> None:
        if message.generation != self.generation:
            return  # an older rule's answer: a newer count is on its way
        total = self.query_one("#segment-total", Static)
        if message.result is None:
            total.update(Content(message.error or "Cannot count this rule."))
            return
        result = message.result
        shown = [
            editor.show_count(f"{n:,} people")
            for editor, n in zip(self._editors(), result.clauses, strict=False)
        ]
        if not all(shown):
            # A clause was still mounting and could not show its count: count again.
            self.set_timer(0.05, self.recount)
        share = f" ({result.total / result.profiles:.1%})" if result.profiles else ""
        total.update(
            Content.assemble(
                ("Total: ", "bold"),
                (f"{result.total:,}", "bold"),
                f" of {result.profiles:,} profiles{share}",
            )
        )
        self.query_one("#segment-sentence", Static).update(Content(message.sentence))
        # The sentence may have grown a line and the conditions' view shrunk: keep
        # the condition being edited in view.
        self.call_after_refresh(self._keep_focused_editor_in_view)

    def _keep_focused_editor_in_view(self) -> None:
        focused = self.screen.focused
        editor = next(
            (e for e in self._editors() if focused is not None and focused in e.walk_children()),
            None,
        )
        if editor is None or focused is None:
            return
        scroll = self.query_one("#segment-clauses", VerticalScroll)
        # All of it when it fits, else the control that has the focus.
        fits = editor.outer_size.height <= scroll.scrollable_content_region.height
        scroll.scroll_to_widget(editor if fits else focused, animate=False)

    @on(Previewed)
    def _previewed(self, message: Previewed) -> None:
        if message.generation != self.generation:
            return
        table = self.query_one("#segment-preview", DataTable)
        rows = []
        for member in message.members:
            subscribed = [name for name, state in member.states if state == "subscribed"]
            rows.append(
                [
                    text_rules.shown(member.identity),
                    text_rules.shown(member.name),
                    member.all_email,
                    f"{len(subscribed)}: " + ", ".join(subscribed),
                ]
            )
        set_columns(table, PREVIEW_COLUMNS, rows, cap=60)
        for identity, name, all_email, groups_text in rows:
            table.add_row(
                Text(identity),
                Text(name),
                all_email,
                Text(
                    groups_text,
                    no_wrap=True,
                    overflow="ellipsis",
                ),
            )

    async def _add(self, editor: ClauseEditor) -> None:
        # Once mounted (its controls exist) and laid out (it has a place to scroll to),
        # the new condition gets the focus and is scrolled to the top of the view.
        await self.query_one("#segment-clauses", VerticalScroll).mount(editor)
        self.call_after_refresh(self._focus_editor, editor)
        self.call_after_refresh(self.recount)

    def _focus_editor(self, editor: ClauseEditor) -> None:
        focusable = editor.query("Select, Input, SelectionList")
        if focusable:
            focusable.first().focus(scroll_visible=False)
        self.query_one("#segment-clauses", VerticalScroll).scroll_to_widget(
            editor, animate=False, top=True
        )

    async def action_add_groups(self) -> None:
        await self._add(GroupsClause(self.groups))

    async def action_add_property(self) -> None:
        await self._add(PropertyClause(keys=self.keys))

    async def action_add_email(self) -> None:
        await self._add(EmailClause(EmailCondition(state="unsubscribed")))

    async def action_remove_clause(self) -> None:
        focused = self.screen.focused
        editor = next(
            (e for e in self._editors() if focused is not None and focused in e.walk_children()),
            None,
        )
        if editor is None:
            self.notify(
                "Move into a condition first (tab), then ctrl+r removes it.", severity="warning"
            )
            return
        await editor.remove()
        self.recount()

    def action_new_segment(self) -> None:
        self.segment_id, self.segment_name = None, ""
        self._show_title()
        self._set_rule(SegmentRule((GroupsCondition(),)))

    # --- saving and the saved list ----------------------------------------------

    def action_save(self) -> None:
        rule, problems = self.current_rule()
        if any(problems):
            self.notify("Finish or remove the highlighted condition first.", severity="warning")
            return
        if self.segment_id is None:

            def save_as(name: str | None) -> None:
                if name:
                    self._save(name, rule)

            self.app.push_screen(
                PromptModal("Save segment", "Name (1-64 characters, unique)", check=clean_name),
                save_as,
            )
        else:
            self._save(self.segment_name, rule)

    @work(thread=True, group="segments.write")
    def _save(self, name: str, rule: SegmentRule) -> None:
        try:
            with self.subgroups.store.write() as session:
                seg = segments.save_segment(
                    session=session,
                    name=name,
                    rule=rule,
                    actor=clock.os_user(),
                    segment_id=self.segment_id,
                )
            self.post_message(
                self.Done(f"Saved segment {seg.name!r}.", open_id=seg.id, open_name=seg.name)
            )
        except SubgroupsError as exc:
            self.post_message(self.Done(exc.message, error=True))

    def action_rename(self) -> None:
        if self.segment_id is None:
            self.notify("Open or save a segment first.", severity="warning")
            return
        segment_id = self.segment_id

        def rename(name: str | None) -> None:
            if name:
                self._write("rename", segment_id, name)

        self.app.push_screen(
            PromptModal("Rename segment", "New name", self.segment_name, check=clean_name),
            rename,
        )

    def action_duplicate(self) -> None:
        if self.segment_id is None:
            self.notify("Open or save a segment first.", severity="warning")
            return
        self._write("duplicate", self.segment_id)

    def action_delete(self) -> None:
        if self.segment_id is None:
            self.notify("Open a saved segment first.", severity="warning")
            return
        segment_id, name = self.segment_id, self.segment_name

        def delete(yes: bool | None) -> None:
            if yes:
                self._write("delete", segment_id)

        self.app.push_screen(
            ConfirmModal(
                "Delete segment",
                f"Delete the saved segment {name!r}? Nobody's subscriptions change.",
                confirm_label="Delete",
            ),
            delete,
        )

    @work(thread=True, group="segments.write")
    def _write(self, what: str, segment_id: int, name: str | None = None) -> None:
        actor = clock.os_user()
        try:
            with self.subgroups.store.write() as session:
                if what == "rename":
                    seg = segments.rename_segment(
                        session=session, segment_id=segment_id, name=name or "", actor=actor
                    )
                    self.post_message(
                        self.Done(f"Renamed to {seg.name!r}.", open_id=seg.id, open_name=seg.name)
                    )
                elif what == "duplicate":
                    seg = segments.duplicate_segment(
                        session=session, segment_id=segment_id, actor=actor
                    )
                    self.post_message(
                        self.Done(
                            f"Saved a copy: {seg.name!r}.", open_id=seg.id, open_name=seg.name
                        )
                    )
                else:
                    gone = segments.delete_segment(
                        session=session, segment_id=segment_id, actor=actor
                    )
                    self.post_message(self.Done(f"Deleted segment {gone!r}.", open_id=None))
        except SubgroupsError as exc:
            self.post_message(self.Done(exc.message, error=True))

    @on(Done)
    def _done(self, message: Done) -> None:
        if message.error:
            self.notify(message.text, title="Refused", severity="error", markup=False)
            return
        self.notify(message.text, markup=False)
        if message.open_id is None:
            self.action_new_segment()
        else:
            self.segment_id, self.segment_name = message.open_id, message.open_name
            self._show_title()
        self.load_saved()

    # --- export -------------------------------------------------------------------

    def action_export(self) -> None:
        rule, problems = self.current_rule()
        if any(problems):
            self.notify("Finish or remove the highlighted condition first.", severity="warning")
            return
        stem = (self.segment_name or "segment").replace("/", "-").replace(" ", "-").lower()
        default = str(Path.cwd() / f"{stem}.csv")

        def export(path: str | None) -> None:
            if path:
                self._export(path, rule)

        self.app.push_screen(
            PromptModal("Export members", "CSV file to write", default, confirm_label="Export"),
            export,
        )

    @work(thread=True, group="segments.export")
    def _export(self, path: str, rule: SegmentRule) -> None:
        from app.core import csv_io

        store = self.subgroups.store
        try:
            identities = segments.member_identities(store, rule)
            target = Path(path).expanduser()
            with target.open("w", encoding="utf-8", newline="") as fh, store.read() as session:
                written = csv_io.export_profiles(session=session, dest=fh, identities=identities)
            self.post_message(self.Done(f"Exported {written:,} members to {target}."))
        except OSError as exc:
            self.post_message(self.Done(f"Cannot write {path}: {exc.strerror}", error=True))
        except SubgroupsError as exc:
            self.post_message(self.Done(exc.message, error=True))

    # --- live updates -----------------------------------------------------------

    def store_changed(self, *, groups_changed: bool) -> None:
        """New ledger events: recount (and reload groups when they changed)."""
        if not self.active:
            return
        if groups_changed:
            self.load_groups()
        else:
            self.recount()
