"""The Campaigns section: every campaign with its status, audience, reach, how
many messages went out and how many people unsubscribed through it.

The list shows at once; each row's reach is counted afterwards in a worker
("…" until known). n starts the wizard, enter or e opens a campaign in it (a
sent one read-only, at the review), s goes to the review to send, x explains
for a person, c cancels a campaign for good (asks first). The list follows
the ledger: Campaign events and unsubscribes from any process refresh it (a
hidden list when it is next shown).
"""

from dataclasses import dataclass
from functools import partial

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Static

from app.core import actors, campaigns, eligibility
from app.core.campaigns import CampaignRow
from app.core.errors import SubgroupsError
from app.ui.messages import StoreChanged
from app.ui.reads.campaigns import WizardData, load_wizard_data
from app.ui.screens.wizard_keys import DETAILS, REVIEW
from app.ui.sections import keys
from app.ui.sections.base import Section

COLUMNS = (
    ("Name", "name"),
    ("Status", "status"),
    ("Audience", "audience"),
    ("Reach", "reach"),
    ("Sent", "sent"),
    ("Unsubscribes", "unsubscribes"),
    ("Changed", "changed"),
)


class CampaignsSection(Section):
    """Section 4: email campaigns."""

    MAIN_WIDGET = "#campaigns-table"
    # Below this width the Changed column gives way (the line under the table has the date).
    WIDE = 100
    BINDINGS = keys.CAMPAIGNS

    @dataclass
    class Loaded(Message):
        generation: int
        rows: list[CampaignRow]

    @dataclass
    class ReachCounted(Message):
        generation: int
        campaign_id: int
        reach: int | None

    @dataclass
    class WizardReady(Message):
        data: WizardData
        step: int

    @dataclass
    class Done(Message):
        text: str
        error: bool = False

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[CampaignRow] = []
        self.reach: dict[int, int | None] = {}
        self.generation = 0
        self.active = False

    def compose(self) -> ComposeResult:
        yield Static("", id="campaigns-summary")
        yield DataTable(id="campaigns-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="campaigns-detail")

    def on_mount(self) -> None:
        self.check_width()
        self._set_columns()

    def fit_columns(self, *, changed: bool) -> None:
        if changed:
            self._set_columns()
            # Refill after this resize's layout, so the new columns size to their cells.
            self.call_after_refresh(self._fill_table)

    def _set_columns(self) -> None:
        """Build the columns for the width: below WIDE without Changed."""
        table = self.query_one("#campaigns-table", DataTable)
        table.clear(columns=True)
        for label, key in COLUMNS:
            if key != "changed" or self.wide:
                table.add_column(label, key=key)

    def activate(self) -> None:
        """The section is shown: load the first time (not at start-up), and again if
        campaigns or unsubscribes came while it was hidden."""
        if not self.active:
            self.active = True
            self.reload()
        else:
            self.catch_up()

    # --- loading -----------------------------------------------------------------------

    def reload(self) -> None:
        """Read the list again, then count each campaign's reach."""
        self.generation += 1
        self._load(self.generation)

    def action_reload(self) -> None:
        self.reload()

    def store_changed(self, change: StoreChanged) -> None:
        """Campaign events or unsubscribes arrived: refresh the list (once it was shown),
        once the burst is over; while hidden, when next shown (counting every reach
        again is work the shown section and the live log would wait for)."""
        if self.active and change.settled and change.campaigns_changed:
            self.reload_when_shown()

    @work(thread=True, exclusive=True, group="campaigns.load")
    def _load(self, generation: int) -> None:
        store = self.subgroups.store
        with store.read() as session:
            rows = campaigns.list_campaigns(session)
        self.post_message(self.Loaded(generation, rows))
        for row in rows:
            if row.status == campaigns.SENT:
                # Who it would reach now says nothing about a sent campaign (its Sent
                # column says who got it): "—", as `campaigns list` prints "-".
                self.post_message(self.ReachCounted(generation, row.id, None))
                continue
            try:
                with store.read() as session:
                    campaign = campaigns.get_campaign_by_id(session, row.id)
                reach: int | None = eligibility.reach(store, campaign).reach
            except SubgroupsError:
                reach = None  # a deleted segment …: the cell says so
            self.post_message(self.ReachCounted(generation, row.id, reach))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.generation != self.generation:
            return
        self.rows = message.rows
        self.reach = {k: v for k, v in self.reach.items() if any(r.id == k for r in self.rows)}
        self._fill_table()
        drafts = sum(1 for r in self.rows if r.status in campaigns.EDITABLE)
        sent = sum(1 for r in self.rows if r.status == campaigns.SENT)
        self.query_one("#campaigns-summary", Static).update(
            Content(
                f"{len(self.rows):,} campaign{'' if len(self.rows) == 1 else 's'} · "
                f"{drafts:,} to send · {sent:,} sent"
            )
            if self.rows
            else Content("No campaigns yet.")
        )
        self._show_detail()

    def _fill_table(self) -> None:
        table = self.query_one("#campaigns-table", DataTable)
        selected = self.selected_campaign()
        table.clear()
        for row in self.rows:
            cells: list[object] = [
                Text(row.name),
                Text(row.status, style="bold" if row.status in campaigns.EDITABLE else ""),
                Text(row.audience),
                self._reach_cell(row.id),
                Text(f"{row.sent:,}", justify="right"),
                Text(f"{row.unsubscribes:,}", justify="right"),
            ]
            if self.wide:
                cells.append(row.updated_at.astimezone().strftime("%Y-%m-%d %H:%M"))
            table.add_row(*cells, key=str(row.id))
        if selected is not None and str(selected.id) in table.rows:
            table.move_cursor(row=table.get_row_index(str(selected.id)))

    def _reach_cell(self, campaign_id: int) -> Text:
        if campaign_id not in self.reach:
            return Text("…", justify="right")
        reach = self.reach[campaign_id]
        return Text("—" if reach is None else f"{reach:,}", justify="right")

    @on(ReachCounted)
    def _reach_counted(self, message: ReachCounted) -> None:
        if message.generation != self.generation:
            return
        self.reach[message.campaign_id] = message.reach
        table = self.query_one("#campaigns-table", DataTable)
        key = str(message.campaign_id)
        if key in table.rows:
            # Widened to fit: a reach of 906,865 is longer than its header.
            table.update_cell(
                key, "reach", self._reach_cell(message.campaign_id), update_width=True
            )

    def selected_campaign(self) -> CampaignRow | None:
        table = self.query_one("#campaigns-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((r for r in self.rows if str(r.id) == key), None)

    @on(DataTable.RowHighlighted, "#campaigns-table")
    def _show_detail(self) -> None:
        detail = self.query_one("#campaigns-detail", Static)
        row = self.selected_campaign()
        if row is None:
            detail.update(Content("Press n to create a campaign."))
            return
        when = (
            f"sent {row.sent_at.astimezone():%Y-%m-%d %H:%M}"
            if row.sent_at
            else f"{row.status}, changed {row.updated_at.astimezone():%Y-%m-%d %H:%M}"
        )
        hint = {
            campaigns.DRAFT: "enter edits it, s reviews and sends it",
            campaigns.PAUSED: "s sends the rest (nobody gets it twice)",
            campaigns.SENDING: "s resumes an interrupted send",
        }.get(row.status, "enter shows it (read-only)")
        detail.update(
            Content.assemble(
                Content.styled(row.name, "bold"),
                f" · {when} · audience: ",
                row.audience,
                ("\n" + hint + "; x explains it for one person", "$foreground-muted"),
            )
        )

    # --- the wizard -----------------------------------------------------------------------

    def action_new_campaign(self) -> None:
        self._open(None, DETAILS)

    @on(DataTable.RowSelected, "#campaigns-table")
    def action_edit_campaign(self) -> None:
        row = self._need_selection()
        if row is not None:
            self._open(row.id, DETAILS)

    def action_send_campaign(self) -> None:
        row = self._need_selection()
        if row is None:
            return
        if row.status not in campaigns.SENDABLE:
            self.notify(
                f"{row.name!r} is {row.status}: nothing to send.", severity="warning", markup=False
            )
            return
        self._open(row.id, REVIEW)

    def _need_selection(self) -> CampaignRow | None:
        row = self.selected_campaign()
        if row is None:
            self.notify("No campaign is selected: n creates one.", severity="warning")
        return row

    @work(thread=True, exclusive=True, group="campaigns.open")
    def _open(self, campaign_id: int | None, step: int) -> None:
        try:
            data = load_wizard_data(self.subgroups.store, campaign_id)
        except SubgroupsError as exc:
            self.post_message(self.Done(exc.message, error=True))
            return
        self.post_message(self.WizardReady(data, step))

    @on(WizardReady)
    def _wizard_ready(self, message: WizardReady) -> None:
        from app.ui.screens.campaign_wizard import CampaignWizard

        wizard = CampaignWizard(
            self.subgroups.store,
            message.data,
            step=message.step,
            outbox_dir=self.subgroups.outbox_dir,
        )
        self.app.push_screen(wizard, self._wizard_closed)

    def _wizard_closed(self, campaign_id: int | None) -> None:
        self.reload()
        if campaign_id is not None:
            self.call_after_refresh(self._select, campaign_id)

    def _select(self, campaign_id: int) -> None:
        table = self.query_one("#campaigns-table", DataTable)
        if str(campaign_id) in table.rows:
            table.move_cursor(row=table.get_row_index(str(campaign_id)))

    # --- explain and cancel --------------------------------------------------------------------

    def action_explain(self) -> None:
        from app.ui.modals.explain import ExplainModal

        row = self._need_selection()
        if row is not None:
            self.app.push_screen(ExplainModal(self.subgroups.store, campaign_id=row.id))

    def action_cancel_campaign(self) -> None:
        from app.ui.modals.confirm import ConfirmModal

        row = self._need_selection()
        if row is None:
            return
        if row.status in (campaigns.SENT, campaigns.CANCELLED):
            self.notify(f"{row.name!r} is already {row.status}.", severity="warning", markup=False)
            return
        already = f" {row.sent:,} people already got it; the rest never will." if row.sent else ""
        self.app.push_screen(
            ConfirmModal(
                "Cancel campaign",
                f"Cancel {row.name!r} for good? It will never be sent.{already} "
                "It stays in the list as cancelled.",
                confirm_label="Cancel campaign",
            ),
            partial(self._cancel_confirmed, row),
        )

    def _cancel_confirmed(self, row: CampaignRow, yes: bool | None) -> None:
        if yes:
            self._cancel(row)

    @work(thread=True, group="campaigns.write")
    def _cancel(self, row: CampaignRow) -> None:
        try:
            with self.subgroups.store.write() as session:
                campaigns.set_status(
                    session=session,
                    campaign_id=row.id,
                    status=campaigns.CANCELLED,
                    actor=actors.actor_name(),
                    source="console",
                )
            self.post_message(self.Done(f"Cancelled {row.name!r}."))
        except SubgroupsError as exc:
            self.post_message(self.Done(exc.message, error=True))

    @on(Done)
    def _done(self, message: Done) -> None:
        if message.error:
            self.notify(message.text, title="Refused", severity="error", markup=False)
        else:
            self.notify(message.text, markup=False)
        self.reload()
