"""The explainer: for a campaign and a person, why they get it or not.

Each step of the eligibility chain with a mark (✓ passed, ✗ dropped them,
– not reached), its label and the detail (which group they left, when, from
where), then the verdict. Opened from the Campaigns list and the wizard's
review step (the campaign chosen, the person asked here) and from a profile
(the person chosen, the campaign picked here). Explaining reads the store in
a worker; a late answer for an earlier question is dropped.
"""

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from app.core import campaigns, explainer, text_rules
from app.core.errors import SubgroupsError
from app.core.explainer import Explanation
from app.core.store import Store

MARKS = {True: "✓", False: "✗", None: "–"}


@dataclass(frozen=True)
class CampaignChoice:
    """A campaign as the picker lists it."""

    id: int
    name: str
    status: str


class ExplainRow(Horizontal):
    """One step for one person: mark, label, detail (wraps)."""

    def __init__(self, step: explainer.ExplainStep) -> None:
        passed = {True: "-passed", False: "-failed", None: "-skipped"}[step.passed]
        super().__init__(classes=f"explain-row {passed}")
        self.step = step

    def compose(self) -> ComposeResult:
        yield Static(Content(MARKS[self.step.passed]), classes="explain-mark")
        yield Static(Content(self.step.label), classes="explain-label")
        yield Static(Content(self.step.detail), classes="explain-detail")


def verdict(explanation: Explanation) -> Content:
    """ "Verdict: Gets it: …" or "Verdict: Left out at …", the verdict's words coloured."""
    head, style = (
        ("Gets it", "bold $success") if explanation.eligible else ("Left out", "bold $error")
    )
    reason = explanation.reason
    # The reason starts with the verdict's words ("gets it: …", "left out at …"): colour them.
    rest = reason[len(head) :] if reason.lower().startswith(head.lower()) else f": {reason}"
    return Content.assemble(Content.styled("Verdict: ", "bold"), Content.styled(head, style), rest)


class ExplainModal(ModalScreen[None]):
    """Why a person gets a campaign or not. Enter explains; Escape closes."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="explain.close"),
        Binding("ctrl+s", "explain", "Explain", id="explain.explain"),
    ]

    @dataclass
    class CampaignsLoaded(Message):
        campaigns: list[CampaignChoice]

    @dataclass
    class Explained(Message):
        generation: int
        campaign: str
        explanation: Explanation | None
        error: str | None = None

    def __init__(self, store: Store, *, campaign_id: int | None = None, identity: str = "") -> None:
        super().__init__()
        self.store = store
        self.campaign_id = campaign_id
        self.identity = identity
        self.generation = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="explain-dialog", classes="dialog"):
            yield Static("Why does this person get the campaign, or not?", classes="dialog-title")
            with Horizontal(id="explain-question"):
                with Vertical(id="explain-campaign-field"):
                    yield Label("Campaign", classes="field-label")
                    yield Select[int](
                        [], prompt="Choose a campaign", id="explain-campaign", compact=True
                    )
                with Vertical(id="explain-identity-field"):
                    yield Label("Person (identity)", classes="field-label")
                    yield Input(
                        self.identity,
                        id="explain-identity",
                        placeholder="identity, then enter",
                        compact=True,
                    )
            yield Static("", id="explain-error", classes="field-error -empty")
            yield Static("", id="explain-heading")
            yield Vertical(id="explain-steps")
            yield Static("", id="explain-verdict")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Explain (enter)", variant="primary", id="explain", compact=True)
                yield Button("Close (esc)", id="close", compact=True)

    def on_mount(self) -> None:
        self._load_campaigns()
        if self.campaign_id is None:
            self.query_one("#explain-campaign", Select).focus()
        else:
            self.query_one("#explain-identity", Input).focus()

    # --- the question -----------------------------------------------------------

    @work(thread=True, exclusive=True, group="explain.campaigns")
    def _load_campaigns(self) -> None:
        with self.store.read() as session:
            rows = campaigns.list_campaigns(session)
        self.post_message(
            self.CampaignsLoaded([CampaignChoice(r.id, r.name, r.status) for r in rows])
        )

    @on(CampaignsLoaded)
    def _campaigns_loaded(self, message: CampaignsLoaded) -> None:
        select = self.query_one("#explain-campaign", Select)
        with self.prevent(Select.Changed):
            select.set_options(
                [(Content(f"{c.name} ({c.status})"), c.id) for c in message.campaigns]
            )
            if any(c.id == self.campaign_id for c in message.campaigns):
                select.value = self.campaign_id
        if not message.campaigns:
            self._error("No campaigns yet: create one in the Campaigns section (4, then n).")
        elif self.campaign_id is not None and self.identity.strip():
            self.action_explain()

    @on(Select.Changed, "#explain-campaign")
    def _campaign_changed(self, event: Select.Changed) -> None:
        self.campaign_id = event.value if isinstance(event.value, int) else None
        if self.campaign_id is not None:
            if self.query_one("#explain-identity", Input).value.strip():
                self.action_explain()
            else:
                self.query_one("#explain-identity", Input).focus()

    @on(Input.Submitted, "#explain-identity")
    @on(Button.Pressed, "#explain")
    def action_explain(self) -> None:
        identity = self.query_one("#explain-identity", Input).value.strip()
        if self.campaign_id is None:
            self._error("Choose a campaign first.")
            self.query_one("#explain-campaign", Select).focus()
            return
        if not identity:
            self._error("Type the person's identity (a customer id or an email address).")
            self.query_one("#explain-identity", Input).focus()
            return
        self.generation += 1
        self.query_one("#explain-heading", Static).update(Content("Looking…"))
        self._explain(self.generation, self.campaign_id, identity)

    @work(thread=True, exclusive=True, group="explain.explain")
    def _explain(self, generation: int, campaign_id: int, identity: str) -> None:
        try:
            with self.store.read() as session:
                campaign = campaigns.get_campaign_by_id(session, campaign_id)
            explanation = explainer.explain(self.store, campaign, identity)
            self.post_message(self.Explained(generation, campaign.name, explanation))
        except SubgroupsError as exc:
            self.post_message(self.Explained(generation, "", None, exc.message))

    # --- the answer ---------------------------------------------------------------

    def _error(self, text: str) -> None:
        error = self.query_one("#explain-error", Static)
        error.update(Content(text))
        error.set_class(not text, "-empty")

    @on(Explained)
    def _explained(self, message: Explained) -> None:
        if message.generation != self.generation:
            return  # an earlier question's answer
        steps = self.query_one("#explain-steps", Vertical)
        steps.remove_children()
        heading = self.query_one("#explain-heading", Static)
        result = self.query_one("#explain-verdict", Static)
        if message.explanation is None:
            self._error(message.error or "Cannot explain this.")
            heading.update("")
            result.update("")
            return
        self._error("")
        explanation = message.explanation
        heading.update(
            Content.assemble(
                Content.styled(text_rules.shown(explanation.identity), "bold"),
                " and ",
                Content.styled(message.campaign, "bold"),
                ", step by step:",
            )
        )
        steps.mount_all([ExplainRow(step) for step in explanation.steps])
        result.update(verdict(explanation))

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
