"""The landing page as a recipient sees it, drawn in the console.

It mirrors the page ``subgroups landing`` serves (``app.web.pages``): the
title, the confirmation notice after a save, the intro, whose preferences
these are, one box per shown group (ticked: subscribed) with its description,
and the all-email box (ticked: unsubscribed from all email) with its wording.
The boxes are real: the Landing page section reads them to act as the
recipient. Every piece of user text is ``Content``, never markup.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Button, Checkbox, Static

ALL_EMAIL_NOTE = "While this is ticked you receive no email from us, whatever is chosen above."


@dataclass(frozen=True)
class PageGroupText:
    """What the page says about one group: plain data from the store."""

    id: int
    name: str
    description: str


def _or_blank(text: str, blank: str) -> Content:
    """The text as typed, or a muted stand-in when it is blank."""
    cleaned = text.strip()
    return Content(cleaned) if cleaned else Content.styled(blank, "$foreground-muted italic")


class GroupChoice(Vertical):
    """One group on the page: its box (ticked means subscribed) and its description."""

    def __init__(self, group: PageGroupText, *, checked: bool) -> None:
        super().__init__(classes="page-choice")
        self.group = group
        self._checked = checked

    @property
    def group_id(self) -> int:
        return self.group.id

    def compose(self) -> ComposeResult:
        yield Checkbox(Content(self.group.name), self._checked, compact=True)
        if self.group.description:
            yield Static(Content(self.group.description), classes="page-choice-about")

    @property
    def checkbox(self) -> Checkbox:
        return self.query_one(Checkbox)


class PagePreview(Vertical):
    """The preferences page of one recipient, from the form's (maybe unsaved) settings."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._groups: tuple[PageGroupText, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static("", id="page-title")
        yield Static("", id="page-notice", classes="-empty")
        yield Static("", id="page-intro")
        yield Static("", id="page-for")
        yield Static("The email you receive", classes="page-legend", id="page-groups-legend")
        yield Vertical(id="page-groups")
        yield Static(
            Content("No group is shown on this page."), id="page-no-groups", classes="-empty"
        )
        yield Static("All email", classes="page-legend")
        yield Checkbox("", id="page-all-email", compact=True)
        yield Static(ALL_EMAIL_NOTE, id="page-all-email-note", classes="page-choice-about")
        yield Button("Save my choices (ctrl+o)", id="page-save", variant="primary", compact=True)
        yield Static("", id="page-after")

    # --- wording ------------------------------------------------------------------

    def show_wording(
        self,
        *,
        title: str,
        intro: str,
        all_email_wording: str,
        confirmation_text: str,
        confirmed: bool,
    ) -> None:
        """The page's texts as the form holds them; the notice only after a save."""
        self.query_one("#page-title", Static).update(_or_blank(title, "(no title)"))
        self.query_one("#page-intro", Static).update(Content(intro.strip()))
        self.query_one("#page-intro").display = bool(intro.strip())
        self.query_one("#page-all-email", Checkbox).label = _or_blank(
            all_email_wording, "(no wording: the page must offer this)"
        )
        notice = self.query_one("#page-notice", Static)
        notice.update(_or_blank(confirmation_text, "(no confirmation text)"))
        notice.set_class(not confirmed, "-empty")
        self.query_one("#page-after", Static).update(
            Content.assemble(
                ("After a save the page says: ", "$foreground-muted"),
                _or_blank(confirmation_text, "(nothing)"),
            )
        )

    def show_recipient(self, who: Content) -> None:
        """The "Preferences for …" line."""
        self.query_one("#page-for", Static).update(who)

    # --- the boxes ----------------------------------------------------------------

    def set_groups(self, groups: Sequence[PageGroupText], checked: Mapping[int, bool]) -> None:
        """One choice per active group, in page order (rebuilt only when the groups changed).

        Groups not shown are hidden rather than removed, so ticking a group in
        the form shows its box at once.
        """
        wanted = tuple(groups)
        if wanted == self._groups:
            return
        self._groups = wanted
        container = self.query_one("#page-groups", Vertical)
        focused = self.screen.focused if self.is_attached else None
        refocus = next(
            (c.group_id for c in self._choices() if focused is not None and focused in c.children),
            None,
        )
        container.remove_children()
        choices = [GroupChoice(g, checked=checked.get(g.id, False)) for g in wanted]
        container.mount_all(choices)
        if refocus is not None:
            again = next((c for c in choices if c.group_id == refocus), None)
            if again is not None:
                self.call_after_refresh(lambda: again.checkbox.focus())

    def _choices(self) -> list[GroupChoice]:
        return list(self.query_one("#page-groups").query_children(GroupChoice))

    def show_choices(
        self,
        *,
        shown: Collection[int],
        checked: Mapping[int, bool],
        changed: Collection[int],
        all_email_unsubscribed: bool,
        all_email_changed: bool,
    ) -> None:
        """Which boxes show, how they are ticked, and which differ from the person's state."""
        any_shown = False
        for choice in self._choices():
            visible = choice.group_id in shown
            any_shown = any_shown or visible
            choice.display = visible
            choice.set_class(choice.group_id in changed, "-changed")
            if choice.is_mounted:
                self._tick(choice.checkbox, checked.get(choice.group_id, False))
        self.query_one("#page-no-groups").set_class(any_shown or not self._groups, "-empty")
        self.query_one("#page-groups-legend").display = any_shown
        all_email = self.query_one("#page-all-email", Checkbox)
        self._tick(all_email, all_email_unsubscribed)
        all_email.set_class(all_email_changed, "-changed")

    @staticmethod
    def _tick(box: Checkbox, value: bool) -> None:
        """Set a box without it announcing a change (only the user's clicks count)."""
        if box.value != value:
            with box.prevent(Checkbox.Changed):
                box.value = value

    def ticked_groups(self) -> dict[int, bool]:
        """Each shown group's box as it is ticked now."""
        return {c.group_id: c.checkbox.value for c in self._choices() if c.display and c.is_mounted}

    def show_pending(self, changes: int) -> None:
        """Say on the save button how many choices differ from the person's."""
        label = "Save my choices (ctrl+o)"
        if changes:
            label += f" · {changes} change{'s' if changes != 1 else ''}"
        self.query_one("#page-save", Button).label = Content(label)
