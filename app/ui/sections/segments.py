"""The Segments section: saved segments on the left, the builder
(app.ui.widgets.segment_builder) on the right.

The section keeps which saved segment is open, loads the list (each with its
count) and the builder's choices (groups, property keys), and saves, renames,
duplicates, deletes and exports; the builder counts the rule as it is edited.
"""

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from app.core import actors, groups, segments
from app.core.errors import SubgroupsError
from app.core.groups import clean_name
from app.core.segment_index import BuildCancelled
from app.core.segment_rules import SegmentRule
from app.ui.messages import GroupRow, StoreChanged
from app.ui.sections import keys
from app.ui.sections.base import Section
from app.ui.widgets.columns import cut, fit_widths, natural_widths, room, set_columns
from app.ui.widgets.segment_builder import SegmentBuilder

SAVED_COLUMNS = ("Name", "Count", "Changed")


@dataclass(frozen=True)
class SavedRow:
    id: int
    name: str
    rule: SegmentRule
    count: int | None
    updated: str


class SegmentsSection(Section):
    """Section 3: find people by their subscription groups and properties."""

    MAIN_WIDGET = "#segments-table"
    BINDINGS = keys.SEGMENTS

    @dataclass
    class GroupsLoaded(Message):
        groups: list[GroupRow]
        keys: list[str]

    @dataclass
    class SavedLoaded(Message):
        rows: list[SavedRow]

    @dataclass
    class Done(Message):
        text: str
        error: bool = False
        # The segment to show afterwards (None: a new, empty one).
        open_id: int | None = None
        open_name: str = ""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.saved: list[SavedRow] = []
        self.segment_id: int | None = None
        self.segment_name = ""
        self.active = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="segments-body"):
            with Vertical(id="segments-saved"):
                yield Static("Saved segments", classes="subtitle")
                yield DataTable(id="segments-table", cursor_type="row", zebra_stripes=True)
            yield SegmentBuilder(id="segment-builder")

    def on_mount(self) -> None:
        self.query_one("#segments-table", DataTable).add_columns(*SAVED_COLUMNS)

    def activate(self) -> None:
        """The section is shown for the first time: load and count now.

        Not at start-up: on a big store the first count builds the segment
        index, work that would compete with the console's first paint.
        """
        if self.active:
            self.catch_up()
            return
        self.active = True
        self.builder.show_counting()
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
        self.builder.take_choices(message.groups, message.keys)

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

    def _cancelled(self) -> bool:
        """Is the console quitting? (Then a long index build stops.)"""
        return self.subgroups.closing.is_set()

    def fit_columns(self, *, changed: bool) -> None:
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
        set_columns(table, SAVED_COLUMNS, widths)
        for row, (name, count, updated) in zip(self.saved, cells, strict=True):
            table.add_row(cut(name), Text(count, justify="right"), updated, key=str(row.id))
        if self.segment_id is not None and str(self.segment_id) in table.rows:
            table.move_cursor(row=table.get_row_index(str(self.segment_id)))

    @on(DataTable.RowSelected, "#segments-table")
    def _open_saved(self, event: DataTable.RowSelected) -> None:
        row = next((r for r in self.saved if str(r.id) == event.row_key.value), None)
        if row is not None:
            self.segment_id, self.segment_name = row.id, row.name
            self.builder.show_title(row.name)
            self.builder.set_rule(row.rule)

    # --- the builder ------------------------------------------------------------

    @property
    def builder(self) -> SegmentBuilder:
        return self.query_one(SegmentBuilder)

    async def action_add_groups(self) -> None:
        await self.builder.add_groups()

    async def action_add_property(self) -> None:
        await self.builder.add_property()

    async def action_add_email(self) -> None:
        await self.builder.add_email()

    async def action_remove_clause(self) -> None:
        await self.builder.remove_clause()

    def action_new_segment(self) -> None:
        self.segment_id, self.segment_name = None, ""
        self.builder.start_new()

    # --- saving and the saved list ----------------------------------------------

    def action_save(self) -> None:
        from app.ui.modals.prompt import PromptModal

        rule, problems = self.builder.current_rule()
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
                    actor=actors.actor_name(),
                    segment_id=self.segment_id,
                )
            self.post_message(
                self.Done(f"Saved segment {seg.name!r}.", open_id=seg.id, open_name=seg.name)
            )
        except SubgroupsError as exc:
            self.post_message(self.Done(exc.message, error=True))

    def action_rename(self) -> None:
        from app.ui.modals.prompt import PromptModal

        if self.segment_id is None:
            self.notify("Open or save a segment first.", severity="warning")
            return
        segment_id = self.segment_id

        def rename(name: str | None) -> None:
            if name:
                self._write("rename", segment_id, name)

        self.app.push_screen(
            PromptModal("Rename segment", "New name", self.segment_name, check=clean_name), rename
        )

    def action_duplicate(self) -> None:
        if self.segment_id is None:
            self.notify("Open or save a segment first.", severity="warning")
            return
        self._write("duplicate", self.segment_id)

    def action_delete(self) -> None:
        from app.ui.modals.confirm import ConfirmModal

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
        actor = actors.actor_name()
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
            self.builder.show_title(message.open_name)
        self.load_saved()

    # --- export -------------------------------------------------------------------

    def action_export(self) -> None:
        from app.ui.modals.prompt import PromptModal

        rule, problems = self.builder.current_rule()
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
            actors.require_host_files("exporting to a file")
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

    def reload(self) -> None:
        """The groups and property keys again, then the count (``take_choices``)."""
        self.load_groups()

    def store_changed(self, change: StoreChanged) -> None:
        """Once a burst of events is over: recount (and reload the groups when they
        changed); while hidden, when next shown."""
        if not self.active or not change.settled:
            return
        if not self.display:
            self.reload_when_shown()
        elif change.groups_changed:
            self.load_groups()
        else:
            self.builder.recount()
