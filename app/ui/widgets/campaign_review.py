"""The campaign wizard's step 5: every choice, every count of the chain, what to
know, the message as one recipient gets it, and what stops a send, kept in view
beside Send. The review is read in a worker; sending asks first, then runs in
the send dialog.

Everything users typed is shown as Content, never as markup.
"""

from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from app.core import campaigns
from app.core.store import Store
from app.ui.reads.campaigns import Review, read_review
from app.ui.widgets.campaign_steps import WizardStep
from app.ui.widgets.reach import ReachBreakdown


def _line(key: str, value: str | Content, width: int = 20) -> Content:
    value = value if isinstance(value, Content) else Content(value)
    return Content.assemble((key.ljust(width), "$foreground-muted"), value)


class ReviewStep(Vertical, WizardStep):
    """Step 5: every choice, every count of the chain, what to know, the message as one
    recipient gets it; and, below that and never scrolled away, what stops a send."""

    NUMBER = 5

    @dataclass
    class Reviewed(Message):
        """The review was read (it goes on to the wizard, which follows its status)."""

        review: Review

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="wizard-step")
        self.review: Review | None = None
        # What the last read was of (the store, the campaign, step 4's recipient).
        self._reading: tuple[Store, int, str] | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="review-scroll"):
            yield Static(Content("Reading the campaign…"), id="review-summary")
            yield Static("Who receives it", classes="subtitle")
            yield ReachBreakdown(id="review-breakdown")
            yield Static("", id="review-warnings")
            yield Static("", id="review-message-title", classes="subtitle")
            yield Static("", id="review-message")
        # What the user acts on stays in view beside Send (a short terminal scrolls the
        # rest): whether it can be sent, or what stops it, and the HTTPS warning.
        with Vertical(id="review-actions"):
            yield Static("", id="review-send-warning", classes="-empty")
            yield Static("", id="review-problems")

    def focus_first(self, field_name: str | None = None) -> None:
        """The review has no fields: focus its scroll, so arrow keys move it."""
        self.query_one("#review-scroll", VerticalScroll).focus()

    # --- reading ------------------------------------------------------------------------

    def read(self, store: Store, campaign_id: int, recipient: str) -> None:
        """Read the review in a worker, the message rendered for ``recipient``."""
        self._reading = (store, campaign_id, recipient)
        self._load(store, campaign_id, recipient)

    @work(thread=True, exclusive=True, group="wizard.review")
    def _load(self, store: Store, campaign_id: int, recipient: str) -> None:
        self.post_message(self.Reviewed(read_review(store, campaign_id, recipient)))

    @on(Reviewed)
    def _reviewed(self, message: Reviewed) -> None:
        self.show(message.review)

    # --- sending ------------------------------------------------------------------------

    def send(self, store: Store, outbox_dir: Path | None) -> None:
        """Ask first, then send the reviewed campaign in the send dialog; read again after."""
        from app.ui.modals.confirm import ConfirmModal
        from app.ui.modals.send_campaign import SendModal

        review = self.review
        if review is None or review.draft.id is None:
            return
        count = review.reach.reach if review.reach else 0
        people = "person" if count == 1 else "people"
        question = Content.assemble(
            "Send ",
            Content.styled(review.draft.name, "bold"),
            f" to {count:,} {people}? Each gets one message. People who opt out while it "
            "sends are skipped; you can cancel between batches.",
        )
        campaign_id, name = review.draft.id, review.draft.name

        def start(yes: bool | None) -> None:
            if yes:
                self.app.push_screen(
                    SendModal(store, campaign_id=campaign_id, name=name, outbox_dir=outbox_dir),
                    self._sent,
                )

        self.app.push_screen(ConfirmModal("Send campaign", question, confirm_label="Send"), start)

    def _sent(self, summary: str | None) -> None:
        if summary:
            self.notify(summary, markup=False, timeout=8)
        if self._reading is not None:
            self.read(*self._reading)

    # --- showing ------------------------------------------------------------------------

    def show(self, review: Review) -> None:
        self.review = review
        draft = review.draft
        none = Content.styled("none", "$foreground-muted")
        summary = [
            _line("Name", Content.styled(draft.name, "bold")),
            _line("Subject", draft.subject or none),
            _line("From", draft.from_address or none),
            _line("Audience", review.audience),
            _line("Do not send to", ", ".join(review.do_not_send_to) or none),
            _line("Only subscribed to", ", ".join(review.only_subscribed_to) or none),
            _line("Status", self._status(review)),
        ]
        self.query_one("#review-summary", Static).update(Content("\n").join(summary))
        breakdown = self.query_one("#review-breakdown", ReachBreakdown)
        if review.reach is not None:
            breakdown.show(review.reach)
        else:
            breakdown.show_error(review.reach_error or "Cannot count the reach.")
        sendable = draft.status in campaigns.SENDABLE
        others = [w for w in review.warnings if w != review.send_warning or not sendable]
        warnings = [Content.styled("To know before sending" if sendable else "To know", "bold")]
        warnings += [Content.assemble(("⚠ ", "$warning"), w) for w in others]
        self.query_one("#review-warnings", Static).update(
            Content("\n").join(warnings) if others else ""
        )
        send_warning = self.query_one("#review-send-warning", Static)
        shown = sendable and review.send_warning is not None
        send_warning.update(
            Content.assemble(("⚠ ", "$warning"), review.send_warning or "") if shown else ""
        )
        send_warning.set_class(not shown, "-empty")
        self._show_message(review)
        problems_widget = self.query_one("#review-problems", Static)
        if not sendable:
            problems_widget.update(
                Content.assemble(
                    (self._status(review) + ". ", "bold"),
                    "x explains for one person why they got it or not.",
                )
            )
        elif review.problems:
            lines = [Content.styled("What stops a send", "bold $error")]
            lines += [Content.assemble(("✗ ", "$error"), message) for _, message in review.problems]
            problems_widget.update(Content("\n").join(lines))
        else:
            problems_widget.update(
                Content.assemble(
                    ("✓ Ready to send. ", "bold $success"),
                    "s sends (after you confirm); x explains the choice for one person.",
                )
            )

    def _show_message(self, review: Review) -> None:
        """The subject and body as the chosen recipient gets them (tags filled in)."""
        title = self.query_one("#review-message-title", Static)
        message = self.query_one("#review-message", Static)
        if review.message is None:
            title.update(Content("The message"))
            message.update(
                Content.styled(review.message_error or "No message to show.", "$foreground-muted")
            )
            return
        title.update(Content.assemble("The message for ", review.recipient))
        subject = next((v for k, v in review.message.headers if k == "Subject"), "")
        lines = [
            _line("Subject", Content.styled(subject, "bold")),
            Content.styled("(another recipient: step 4's preview)", "$foreground-muted"),
            Content(""),
            Content(review.message.body.rstrip("\n")),
        ]
        message.update(Content("\n").join(lines))

    @staticmethod
    def _status(review: Review) -> str:
        status = review.draft.status
        if status == campaigns.SENT:
            when = f" on {review.sent_at.astimezone():%Y-%m-%d %H:%M}" if review.sent_at else ""
            return f"Sent{when}: {review.sent:,} messages"
        if review.sent:
            return f"{status.capitalize()}: {review.sent:,} messages sent so far"
        return status.capitalize()
