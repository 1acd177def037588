"""The Groups section: every subscription group, the N / 50 gauge, a sparkline of
each group's net change over the last 30 days, and the create / edit / archive /
unarchive actions."""

from dataclasses import dataclass, field

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Label, Static

from app.core import actors, groups, insights, segments, text_rules
from app.core.errors import SubgroupsError
from app.core.groups import MAX_ACTIVE_GROUPS, GroupCounts
from app.core.ledger import EventRecord
from app.core.models import STATUS_ACTIVE
from app.core.segment_index import BuildCancelled
from app.ui.messages import GroupRow, StoreChanged
from app.ui.reads.group_counts import LiveCounts, moves_counts_only_by_one
from app.ui.sections import keys
from app.ui.sections.base import Section
from app.ui.widgets.charts import sparkline
from app.ui.widgets.columns import cut, fit_widths, natural_widths, room, set_columns
from app.ui.widgets.group_gauge import FILTERS, active_text, filter_text, gauge, groups_header

COLUMNS = (
    ("Name", "name"),
    ("Description", "description"),
    ("Policy", "policy"),
    ("Status", "status"),
    ("Landing", "landing"),
    ("30 days", "trend"),
    ("Subscribed", "subscribed"),
    ("Unsubscribed", "unsubscribed"),
)

# The net change sparkline: days and cells (three days a cell).
TREND_DAYS = 30
TREND_WIDTH = 10

# The Description column's width when there is room (its text ends in "…").
DESCRIPTION_WIDTH = 36


class GroupsSection(Section):
    """Section 1: subscription groups."""

    MAIN_WIDGET = "#groups-table"
    # Below this width the Description column gives way; the line under the table
    # still shows the selected group's description in full.
    WIDE = 110
    BINDINGS = keys.GROUPS

    status_filter: reactive[str] = reactive("active")

    @dataclass
    class Loaded(Message):
        groups: list[GroupRow]
        active: int

    @dataclass
    class CountsLoaded(Message):
        counts: dict[int, GroupCounts] = field(default_factory=dict)
        # The ledger id the counts include (later events are not in them).
        as_of: int = 0
        # Which reload read them (a superseded one's result is dropped).
        generation: int = 0

    @dataclass
    class TrendsLoaded(Message):
        # Group id -> net change (subscribes minus unsubscribes) per day, oldest first.
        net: dict[int, list[int]] = field(default_factory=dict)

    @dataclass
    class ActionDone(Message):
        text: str
        error: bool = False

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[GroupRow] = []
        self.counts: dict[int, GroupCounts] | None = None
        self.active: int | None = None
        # The counts as of a ledger id, moved by later events (None: not counted yet).
        self.live: LiveCounts | None = None
        # While a full count runs: the events seen meanwhile (applied to its result).
        self._held: list[EventRecord] | None = None
        self._generation = 0
        self.trends: dict[int, list[int]] = {}

    def compose(self) -> ComposeResult:
        # The console's first look at the store (if it had one) until the groups are read.
        first_look = self.subgroups.first_look_active
        self.set_class(first_look is not None and first_look >= MAX_ACTIVE_GROUPS, "-at-limit")
        yield from groups_header(first_look, status_filter=self.status_filter)
        yield DataTable(id="groups-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="groups-detail")

    def on_mount(self) -> None:
        self.check_width()
        self._fill_table()
        self._show_filter()
        self.reload()

    def fit_columns(self, *, changed: bool) -> None:
        # Refill after this resize's layout, so the columns fit the table's new width.
        self.call_after_refresh(self._fill_table)

    def _columns(self) -> list[tuple[str, str]]:
        """The columns for the width: below WIDE the Description column gives way."""
        return [(label, key) for label, key in COLUMNS if self.wide or key != "description"]

    # --- loading ---------------------------------------------------------

    def reload(self, counts_only: bool = False) -> None:
        """Read the groups (unless ``counts_only``), then count them in full."""
        self._held = []
        self._generation += 1
        self._read(counts_only, self._generation)

    @work(thread=True, exclusive=True, group="groups.load")
    def _read(self, counts_only: bool, generation: int) -> None:
        """Read the groups, then their counts (slower on big stores), off the UI thread."""
        store = self.subgroups.store
        if not counts_only:
            with store.read() as session:
                rows = [GroupRow.from_group(g) for g in groups.list_groups(session, status="all")]
                active = groups.active_count(session)
            self.post_message(self.Loaded(rows, active))
        self.post_message(self.TrendsLoaded(self._trends()))
        # From the audience index (a snapshot and the events after it), as of a ledger id.
        try:
            counts, as_of = segments.group_counts(store, cancelled=self.subgroups.closing.is_set)
        except BuildCancelled:
            return  # the console is quitting
        self.post_message(self.CountsLoaded(counts, as_of, generation))

    def _trends(self) -> dict[int, list[int]]:
        """Each group's net change per day, from the ledger's daily counts (a few rows per
        group and day, whatever the ledger's size). In a worker."""
        with self.subgroups.store.read() as session:
            _days, series = insights.group_series(session, days=TREND_DAYS)
        return {s.group_id: s.net for s in series}

    @work(thread=True, exclusive=True, group="groups.trends")
    def _read_trends(self) -> None:
        self.post_message(self.TrendsLoaded(self._trends()))

    def action_reload(self) -> None:
        self.reload()

    def store_changed(self, change: StoreChanged) -> None:
        """State changes move the counts as they arrive; other changes (a group's, an
        import's) read the groups or the counts again once the burst is over."""
        followed = not (change.bulk or change.everything or change.groups_changed) and all(
            moves_counts_only_by_one(event) for event in change.events
        )
        if not followed:
            if change.settled:
                self.reload(counts_only=not change.groups_changed)
            return
        if change.settled:
            self._read_trends()  # the sparklines, once the burst is over
            return  # each batch moved the counts when it came
        if self._held is not None:
            self._held.extend(change.events)  # a full count is running: after it
        elif self.live is not None and self.live.apply(change.events, self._policies()):
            self._show_counts()

    def _policies(self) -> dict[int, str]:
        return {row.id: row.policy for row in self.rows}

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.rows = message.groups
        self.active = message.active
        self.query_one("#active-count", Label).update(active_text(message.active))
        self.query_one("#active-gauge", Static).update(gauge(message.active))
        self.set_class(message.active >= MAX_ACTIVE_GROUPS, "-at-limit")
        self._fill_table()

    @on(TrendsLoaded)
    def _trends_loaded(self, message: TrendsLoaded) -> None:
        self.trends = message.net
        table = self.query_one("#groups-table", DataTable)
        for row in self._visible_rows():
            if str(row.id) in table.rows:
                table.update_cell(str(row.id), "trend", self._trend_cell(row))

    def _trend_cell(self, row: GroupRow) -> Content:
        net = self.trends.get(row.id)
        return sparkline(net, TREND_WIDTH) if net is not None else Content("")

    @on(CountsLoaded)
    def _counts_loaded(self, message: CountsLoaded) -> None:
        if message.generation != self._generation:
            return  # a superseded count: the newer one is on its way
        self.live = LiveCounts(dict(message.counts), message.as_of)
        self.live.apply(self._held or [], self._policies())
        self._held = None
        self._show_counts()

    def _show_counts(self) -> None:
        assert self.live is not None
        self.counts = self.live.counts
        table = self.query_one("#groups-table", DataTable)
        for row in self._visible_rows():
            key = str(row.id)
            if key in table.rows:
                sub, unsub = self._count_cells(row)
                table.update_cell(key, "subscribed", sub)
                table.update_cell(key, "unsubscribed", unsub)

    def _visible_rows(self) -> list[GroupRow]:
        if self.status_filter == "all":
            return self.rows
        return [r for r in self.rows if r.status == self.status_filter]

    def _count_cells(self, row: GroupRow) -> tuple[Text, Text]:
        if self.counts is None or row.id not in self.counts:
            return Text("…", justify="right"), Text("…", justify="right")
        c = self.counts[row.id]
        return Text(f"{c.subscribed:,}", justify="right"), Text(
            f"{c.unsubscribed:,}", justify="right"
        )

    def _fill_table(self) -> None:
        """Fill the table, its columns fitted to its width: a long name or description
        ends in an ellipsis, and the counts stay on screen."""
        table = self.query_one("#groups-table", DataTable)
        selected = self.selected_group()
        columns = self._columns()
        keys = [key for _, key in columns]
        rows = []
        for row in self._visible_rows():
            sub, unsub = self._count_cells(row)
            by_key: dict[str, Text | Content] = {
                "name": cut(row.name),
                "description": cut(row.description),
                "policy": Text(row.policy),
                "status": Text(row.status, style="dim" if row.status != STATUS_ACTIVE else ""),
                "landing": Text("shown" if row.shown_on_landing_page else "hidden"),
                "trend": self._trend_cell(row),
                "subscribed": sub,
                "unsubscribed": unsub,
            }
            rows.append((row, [by_key[key] for key in keys]))
        natural = natural_widths(
            [label for label, _ in columns], [[c.plain for c in cells] for _, cells in rows]
        )
        if "description" in keys:
            natural[keys.index("description")] = DESCRIPTION_WIDTH
        # The sparklines come in after the table (their own read): their room is kept
        # from the start, so the columns do not depend on which read finished first.
        trend = keys.index("trend")
        natural[trend] = max(natural[trend], TREND_WIDTH)
        flexible = [keys.index(key) for key in ("name", "description") if key in keys]
        # Counts of up to ten characters (9,999,999,999) fit their labels' width.
        widths = fit_widths(natural, room(table, len(rows)), flexible=flexible, minimum=12)
        set_columns(table, [label for label, _ in columns], widths, keys)
        for row, cells in rows:
            table.add_row(*cells, key=str(row.id))
        if selected is not None and str(selected.id) in table.rows:
            table.move_cursor(row=table.get_row_index(str(selected.id)))
        self._show_detail()

    @on(DataTable.RowHighlighted, "#groups-table")
    def _show_detail(self) -> None:
        """Under the table: the selected group's description and history, or what to do."""
        detail = self.query_one("#groups-detail", Static)
        group = self.selected_group()
        if group is None:
            empty = (
                "No archived groups."
                if self.status_filter == "archived"
                else "No groups here. Press n to create one."
            )
            detail.update(empty)
            return
        text = Text()
        text.append(group.name, style="bold")
        shown = "shown on" if group.shown_on_landing_page else "hidden from"
        text.append(f"  {group.policy}, {group.status}, {shown} the landing page")
        text.append(
            "\n" + (text_rules.shown(group.description) or "No description."),
            style="" if group.description else "dim",
        )
        detail.update(text)

    def selected_group(self) -> GroupRow | None:
        table = self.query_one("#groups-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((r for r in self.rows if str(r.id) == key), None)

    # --- filter ----------------------------------------------------------

    def action_cycle_filter(self) -> None:
        self.status_filter = FILTERS[(FILTERS.index(self.status_filter) + 1) % len(FILTERS)]

    def watch_status_filter(self) -> None:
        if self.is_mounted:
            self._show_filter()
            self._fill_table()

    def _show_filter(self) -> None:
        self.query_one("#groups-filter", Label).update(filter_text(self.status_filter))

    # --- actions ---------------------------------------------------------

    def action_new_group(self) -> None:
        from app.ui.modals.group_form import GroupFormModal

        self.app.push_screen(
            GroupFormModal(self.subgroups.store, active_count=self.active), self._form_closed
        )

    @on(DataTable.RowSelected, "#groups-table")
    def action_edit_group(self) -> None:
        from app.ui.modals.group_form import GroupFormModal

        group = self.selected_group()
        if group is None:
            self.notify("No group is selected.", severity="warning")
            return
        self.app.push_screen(GroupFormModal(self.subgroups.store, group), self._form_closed)

    def _form_closed(self, saved: GroupRow | None) -> None:
        if saved is not None:
            self.notify(f"Saved group {saved.name!r}.", markup=False)
            self.reload()

    def action_archive_group(self) -> None:
        from app.ui.modals.confirm import ConfirmModal

        group = self.selected_group()
        if group is None:
            self.notify("No group is selected.", severity="warning")
            return
        if group.status != STATUS_ACTIVE:
            self.notify(f"{group.name!r} is already archived.", severity="warning", markup=False)
            return
        unsubscribed = (
            self.counts[group.id].unsubscribed if self.counts and group.id in self.counts else None
        )
        kept = f"its {unsubscribed:,} opt-outs" if unsubscribed is not None else "its opt-outs"
        message = (
            f"Archive {group.name!r}? It frees a slot and leaves pickers and the landing page, "
            f"but {kept} stay enforced: campaigns that name it still skip those people."
        )

        def archive(yes: bool | None) -> None:
            if yes:
                self._change_status(group, archive=True)

        self.app.push_screen(
            ConfirmModal("Archive group", message, confirm_label="Archive"), archive
        )

    def action_unarchive_group(self) -> None:
        from app.ui.modals.confirm import ConfirmModal

        group = self.selected_group()
        if group is None:
            self.notify("No group is selected.", severity="warning")
            return
        if group.status == STATUS_ACTIVE:
            self.notify(f"{group.name!r} is already active.", severity="warning", markup=False)
            return
        message = f"Unarchive {group.name!r}? It takes one of the {MAX_ACTIVE_GROUPS} active slots."

        def unarchive(yes: bool | None) -> None:
            if yes:
                self._change_status(group, archive=False)

        self.app.push_screen(
            ConfirmModal("Unarchive group", message, confirm_label="Unarchive"), unarchive
        )

    @work(thread=True, group="groups.write")
    def _change_status(self, group: GroupRow, *, archive: bool) -> None:
        try:
            with self.subgroups.store.write() as session:
                service = groups.archive_group if archive else groups.unarchive_group
                service(
                    session=session, group_id=group.id, actor=actors.actor_name(), source="console"
                )
            verb = "Archived" if archive else "Unarchived"
            self.post_message(self.ActionDone(f"{verb} {group.name!r}."))
        except SubgroupsError as exc:
            self.post_message(self.ActionDone(exc.message, error=True))
        except Exception as exc:
            self.post_message(self.ActionDone(f"The store could not do this: {exc}", error=True))

    @on(ActionDone)
    def _action_done(self, message: ActionDone) -> None:
        if message.error:
            self.notify(message.text, title="Refused", severity="error", timeout=8, markup=False)
        else:
            self.notify(message.text, markup=False)
        self.reload()
