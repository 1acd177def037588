"""The Profiles section: find a person, see each group's effective state and
where it came from, read their ledger history, change a state with a reason."""

from dataclasses import dataclass

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from app.core import ledger, profile_history, profiles, text_rules
from app.core.errors import SubgroupsError
from app.core.models import STATUS_ACTIVE, UNSUBSCRIBED
from app.core.profiles import ProfileView
from app.ui.messages import StoreChanged
from app.ui.sections import keys
from app.ui.sections.base import Section
from app.ui.widgets.columns import cut, fit_widths, natural_widths, room, set_columns

HISTORY_COLUMNS = ("When", "Event", "Detail")
RESULT_COLUMNS = ("Identity", "Name", "All email")
GROUP_COLUMNS = ("Group", "Effective", "Stored", "Where from")


class GroupsTable(DataTable):  # type: ignore[type-arg]
    """The detail's groups table: it tells the section when its size changes. Its height
    follows its rows (height auto), but only once the table has measured them (on its
    idle) and the screen has laid them out: the first fit, made when the rows are added,
    sees the height of the table before them."""

    @dataclass
    class Resized(Message):
        size: Size

    @on(events.Resize)
    def _resized(self, event: events.Resize) -> None:
        self.post_message(self.Resized(event.size))


@dataclass(frozen=True)
class ProfileHit:
    identity: str
    email: str
    name: str
    all_email: str


class ProfilesSection(Section):
    """Section 2: profiles."""

    MAIN_WIDGET = "#profiles-table"
    BINDINGS = keys.PROFILES

    @dataclass
    class Found(Message):
        query: str
        hits: list[ProfileHit]
        total: int
        generation: int = 0

    @dataclass
    class Shown(Message):
        view: ProfileView | None
        error: str | None = None

    @dataclass
    class PastShown(Message):
        """The shown person as of one of their events (``[`` and ``]`` step through them)."""

        past: profile_history.ProfileHistory | None
        error: str | None = None

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: ProfileView | None = None
        # The results shown (None before the first search).
        self._hits: list[ProfileHit] | None = None
        self._search_timer: Timer | None = None
        self._search_generation = 0  # the newest search; older results are dropped
        # The identity most recently asked for: older reads that finish later are dropped.
        self._requested: str | None = None
        # Stepping back in time: the last event shown (0: before any), None: now.
        self._until: int | None = None
        # The size of the groups table its columns were last fitted to (None: not yet).
        self.groups_fitted_to: Size | None = None

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="Search identity, email or name (/)", id="profile-search", compact=True
        )
        with Horizontal(id="profiles-body"):
            with Vertical(id="profiles-results"):
                yield Static("", id="profiles-found")
                yield DataTable(id="profiles-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="profile-detail"):
                yield Static("Select a profile to see its subscriptions.", id="profile-summary")
                yield GroupsTable(id="profile-groups", cursor_type="row")
                yield Static("History", classes="subtitle")
                yield DataTable(id="profile-history", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#profiles-table", DataTable).add_columns(*RESULT_COLUMNS)
        self.query_one("#profile-groups", DataTable).add_columns(*GROUP_COLUMNS)
        self.query_one("#profile-history", DataTable).add_columns(*HISTORY_COLUMNS)
        self.search("")

    def fit_columns(self, *, changed: bool) -> None:
        self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        if self._hits is not None:
            self._fill_results(self._hits)
        if self.view is not None:
            self._fill_groups(self.view)

    @on(GroupsTable.Resized)
    def _groups_resized(self, message: GroupsTable.Resized) -> None:
        # Whether the rows need a scrollbar's room is judged by the table's height: fit
        # again whenever the table's size is not the one its columns were fitted to (its
        # rows laid out, the terminal resized), however that layout and the fill interleave.
        message.stop()
        table = self.query_one("#profile-groups", DataTable)
        if self.view is not None and self.groups_fitted_to != table.size:
            self._fill_groups(self.view)

    # --- search ----------------------------------------------------------

    def action_focus_search(self) -> None:
        self.query_one("#profile-search", Input).focus()

    @on(Input.Changed, "#profile-search")
    def _query_changed(self, event: Input.Changed) -> None:
        # Debounce typing: search once the keys pause.
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(0.2, lambda: self.search(event.value))

    @on(Input.Submitted, "#profile-search")
    def _query_submitted(self) -> None:
        self.query_one("#profiles-table", DataTable).focus()

    def search(self, query: str) -> None:
        """Search in a worker; only the newest search's results are shown (a superseded
        worker's thread still finishes its read and posts, and may post last)."""
        self._search_generation += 1
        self._search(query, self._search_generation)

    @work(thread=True, exclusive=True, group="profiles.search")
    def _search(self, query: str, generation: int) -> None:
        with self.subgroups.store.read() as session:
            found = profiles.search_profiles(session, query)
            total = profiles.count_profiles(session)
        hits = [ProfileHit(p.identity, p.email or "", p.name, p.all_email) for p in found]
        self.post_message(self.Found(query, hits, total, generation))

    def _fill_results(self, hits: list[ProfileHit]) -> None:
        """The results, columns fitted: long identities and names end in "…", All email shows."""
        table = self.query_one("#profiles-table", DataTable)
        row = table.cursor_row
        cells = [
            [text_rules.shown(hit.identity), text_rules.shown(hit.name), hit.all_email]
            for hit in hits
        ]
        widths = fit_widths(
            natural_widths(RESULT_COLUMNS, cells),
            room(table, len(cells)),
            flexible=(0, 1),
            # The identity keeps its label's width; the name gives way first.
            minimum={0: len(RESULT_COLUMNS[0]), 1: 6},
        )
        set_columns(table, RESULT_COLUMNS, widths)
        for hit in hits:
            all_email = Text(hit.all_email, style="bold" if hit.all_email == UNSUBSCRIBED else "")
            table.add_row(cut(hit.identity), cut(hit.name), all_email, key=hit.identity)
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))

    @on(Found)
    def _found(self, message: Found) -> None:
        if message.generation != self._search_generation:
            return  # a superseded search: the box now says something else
        table = self.query_one("#profiles-table", DataTable)
        self._hits = message.hits
        self._fill_results(message.hits)
        more = " (first 200)" if len(message.hits) >= profiles.SEARCH_LIMIT else ""
        what = f"matching {message.query!r}" if message.query.strip() else "in the store"
        self.query_one("#profiles-found", Static).update(
            Content(f"{len(message.hits):,}{more} of {message.total:,} profiles {what}")
        )
        if message.hits:
            # Keep the shown person if the search still finds them, else the first hit.
            identities = [hit.identity for hit in message.hits]
            keep = self.view is not None and self.view.identity in identities
            identity = self.view.identity if keep and self.view is not None else identities[0]
            table.move_cursor(row=identities.index(identity))
            self.show_profile(identity)
        else:
            self._requested = None
            self._shown(self.Shown(None, "No profile matches the search."))

    @on(DataTable.RowHighlighted, "#profiles-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value and (self.view is None or self.view.identity != event.row_key.value):
            self.show_profile(event.row_key.value)

    # --- one profile -----------------------------------------------------

    def show_profile(self, identity: str) -> None:
        """Show one person (read in a worker; only the latest request is shown)."""
        self._requested = identity
        self._until = None
        self._read_profile(identity)

    @work(thread=True, exclusive=True, group="profiles.show")
    def _read_profile(self, identity: str) -> None:
        try:
            with self.subgroups.store.read() as session:
                view = profiles.profile_view(session, identity, history_limit=100)
            self.post_message(self.Shown(view))
        except SubgroupsError as exc:
            self.post_message(self.Shown(None, exc.message))

    @on(Shown)
    def _shown(self, message: Shown) -> None:
        if message.view is not None and message.view.identity != self._requested:
            return  # a superseded read: a newer one is on its way
        summary = self.query_one("#profile-summary", Static)
        groups_table = self.query_one("#profile-groups", DataTable)
        history = self.query_one("#profile-history", DataTable)
        # Columns too: a DataTable's auto widths only grow, so the person shown before
        # would otherwise set this person's column widths.
        history.clear(columns=True)
        history.add_columns(*HISTORY_COLUMNS)
        self.view = message.view
        if message.view is None:
            groups_table.clear()
            summary.update(Content(message.error or "Select a profile to see its subscriptions."))
            return
        view = message.view
        # Stored text shows its control characters escaped (text_rules.shown).
        text = Text()
        text.append(text_rules.shown(view.identity), style="bold")
        if view.email and view.email != view.identity:
            text.append(f"  <{text_rules.shown(view.email)}>")
        if view.name:
            text.append(f"  {text_rules.shown(view.name)}")
        if view.properties:
            properties = ", ".join(f"{k}: {v}" for k, v in view.properties.items())
            text.append("\n" + text_rules.shown(properties), style="dim")
        text.append("\nAll email: ")
        text.append(view.all_email, style="bold")
        text.append(f" · {text_rules.shown(view.all_email_origin)}", style="dim")
        if view.all_email == UNSUBSCRIBED:
            text.append(
                "\nUnsubscribed from all email: no campaign reaches this person, "
                "whatever the groups say."
            )
        if not view.deliverable:
            text.append("\nUndeliverable address: ", style="bold")
            text.append("it bounced, so no campaign is sent to it.")
        if view.same_address:
            text.append("\nSame address as: ", style="bold")
            text.append(", ".join(view.same_address))
            text.append(" (one recipient: an opt-out under any counts for all)", style="dim")
        summary.update(text)
        # Fitted to the table's size now, and again when its size changes (_groups_resized).
        self._fill_groups(view)
        for ev in view.history:
            history.add_row(
                ev.ts.astimezone().strftime("%Y-%m-%d %H:%M"),
                Text(text_rules.shown(ev.name)),
                Text(text_rules.shown(ledger.summary(ev))),
            )

    def _fill_groups(self, view: ProfileView) -> None:
        """Each group's state, columns fitted to the pane: a long group name ends in "…"
        so the effective state stays on screen (Stored and Where from may run off to
        the right on a narrow terminal; the table scrolls)."""
        groups_table = self.query_one("#profile-groups", DataTable)
        cursor = groups_table.cursor_row
        rows = []
        for g in view.groups:
            archived = " (archived)" if g.group_status != STATUS_ACTIVE else ""
            rows.append(
                [
                    text_rules.shown(g.group_name) + archived,
                    g.effective,
                    g.stored or "—",
                    text_rules.shown(g.origin + (f" — {g.reason}" if g.reason else "")),
                ]
            )
        widths = fit_widths(
            natural_widths(GROUP_COLUMNS, rows),
            room(groups_table, len(rows)),
            flexible=(0,),
            keep=1,
            minimum=12,
        )
        set_columns(groups_table, GROUP_COLUMNS, widths)
        self.groups_fitted_to = groups_table.size
        for g, (_, effective, stored, origin) in zip(view.groups, rows, strict=True):
            name_cell = cut(g.group_name)
            if g.group_status != STATUS_ACTIVE:
                name_cell.append(" (archived)", style="dim")
            groups_table.add_row(
                name_cell,
                Text(effective, style="bold" if effective == UNSUBSCRIBED else ""),
                stored,
                Text(origin),
                key=str(g.group_id),
            )
        if groups_table.row_count:
            groups_table.move_cursor(row=min(cursor, groups_table.row_count - 1))

    def action_reload(self) -> None:
        self.search(self.query_one("#profile-search", Input).value)
        if self.view is not None:
            self.show_profile(self.view.identity)

    def store_changed(self, change: StoreChanged) -> None:
        """At once (not waiting for a burst to end): reload the shown profile when new
        events concern it, or any group changed (created, renamed, archived: from this
        console, the CLI or another process); search again when the whole store changed."""
        if change.everything:
            self.action_reload()
            return
        if change.settled or self.view is None:
            return
        groups_changed = any(name.startswith("Group ") for name in change.names)
        if groups_changed or self.view.identity in change.identities:
            self.show_profile(self.view.identity)

    # --- import -------------------------------------------------------------

    def action_import_csv(self) -> None:
        from app.ui.modals.import_csv import ImportModal

        self.app.push_screen(ImportModal(self.subgroups.store), self._imported)

    def _imported(self, summary: str | None) -> None:
        if summary is not None:
            self.notify(summary, title="Import done", timeout=10, markup=False)
            self.action_reload()

    # --- change a state ----------------------------------------------------

    def action_change_state(self) -> None:
        from app.ui.modals.change_state import ALL_EMAIL, ChangeStateModal, StateTarget

        view = self.view
        if view is None:
            self.notify("Select a profile first.", severity="warning")
            return
        targets = [StateTarget(ALL_EMAIL, "All email", view.all_email)]
        targets += [
            StateTarget(
                g.group_id,
                g.group_name + (" (archived)" if g.group_status != STATUS_ACTIVE else ""),
                g.effective,
            )
            for g in view.groups
        ]
        # The group in context: the row under the detail's cursor (the first group
        # until the user moves it), never all email, the most drastic choice.
        selected = view.groups[0].group_id if view.groups else ALL_EMAIL
        groups_table = self.query_one("#profile-groups", DataTable)
        if groups_table.row_count:
            row_key = groups_table.coordinate_to_cell_key(groups_table.cursor_coordinate).row_key
            if row_key.value is not None:
                selected = int(row_key.value)
        self.app.push_screen(
            ChangeStateModal(self.subgroups.store, view.identity, targets, selected), self._changed
        )

    def _changed(self, summary: str | None) -> None:
        if summary is not None:
            self.notify(summary, markup=False)
            if self.view is not None:
                self.show_profile(self.view.identity)

    # --- explain a campaign ---------------------------------------------------

    def action_explain_campaign(self) -> None:
        """Why the shown person gets a campaign or not: the campaign is chosen in the dialog."""
        from app.ui.modals.explain import ExplainModal

        if self.view is None:
            self.notify("Select a profile first.", severity="warning")
            return
        self.app.push_screen(ExplainModal(self.subgroups.store, identity=self.view.identity))

    # --- step back in time ------------------------------------------------------

    def action_step_back(self) -> None:
        """The shown person as they were before their latest (or the shown) event."""
        view = self.view
        if view is None:
            self.notify("Select a profile first.", severity="warning")
            return
        ids = sorted(event.id for event in view.history)
        if not ids or self._until == 0:
            self.notify("This is before the first event of this profile.", severity="warning")
            return
        earlier = ids[:-1] if self._until is None else [i for i in ids if i < self._until]
        self._step_to(view.identity, earlier[-1] if earlier else 0)

    def action_step_forward(self) -> None:
        """One event later; after the latest, the person as they are now."""
        view = self.view
        if view is None or self._until is None:
            self.notify("This is the profile as it is now.", severity="information")
            return
        later = [event.id for event in view.history if event.id > self._until]
        if len(later) <= 1:
            self.show_profile(view.identity)
            return
        self._step_to(view.identity, min(later))

    def _step_to(self, identity: str, until: int) -> None:
        self._until = until
        self._read_past(identity, until)

    @work(thread=True, exclusive=True, group="profiles.past")
    def _read_past(self, identity: str, until: int) -> None:
        try:
            with self.subgroups.store.read() as session:
                past = profile_history.profile_history(session, identity, until_event=until)
            self.post_message(self.PastShown(past))
        except SubgroupsError as exc:
            self.post_message(self.PastShown(None, exc.message))

    @on(PastShown)
    def _past_shown(self, message: PastShown) -> None:
        past = message.past
        if past is None or self.view is None or past.identity != self.view.identity:
            if message.error:
                self.notify(message.error, severity="error", markup=False)
            return
        last = past.events[-1] if past.events else None
        text = Text()
        text.append(text_rules.shown(past.identity), style="bold")
        when = "before any event" if last is None else f"just after event {last.id}"
        stamp = "" if last is None else f" ({last.ts.astimezone():%Y-%m-%d %H:%M})"
        text.append(f"\nAs it was {when}{stamp}", style="bold")
        text.append("  [ earlier · ] later", style="dim")
        text.append("\nAll email: ")
        text.append(str(past.all_email.stored), style="bold")
        self.query_one("#profile-summary", Static).update(text)
        groups_table = self.query_one("#profile-groups", DataTable)
        groups_table.clear()
        for state in past.groups:
            origin = "never set" if state.event is None else f"event {state.event.id}"
            groups_table.add_row(
                cut(state.group_name or ""),
                Text(state.effective, style="bold" if state.effective == UNSUBSCRIBED else ""),
                state.stored or "—",
                origin,
                key=str(state.group_id),
            )
        history = self.query_one("#profile-history", DataTable)
        history.clear()
        for ev in reversed(past.events):
            history.add_row(
                ev.ts.astimezone().strftime("%Y-%m-%d %H:%M"),
                Text(text_rules.shown(ev.name)),
                Text(text_rules.shown(ledger.summary(ev))),
            )

    # --- erase (owners) ----------------------------------------------------------

    def action_erase_profile(self) -> None:
        """Erase the shown person after a dialog that asks why (owners only)."""
        from app.ui.modals.erase_profile import EraseProfileModal

        if self.view is None:
            self.notify("Select a profile first.", severity="warning")
            return
        self.app.push_screen(
            EraseProfileModal(self.subgroups.store, self.view.identity), self._erased
        )

    def _erased(self, summary: str | None) -> None:
        if summary is not None:
            self.notify(summary, markup=False, timeout=10)
            self.action_reload()
