"""The campaign wizard: one screen, five steps in a ContentSwitcher.

1 Details (name, subject, from) → 2 Audience (a saved segment or all
profiles, with counts) → 3 Groups (the "do not send to" and "only subscribed
to all of" pickers, with the live reach breakdown) → 4 Content (the body, its
tags, a preview for one recipient) → 5 Review (every choice, every count of
the chain, warnings, problems, the message as step 4's recipient gets it;
send after confirming; explain for a person). What stops a send and the
HTTPS warning stay in view beside Send.

ctrl+f (or ctrl+n) goes on, ctrl+b goes back: neither is a key an Input or TextArea
uses. Leaving a step checks it (a problem shows under its field and Next is
refused) and saves the draft in a worker; Escape saves what is valid and
closes. A campaign that can no longer be edited (sent, cancelled) opens at
the review and shows every step read-only.

All store work runs in workers; counts and previews carry a generation
number and a late answer for an older choice is dropped.
"""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, ContentSwitcher, Footer, Header, Static

from app.core import actors, campaigns, eligibility
from app.core.eligibility import Reach
from app.core.errors import SubgroupsError
from app.core.store import Store
from app.ui.context import console
from app.ui.messages import CampaignDraft, StoreChanged
from app.ui.modals.explain import ExplainModal
from app.ui.reads.campaigns import Review, SegmentChoice, WizardData, audience_sizes
from app.ui.screens import wizard_keys
from app.ui.screens.wizard_keys import AUDIENCE, CONTENT, DETAILS, GROUPS, REVIEW
from app.ui.widgets.campaign_content import ContentStep
from app.ui.widgets.campaign_review import ReviewStep
from app.ui.widgets.campaign_steps import (
    STEP_TITLES,
    AudienceStep,
    DetailsStep,
    GroupsStep,
    StepChanged,
    WizardStep,
)
from app.ui.widgets.reach import ReachBreakdown

# The value fields a step's problem is about (the audience's problem is "segment").
VALUE_FIELD = {"segment": "segment_id"}


class CampaignWizard(Screen[int | None]):
    """Create or edit a campaign step by step; dismisses with its id (None: nothing saved)."""

    BINDINGS = wizard_keys.WIZARD

    step: reactive[int] = reactive(DETAILS, init=False)

    @dataclass
    class Saved(Message):
        draft: CampaignDraft
        then: int | None

    @dataclass
    class SaveFailed(Message):
        message: str
        field: str | None
        then: int | None

    @dataclass
    class Reached(Message):
        generation: int
        reach: Reach | None
        error: str | None = None

    @dataclass
    class OptionsCounted(Message):
        counts: dict[int | None, int]

    def __init__(
        self, store: Store, data: WizardData, *, step: int = DETAILS, outbox_dir: Path | None = None
    ) -> None:
        super().__init__()
        self.store = store
        self.data = data
        self.draft = data.draft
        self.outbox_dir = outbox_dir
        self.read_only = data.draft.id is not None and data.draft.status not in campaigns.EDITABLE
        self._first_step = REVIEW if self.read_only else step
        self._saving = False
        self._close_refused = False
        self.review: Review | None = None
        self.reach_generation = 0
        self._reach_timer: Timer | None = None
        self._preview_timer: Timer | None = None

    # --- layout --------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        draft = self.data.draft
        yield Header(icon="✉")
        yield Static(id="wizard-steps")
        yield Static(id="wizard-title")
        with ContentSwitcher(initial=f"step-{self._first_step}", id="wizard-body"):
            yield DetailsStep(draft, id="step-1")
            yield AudienceStep(draft, self.data.segments, id="step-2")
            yield GroupsStep(draft, self.data.groups, id="step-3")
            yield ContentStep(draft, id="step-4")
            yield ReviewStep(id="step-5")
        with Horizontal(id="wizard-nav"):
            yield Static("", id="wizard-status")
            yield Button("‹ Back (ctrl+b)", id="wizard-back", compact=True)
            yield Button("Next › (ctrl+f)", variant="primary", id="wizard-next", compact=True)
            yield Button("Close (esc)", id="wizard-close", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        console(self).store_changes.subscribe(self, self.store_changed)
        if self.read_only:
            for widget in self.query(WizardStep):
                widget.set_read_only()
        self._show_title()
        self._count_options(self.data.segments)
        self.set_reactive(CampaignWizard.step, self._first_step)
        self._enter_step(self._first_step)

    def _step_widget(self, number: int | None = None) -> WizardStep:
        return self.query_one(f"#step-{number or self.step}", WizardStep)

    def _show_title(self) -> None:
        title = self.query_one("#wizard-title", Static)
        if self.draft.id is None:
            title.update(Content.styled("New campaign", "bold"))
            return
        parts = [
            Content("Campaign "),
            Content.styled(self.draft.name, "bold"),
            Content(f" · {self.draft.status}"),
        ]
        if self.read_only:
            parts.append(
                Content.styled(f"  (read-only: it is {self.draft.status})", "$foreground-muted")
            )
        title.update(Content.assemble(*parts))

    def _show_steps(self) -> None:
        parts = []
        for number, title in enumerate(STEP_TITLES, start=1):
            label = f" {number} {title} "
            parts.append(
                Content.styled(label, "reverse bold") if number == self.step else Content(label)
            )
        self.query_one("#wizard-steps", Static).update(Content(" ").join(parts))

    def _status(self, text: str, *, error: bool = False) -> None:
        status = self.query_one("#wizard-status", Static)
        status.update(Content(text))
        status.set_class(error, "-error")

    # --- moving between steps --------------------------------------------------------

    def watch_step(self, step: int) -> None:
        self._enter_step(step)

    def _enter_step(self, step: int) -> None:
        """Show the step, set the buttons and keys, start what the step shows."""
        self.query_one("#wizard-body", ContentSwitcher).current = f"step-{step}"
        self._show_steps()
        self.query_one("#wizard-back", Button).disabled = step == DETAILS
        next_button = self.query_one("#wizard-next", Button)
        if step == REVIEW:
            next_button.label = "Send… (s)"
            next_button.variant = "warning"
        else:
            next_button.label = "Next › (ctrl+f)"
            next_button.variant = "primary"
        self.refresh_bindings()
        widget = self._step_widget(step)
        if step in (AUDIENCE, GROUPS):
            self.recount()
        elif step == CONTENT:
            self.refresh_preview()
        elif step == REVIEW:
            self.query_one("#review-breakdown", ReachBreakdown).counting()
            self._review_again()
        self.call_after_refresh(widget.focus_first)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next":
            return self.step != REVIEW
        if action == "back":
            return None if self.step == DETAILS else True
        if action == "save":
            return not self.read_only and self.step != REVIEW
        if action == "send":
            if self.step != REVIEW or self.draft.status not in campaigns.SENDABLE:
                return False
            return True if self._can_send() else None
        if action == "explain":
            return self.step == REVIEW
        return True

    def _can_send(self) -> bool:
        review = self.review
        return (
            review is not None
            and review.draft.id == self.draft.id
            and not review.problems
            and review.draft.status in campaigns.SENDABLE
        )

    @on(Button.Pressed, "#wizard-next")
    def _next_pressed(self) -> None:
        if self.step == REVIEW:
            self.action_send()
        else:
            self.action_next()

    @on(Button.Pressed, "#wizard-back")
    def action_back(self) -> None:
        if self.step > DETAILS:
            self._leave(self.step - 1)

    def action_next(self) -> None:
        if self.step < REVIEW:
            self._leave(self.step + 1)

    def action_save(self) -> None:
        self._leave(self.step)

    @on(Button.Pressed, "#wizard-close")
    def action_close(self) -> None:
        if self.read_only or self._close_refused:
            self.dismiss(self.draft.id)
            return
        self._leave(None)

    def _changes(self, values: dict[str, Any]) -> dict[str, Any]:
        """The fields whose value differs from the saved draft (a new draft: all of them)."""
        if self.draft.id is None:
            return values
        return {k: v for k, v in values.items() if getattr(self.draft, k) != v}

    def _leave(self, target: int | None) -> None:
        """Check and save the step, then show ``target`` (None: close the wizard)."""
        if self._saving:
            return
        if self.read_only:
            if target is None:
                self.dismiss(self.draft.id)
            else:
                self.step = target
            return
        widget = self._step_widget()
        problems = widget.problems()
        values = widget.values()
        if target is not None and problems:
            widget.show_problems(problems)
            widget.focus_first(next(iter(problems)))
            self._status("Fix what is in red.", error=True)
            return
        if target is None and problems:
            # Closing: keep what is valid, say what is not kept.
            for name in problems:
                values.pop(VALUE_FIELD.get(name, name), None)
            if self.draft.id is None and "name" in problems:
                self.notify("Nothing saved: a campaign needs a name first.", severity="warning")
                self.dismiss(None)
                return
            self.notify(
                "Not saved: " + "; ".join(problems.values()), severity="warning", markup=False
            )
        widget.show_problems({})
        changes = self._changes(values)
        if not changes:
            self._arrive(target)
            return
        self._saving = True
        self._status("Saving…")
        self._save(self.draft.id, changes, target)

    def _arrive(self, target: int | None) -> None:
        if target is None:
            self.dismiss(self.draft.id)
        elif target != self.step:
            self.step = target

    # --- saving ----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="wizard.save")
    def _save(self, campaign_id: int | None, fields: dict[str, Any], then: int | None) -> None:
        try:
            with self.store.write() as session:
                if campaign_id is None:
                    saved = campaigns.create_campaign(
                        session=session, actor=actors.actor_name(), source="console", **fields
                    )
                else:
                    saved = campaigns.update_campaign(
                        session=session,
                        campaign_id=campaign_id,
                        actor=actors.actor_name(),
                        source="console",
                        **fields,
                    )
                draft = CampaignDraft.from_campaign(saved)
            self.post_message(self.Saved(draft, then))
        except SubgroupsError as exc:
            self.post_message(self.SaveFailed(exc.message, exc.field, then))
        except Exception as exc:  # the store failed (locked, gone): say so, keep the step
            self.post_message(self.SaveFailed(f"The store could not save this: {exc}", None, then))

    @on(Saved)
    def _saved(self, message: Saved) -> None:
        self._saving = False
        self.draft = message.draft
        self._show_title()
        self._status("Draft saved.")
        self._arrive(message.then)

    @on(SaveFailed)
    def _save_failed(self, message: SaveFailed) -> None:
        self._saving = False
        widget = self._step_widget()
        shown = message.field is not None and widget.show_error(message.field, message.message)
        if shown:
            widget.focus_first(message.field)
            self._status("Not saved: see the red.", error=True)
        else:
            self._status(f"Not saved: {message.message}", error=True)
        if message.then is None:
            self._close_refused = True
            self.notify(
                f"Not saved: {message.message}. Escape again closes without saving.",
                severity="error",
                markup=False,
            )

    # --- counting the reach ------------------------------------------------------------

    def current_draft(self) -> CampaignDraft:
        """The saved draft with the audience and group choices the steps show now."""
        audience = self.query_one(AudienceStep).values()
        chosen = self.query_one(GroupsStep).values()
        return replace(self.draft, **audience, **chosen)

    def store_changed(self, change: StoreChanged) -> None:
        """Subscriptions changed (any process), once a burst is over: count again what
        this step shows (not under a dialog: sending, the review is read when it ends)."""
        if not change.settled or not change.subscriptions_changed or self.app.screen is not self:
            return
        if self.step in (AUDIENCE, GROUPS):
            self.recount()
        elif self.step == REVIEW:
            self._review_again()

    @on(StepChanged)
    def _step_changed(self, event: StepChanged) -> None:
        if event.step == CONTENT:
            if self._preview_timer is not None:
                self._preview_timer.stop()
            self._preview_timer = self.set_timer(0.25, self.refresh_preview)
            return
        # Toggling fast sends a burst: count once the keys pause a moment.
        if self._reach_timer is not None:
            self._reach_timer.stop()
        self._reach_timer = self.set_timer(0.08, self.recount)

    def recount(self) -> None:
        """Count the chain for the choices shown now (older answers are dropped)."""
        self.reach_generation += 1
        self.query_one("#groups-breakdown", ReachBreakdown).counting()
        self.query_one(AudienceStep).show_audience(None)
        self._count_reach(self.reach_generation, self.current_draft())

    @work(thread=True, exclusive=True, group="wizard.reach")
    def _count_reach(self, generation: int, draft: CampaignDraft) -> None:
        try:
            self.post_message(self.Reached(generation, eligibility.reach(self.store, draft)))
        except SubgroupsError as exc:
            self.post_message(self.Reached(generation, None, exc.message))

    @on(Reached)
    def _reached(self, message: Reached) -> None:
        if message.generation != self.reach_generation:
            return  # an older choice's count: a newer one is on its way
        breakdown = self.query_one("#groups-breakdown", ReachBreakdown)
        if message.reach is None:
            breakdown.show_error(message.error or "Cannot count the reach.")
        else:
            breakdown.show(message.reach)
        self.query_one(AudienceStep).show_audience(message.reach, message.error)

    @work(thread=True, exclusive=True, group="wizard.options")
    def _count_options(self, choices: list[SegmentChoice]) -> None:
        """Each audience option's size (all profiles, each saved segment)."""
        self.post_message(self.OptionsCounted(audience_sizes(self.store, choices)))

    @on(OptionsCounted)
    def _options_counted(self, message: OptionsCounted) -> None:
        self.query_one(AudienceStep).show_counts(message.counts)

    # --- the preview ---------------------------------------------------------------------

    def refresh_preview(self) -> None:
        """Render the body for the recipient shown (the audience's first member when blank)."""
        if self.draft.id is None:
            return  # not saved yet (step 1 saves it): nothing to sign links for
        content = self.query_one(ContentStep)
        content.refresh_preview(self.store, replace(self.current_draft(), **content.values()))

    # --- review, send, explain ---------------------------------------------------------------

    def _review_again(self) -> None:
        """Read the review in a worker, the message rendered for step 4's recipient."""
        if self.draft.id is not None:
            recipient = self.query_one(ContentStep).recipient
            self.query_one(ReviewStep).read(self.store, self.draft.id, recipient)

    @on(ReviewStep.Reviewed)
    def _reviewed(self, message: ReviewStep.Reviewed) -> None:
        """The review step shows it; here the wizard follows the campaign's status."""
        self.review = message.review
        self.draft = replace(self.draft, status=message.review.draft.status)
        if not self.read_only and self.draft.status not in campaigns.EDITABLE:
            # Sent (or cancelled, or being sent) since the wizard opened: show, do not edit.
            self.read_only = True
            for widget in self.query(WizardStep):
                widget.set_read_only()
        self.query_one("#wizard-next", Button).disabled = not self._can_send()
        self._show_title()
        self.refresh_bindings()

    def action_send(self) -> None:
        if self.step == REVIEW and self._can_send():
            self.query_one(ReviewStep).send(self.store, self.outbox_dir)

    def action_explain(self) -> None:
        if self.draft.id is None:
            return
        self.app.push_screen(
            ExplainModal(
                self.store,
                campaign_id=self.draft.id,
                identity=self.query_one(ContentStep).recipient,
            )
        )
