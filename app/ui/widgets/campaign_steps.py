"""The campaign wizard's five steps, each a widget that knows its own fields.

A step shows the draft, reads back what the user chose (``values``), checks
what can be checked without the store (``problems``) and shows messages under
its fields. The wizard screen (app.ui.screens.campaign_wizard) moves between
them, saves, and runs the workers whose results some steps show: the reach
breakdown, the audience counts, the preview, the review.

Everything users typed (names, subjects, bodies, group and segment names) is
shown as Content or Text, never as markup.
"""

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Label, RadioButton, RadioSet, SelectionList, Static, TextArea

from app.core import body_template, campaigns
from app.core.eligibility import Reach
from app.core.errors import SubgroupsError
from app.core.models import STATUS_ACTIVE
from app.ui.messages import CampaignDraft, GroupRow
from app.ui.reads.campaigns import Review, SegmentChoice
from app.ui.widgets.group_picker import GroupPicker, PickerOption
from app.ui.widgets.reach import ReachBreakdown

STEP_TITLES = ("Details", "Audience", "Groups", "Content", "Review")


class StepChanged(Message):
    """A step's choice changed in a way other parts show (the reach, the preview)."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step


class WizardStep(Widget):
    """One step: its fields, their checks, the messages under them.

    Concrete steps subclass the container they are laid out as first
    (``VerticalScroll``, or ``Horizontal`` for two columns), then this: Textual
    reads a widget's CSS type names along its first base, so the container's
    default styles (its layout) apply.
    """

    NUMBER: ClassVar[int] = 0
    FIELDS: ClassVar[tuple[str, ...]] = ()

    def values(self) -> dict[str, Any]:
        """The draft fields this step edits, as the widgets show them now."""
        return {}

    def problems(self) -> dict[str, str]:
        """What is wrong here (field -> message), checked without the store."""
        return {}

    def show_problems(self, problems: dict[str, str]) -> None:
        """Show each message under its field; clear the others."""
        for name in self.FIELDS:
            self.show_error(name, problems.get(name, ""))

    def show_error(self, field_name: str, message: str) -> bool:
        """One message under one field; False if the step has no such field."""
        found = self.query(f"#{field_name.replace('_', '-')}-error")
        if not found:
            return False
        error = found.first(Static)
        error.update(Content(message))
        error.set_class(not message, "-empty")
        return True

    def focus_first(self, field_name: str | None = None) -> None:
        """Focus a field (the one with a problem) or the step's first control."""
        if field_name:
            found = self.query(f"#{field_name.replace('_', '-')}")
            if found and found.first().focusable:
                found.first().focus()
                return
        for widget in self.query("Input, TextArea, RadioSet, SelectionList"):
            if widget.focusable:
                widget.focus()
                return
        if self.focusable:
            self.focus()  # the review: arrow keys scroll it

    def set_read_only(self) -> None:
        """A sent or cancelled campaign: show, do not edit."""
        for widget in self.query("Input, RadioSet, SelectionList"):
            widget.disabled = True
        for area in self.query(TextArea):
            area.read_only = True


def _field(label: str, widget: Widget, error_id: str, hint: str = "") -> ComposeResult:
    yield Label(Content(label), classes="field-label")
    yield widget
    if hint:
        yield Static(Content(hint), classes="field-hint")
    yield Static("", id=error_id, classes="field-error -empty")


# --- 1 Details ------------------------------------------------------------------


class DetailsStep(VerticalScroll, WizardStep):
    """Step 1: name, subject, from."""

    NUMBER = 1
    FIELDS = ("name", "subject", "from_address")
    CHECKS = {
        "name": campaigns.clean_campaign_name,
        "subject": campaigns.clean_subject,
        "from_address": campaigns.clean_from_address,
    }

    def __init__(self, draft: CampaignDraft, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="wizard-step")
        self.draft = draft

    def compose(self) -> ComposeResult:
        yield from _field(
            "Name (what the console and the ledger call it; unique)",
            Input(self.draft.name, id="name", placeholder="e.g. Spring sale", compact=True),
            "name-error",
        )
        yield from _field(
            "Subject (the line people see in their inbox)",
            Input(
                self.draft.subject,
                id="subject",
                placeholder="e.g. Our spring sale starts today",
                compact=True,
            ),
            "subject-error",
        )
        yield from _field(
            "From",
            Input(
                self.draft.from_address,
                id="from-address",
                placeholder="news@example.com or Example News <news@example.com>",
                compact=True,
            ),
            "from-address-error",
        )

    def values(self) -> dict[str, Any]:
        return {
            "name": self.query_one("#name", Input).value,
            "subject": self.query_one("#subject", Input).value,
            "from_address": self.query_one("#from-address", Input).value,
        }

    def problems(self) -> dict[str, str]:
        found = {}
        for name, value in self.values().items():
            try:
                self.CHECKS[name](value)
            except SubgroupsError as exc:
                found[name] = exc.message
        return found

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        """Check the field being typed in (the others keep their messages until Next)."""
        name = (event.input.id or "").replace("-", "_")
        if name in self.CHECKS and event.value:
            self.show_error(name, self.problems().get(name, ""))


# --- 2 Audience ---------------------------------------------------------------------


ALL_PROFILES_ID = "audience-all"


def _audience_button_id(segment_id: int | None) -> str:
    return ALL_PROFILES_ID if segment_id is None else f"audience-{segment_id}"


class AudienceStep(VerticalScroll, WizardStep):
    """Step 2: a saved segment or all profiles, each with its count."""

    NUMBER = 2
    FIELDS = ("segment",)

    def __init__(
        self, draft: CampaignDraft, segments: list[SegmentChoice], *, id: str | None = None
    ) -> None:
        super().__init__(id=id, classes="wizard-step")
        self.draft = draft
        self.segments = segments
        self.counts: dict[int | None, int] = {}

    def compose(self) -> ComposeResult:
        yield Label("Audience: who may get it, before any group choices", classes="field-label")
        with RadioSet(id="audience", compact=True):
            yield RadioButton(
                self._label("All profiles", None),
                value=self.draft.segment_id is None,
                id=ALL_PROFILES_ID,
            )
            for segment in self.segments:
                yield RadioButton(
                    self._label(segment.name, segment.id),
                    value=self.draft.segment_id == segment.id,
                    id=_audience_button_id(segment.id),
                )
        yield Static("", id="segment-error", classes="field-error -empty")
        yield Static("", id="audience-count")
        yield Static(
            Content(
                "Saved segments come from the Segments section (3). The next step narrows the "
                "audience by subscription groups."
            ),
            classes="field-hint",
        )

    def _label(self, name: str, segment_id: int | None) -> Content:
        count = self.counts.get(segment_id)
        counted = "…" if count is None else f"{count:,} people"
        return Content.assemble(name, ("  " + counted, "$foreground-muted"))

    def show_counts(self, counts: dict[int | None, int]) -> None:
        """Each option's size, next to its name."""
        self.counts = counts
        self.query_one(f"#{ALL_PROFILES_ID}", RadioButton).label = self._label("All profiles", None)
        for segment in self.segments:
            self.query_one(f"#{_audience_button_id(segment.id)}", RadioButton).label = self._label(
                segment.name, segment.id
            )

    def show_audience(self, reach: Reach | None, error: str | None = None) -> None:
        """The chosen audience's count (the reach's first step)."""
        line = self.query_one("#audience-count", Static)
        if reach is None:
            line.update(Content(error or "Counting…"))
            return
        first = reach.steps[0]
        line.update(
            Content.assemble(
                ("Audience: ", "bold"),
                (f"{first.count:,}", "bold"),
                f" of {reach.profiles:,} profiles",
            )
        )

    def values(self) -> dict[str, Any]:
        pressed = self.query_one("#audience", RadioSet).pressed_button
        if pressed is None or pressed.id == ALL_PROFILES_ID:
            return {"segment_id": None}
        return {"segment_id": int((pressed.id or "").removeprefix("audience-"))}

    def problems(self) -> dict[str, str]:
        if self.query_one("#audience", RadioSet).pressed_button is None:
            return {"segment": "Choose an audience: all profiles or a saved segment"}
        return {}

    @on(RadioSet.Changed)
    def _changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        self.show_error("segment", "")
        self.post_message(StepChanged(self.NUMBER))


# --- 3 Groups -----------------------------------------------------------------------


def _group_options(groups: list[GroupRow], chosen: list[int]) -> list[PickerOption]:
    """Active groups; archived ones only when already chosen (shown, marked, selected)."""
    options = []
    for group in groups:
        if group.status == STATUS_ACTIVE:
            options.append(PickerOption(group.name, group.id, group.id in chosen))
        elif group.id in chosen:
            options.append(PickerOption(f"{group.name} (archived)", group.id, True))
    return options


class GroupsStep(Horizontal, WizardStep):
    """Step 3: the "do not send to" and "only subscribed to all of" pickers, and the live reach."""

    NUMBER = 3
    FIELDS = ("do_not_send_to", "only_subscribed_to")

    def __init__(
        self, draft: CampaignDraft, groups: list[GroupRow], *, id: str | None = None
    ) -> None:
        super().__init__(id=id, classes="wizard-step")
        self.draft = draft
        self.groups = groups

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="groups-pickers"):
            yield Label(
                "Do not send this campaign to the following subscription groups",
                classes="field-label",
            )
            yield Static(
                Content(
                    "People who left any of them are skipped; the campaign's unsubscribe link "
                    "leaves these groups."
                ),
                classes="field-hint",
            )
            yield GroupPicker(
                _group_options(self.groups, self.draft.do_not_send_to), list_id="do-not-send-to"
            )
            yield Static("", id="do-not-send-to-error", classes="field-error -empty")
            yield Label("Only people subscribed to all of (optional)", classes="field-label")
            yield GroupPicker(
                _group_options(self.groups, self.draft.only_subscribed_to),
                list_id="only-subscribed-to",
            )
            yield Static("", id="only-subscribed-to-error", classes="field-error -empty")
        with Vertical(id="groups-reach"):
            yield Static("Reach, step by step", classes="subtitle")
            yield ReachBreakdown(id="groups-breakdown")

    def _chosen(self, list_id: str) -> list[int]:
        """The ticked groups in the list's order (group order), those the filter hides too."""
        listing = self.query_one(f"#{list_id}", SelectionList)
        picker = listing.parent
        assert isinstance(picker, GroupPicker)
        return picker.selected

    def focus_first(self, field_name: str | None = None) -> None:
        """Focus the first picker with its heading in view (a short terminal scrolls the step:
        focusing would scroll the heading, which says what the ticks mean, out of sight)."""
        if field_name:
            super().focus_first(field_name)
            return
        if self.query_one("#do-not-send-to", SelectionList).focusable:
            self.query_one("#do-not-send-to", SelectionList).focus(scroll_visible=False)
        self.query_one("#groups-pickers", VerticalScroll).scroll_home(animate=False, immediate=True)

    def values(self) -> dict[str, Any]:
        return {
            "do_not_send_to": self._chosen("do-not-send-to"),
            "only_subscribed_to": self._chosen("only-subscribed-to"),
        }

    @on(SelectionList.SelectedChanged)
    def _changed(self, event: SelectionList.SelectedChanged[int]) -> None:
        event.stop()
        self.post_message(StepChanged(self.NUMBER))


# --- 4 Content ------------------------------------------------------------------------


class ContentStep(Horizontal, WizardStep):
    """Step 4: the body template, its tags, and a preview for a chosen recipient."""

    NUMBER = 4
    FIELDS = ("body", "recipient")

    def __init__(self, draft: CampaignDraft, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="wizard-step")
        self.draft = draft

    def compose(self) -> ComposeResult:
        with Vertical(id="content-editor"):
            yield Label("Body (plain text with tags)", classes="field-label")
            yield TextArea(
                self.draft.body or body_template.DEFAULT_BODY,
                id="body",
                soft_wrap=True,
                compact=True,
            )
            yield Static("", id="body-error", classes="field-error -empty")
            yield Static("", id="body-note", classes="-empty")
            tags = [Content.styled("Tags: ", "bold")]
            for tag in body_template.TAGS:
                tags.append(
                    Content.assemble(
                        ("\n{{ " + tag + " }}", "$accent"), " ", body_template.TAG_HELP[tag]
                    )
                )
            yield Static(Content("").join(tags), id="content-tags")
            # A short terminal gives the rows to the editor: the tags without their help.
            yield Static(
                Content.assemble(
                    ("Tags: ", "bold"),
                    Content("  ").join(
                        Content.styled("{{ " + tag + " }}", "$accent") for tag in body_template.TAGS
                    ),
                ),
                id="content-tags-short",
            )
        with Vertical(id="content-preview"):
            yield Label("Preview for (identity)", classes="field-label")
            yield Input(id="recipient", placeholder="identity of a profile", compact=True)
            yield Static("", id="recipient-error", classes="field-error -empty")
            with VerticalScroll(id="preview-scroll"):
                yield Static(Content("Choosing a recipient…"), id="preview")

    def values(self) -> dict[str, Any]:
        return {"body": self.query_one("#body", TextArea).text}

    def problems(self) -> dict[str, str]:
        try:
            body_template.check_body(self.values()["body"])
        except SubgroupsError as exc:
            return {"body": exc.message}
        return {}

    def show_problems(self, problems: dict[str, str]) -> None:
        self.show_error("body", problems.get("body", ""))
        self._show_placeholder_note()

    def on_mount(self) -> None:
        self._show_placeholder_note()

    def _show_placeholder_note(self) -> None:
        """Not an error (a draft may keep it), but the placeholder line is never sent."""
        line = body_template.placeholder_line(self.values()["body"])
        note = self.query_one("#body-note", Static)
        note.update(
            ""
            if line is None
            else Content(
                f"Line {line} still says {body_template.PLACEHOLDER!r}: "
                "replace it with your message before sending."
            )
        )
        note.set_class(line is None, "-empty")

    @property
    def recipient(self) -> str:
        return self.query_one("#recipient", Input).value.strip()

    def show_preview(self, text: Content | None, error: str | None = None) -> None:
        """The rendered message, or why there is none (unknown recipient)."""
        self.show_error("recipient", error or "")
        preview = self.query_one("#preview", Static)
        preview.update(
            text if text is not None else Content.styled("No preview.", "$foreground-muted")
        )

    @on(TextArea.Changed)
    def _body_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self.show_problems(self.problems())
        self.post_message(StepChanged(self.NUMBER))

    @on(Input.Changed, "#recipient")
    def _recipient_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(StepChanged(self.NUMBER))

    def set_read_only(self) -> None:
        """Read-only, but the preview's recipient stays editable (it changes nothing)."""
        self.query_one("#body", TextArea).read_only = True


# --- 5 Review -------------------------------------------------------------------------


def _line(key: str, value: str | Content, width: int = 20) -> Content:
    value = value if isinstance(value, Content) else Content(value)
    return Content.assemble((key.ljust(width), "$foreground-muted"), value)


class ReviewStep(Vertical, WizardStep):
    """Step 5: every choice, every count of the chain, what to know, the message as one
    recipient gets it; and, below that and never scrolled away, what stops a send."""

    NUMBER = 5

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="wizard-step")
        self.review: Review | None = None

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
