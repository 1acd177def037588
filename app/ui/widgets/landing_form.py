"""The landing page's settings form: its fields, the shown groups, and their checks.

The form holds values only; the Landing page section loads and saves them.
Each field is checked with ``landing.clean_setting`` (the rule the save
applies) as it is typed, and its problem shows in red under it. Group names
are ``Content``, never markup.
"""

from collections.abc import Collection, Sequence

from textual import events
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Input, Label, SelectionList, Static, TextArea

from app.core import landing
from app.core.errors import SubgroupsError
from app.core.landing import PageSettings
from app.ui.messages import GroupRow
from app.ui.widgets.group_picker import GroupPicker, PickerOption

# Each setting: (its input's id, its label). The order is the form's.
FIELDS: dict[str, tuple[str, str]] = {
    "title": ("landing-title", "Title"),
    "intro": ("landing-intro", "Intro text (a blank line starts a paragraph)"),
    "all_email_wording": ("landing-wording", "'Unsubscribe from all email' wording (always shown)"),
    "confirmation_text": ("landing-confirmation", "Confirmation text (shown after a save)"),
    "base_url": ("landing-base-url", "Public base URL (links in emails start with it)"),
}
# Problems that are not about one setting: the shown groups, and the rest.
GROUPS_ERROR = "landing-groups-error"
FORM_ERROR = "landing-error"


class LandingForm(VerticalScroll, can_focus=False):
    """The settings fields and the shown-groups list.

    Not a focus stop itself: every field in it is one, and scrolls into view.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # (id, name) of the groups listed, to tell when the list must be rebuilt.
        self._listed: list[tuple[int, str]] = []

    def compose(self) -> ComposeResult:
        yield Static(Content("Loading the settings…"), id="landing-state")
        yield Static("", id=FORM_ERROR, classes="form-error -empty")
        for name, (widget_id, label) in FIELDS.items():
            yield Label(label, classes="field-label")
            if name == "intro":
                yield TextArea(id=widget_id, compact=True, soft_wrap=True)
            else:
                yield Input(id=widget_id, compact=True)
            yield Static("", id=f"{widget_id}-error", classes="field-error -empty")
        yield Label("Groups shown on the page (active groups; space ticks)", classes="field-label")
        yield GroupPicker(list_id="landing-groups", id="landing-groups-picker")
        yield Static("", id="landing-groups-note")
        yield Static("", id=GROUPS_ERROR, classes="field-error -empty")

    # --- values ---------------------------------------------------------------------

    def _input(self, name: str) -> Input:
        return self.query_one(f"#{FIELDS[name][0]}", Input)

    def values(self) -> PageSettings:
        """The settings as the form holds them (unchecked, maybe unsaved)."""
        return PageSettings(
            title=self._input("title").value,
            intro=self.query_one("#landing-intro", TextArea).text,
            all_email_wording=self._input("all_email_wording").value,
            confirmation_text=self._input("confirmation_text").value,
            base_url=self._input("base_url").value,
        )

    def shown(self) -> set[int]:
        """The groups ticked as shown."""
        return set(self.query_one(GroupPicker).selected)

    def fill(self, settings: PageSettings) -> None:
        """Put these settings in the fields (a field already holding its value is left alone)."""
        for name in FIELDS:
            value = getattr(settings, name)
            if name == "intro":
                area = self.query_one("#landing-intro", TextArea)
                if area.text != value:
                    area.load_text(value)
            elif self._input(name).value != value:
                self._input(name).value = value

    def list_groups(self, groups: Sequence[GroupRow], shown: Collection[int]) -> None:
        """List these groups, ticking ``shown``: rebuilt when the groups changed, else (un)ticked.

        Not rebuilt needlessly, so the highlighted row stays put as events come in.
        """
        picker = self.query_one(GroupPicker)
        wanted = [(g.id, g.name) for g in groups]
        if wanted != self._listed:
            picker.set_options([PickerOption(g.name, g.id, g.id in shown) for g in groups])
            self._listed = wanted
            return
        ticked = set(picker.selected)
        for group in groups:
            if group.id in shown and group.id not in ticked:
                picker.select(group.id)
            elif group.id not in shown and group.id in ticked:
                picker.deselect(group.id)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Highlight the first group when the list gets focus, so space ticks at once."""
        listing = self.query_one("#landing-groups", SelectionList)
        if event.widget is listing and listing.highlighted is None and listing.option_count:
            listing.highlighted = 0

    # --- checks and messages ------------------------------------------------------------

    def check(self, values: PageSettings) -> dict[str, str]:
        """Each setting's problem, shown under its field; returns them (empty: all good)."""
        problems: dict[str, str] = {}
        for name, (widget_id, _) in FIELDS.items():
            try:
                landing.clean_setting(name, getattr(values, name))
            except SubgroupsError as exc:
                problems[name] = exc.message
            self.show_error(f"{widget_id}-error", problems.get(name, ""))
        return problems

    def show_error(self, widget_id: str, message: str) -> None:
        """Show (or, with "", hide) one of the form's error lines."""
        widget = self.query_one(f"#{widget_id}", Static)
        widget.update(Content(message))
        widget.set_class(not message, "-empty")

    def error_for(self, field: str | None) -> str:
        """The error line a service's ``field`` belongs under."""
        if field in FIELDS:
            return f"{FIELDS[field][0]}-error"
        return GROUPS_ERROR if field == "groups" else FORM_ERROR

    def focus_field(self, field: str) -> None:
        if field in FIELDS:
            self.query_one(f"#{FIELDS[field][0]}").focus()

    def show_state(self, *, saving: bool, dirty: bool) -> None:
        """The line at the top: saving, unsaved changes, or all saved."""
        state = self.query_one("#landing-state", Static)
        if saving:
            state.update(Content("Saving…"))
        elif dirty:
            state.update(
                Content.assemble(
                    ("● Unsaved changes", "bold $warning"), " · ctrl+s saves, ctrl+t reverts"
                )
            )
        else:
            state.update(Content.styled("All settings saved.", "$foreground-muted"))

    def show_groups_note(self, shown: int, active: int) -> None:
        note = (
            f"{shown} of {active} active groups shown"
            if shown
            else "No group shown: the page offers only the all-email box"
        )
        self.query_one("#landing-groups-note", Static).update(
            Content.styled(note, "$foreground-muted")
        )
