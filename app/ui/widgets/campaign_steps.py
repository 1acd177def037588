"""The campaign wizard's steps, each a widget that knows its own fields: the
base (``WizardStep``) and the choices, steps 1-3 (details, audience, groups).
Step 4 (content) is in campaign_content, step 5 (review) in campaign_review.

A step shows the draft, reads back what the user chose (``values``), checks
what can be checked without the store (``problems``) and shows messages under
its fields. The wizard screen (app.ui.screens.campaign_wizard) moves between
them, saves, and counts the reach the audience and groups steps show; the
content step renders its own preview and the review step reads its review.

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

from app.core import campaigns
from app.core.eligibility import Reach
from app.core.errors import SubgroupsError
from app.core.models import STATUS_ACTIVE
from app.ui.messages import CampaignDraft, GroupRow
from app.ui.reads.campaigns import SegmentChoice
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
