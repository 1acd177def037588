"""The Landing page section: the page's settings on the left, a live preview on the right.

The section opens on the page (the preview's scroll area), where the number
keys still switch sections; ``e`` goes to the form and Escape comes back.
The form (``LandingForm``) edits the title, intro, the "unsubscribe from all
email" wording, the confirmation text, the public base URL and which active
groups the page shows; each field is checked as it is typed, and ctrl+s
saves them all in one transaction (``landing.update_settings`` and
``landing.set_shown_groups``, Source ``console``). The preview
(``RecipientPane``) draws the page from the form as it stands, saved or not,
for one recipient, and can act as them.

Every read and write runs in a worker. A settings read carries a generation
number: one that started before a save is dropped, never shown over it.
"""

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, SelectionList, TextArea

from app.core import actors, groups, landing
from app.core.errors import SubgroupsError
from app.core.landing import PageSettings
from app.core.models import STATUS_ACTIVE
from app.ui.messages import GroupRow, StoreChanged
from app.ui.sections import keys
from app.ui.sections.base import Section
from app.ui.widgets.landing_form import FIELDS, FORM_ERROR, GROUPS_ERROR, LandingForm
from app.ui.widgets.landing_recipient import PageDraft, RecipientPane


class LandingSection(Section):
    """Section 5: the email landing page (preference center)."""

    MAIN_WIDGET = "#landing-page-scroll"
    BINDINGS = keys.LANDING

    @dataclass
    class Loaded(Message):
        generation: int
        settings: PageSettings
        # Active groups, by name.
        groups: list[GroupRow]

    @dataclass
    class Saved(Message):
        sent: PageSettings
        settings: PageSettings
        groups: list[GroupRow]

    @dataclass
    class Failed(Message):
        """The save was refused; ``field`` names the setting it is about, if any."""

        text: str
        field: str | None = None

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.active = False
        # The settings and shown groups as stored (None until first read).
        self.saved: PageSettings | None = None
        self.saved_shown: frozenset[int] = frozenset()
        self.groups: list[GroupRow] = []
        self.saving = False
        self._generation = 0

    @property
    def form(self) -> LandingForm:
        return self.query_one(LandingForm)

    @property
    def pane(self) -> RecipientPane:
        return self.query_one(RecipientPane)

    def compose(self) -> ComposeResult:
        with Horizontal(id="landing-body"):
            yield LandingForm(id="landing-form")
            yield RecipientPane(id="landing-preview")

    # --- loading --------------------------------------------------------------------

    def activate(self) -> None:
        """The section is shown: read the first time, and again if the store changed meanwhile."""
        if not self.active:
            self.active = True
            self.reload()
        else:
            self.catch_up()

    def reload(self) -> None:
        """Read the settings, the groups and the recipient again."""
        self._generation += 1
        self._load(self._generation)
        self.pane.load()

    def store_changed(self, change: StoreChanged) -> None:
        """New ledger events (from any process), once a burst is over: read again now,
        or when next shown."""
        if self.active and change.settled:
            self.reload_when_shown()

    @work(thread=True, exclusive=True, group="landing.settings")
    def _load(self, generation: int) -> None:
        with self.subgroups.store.read() as session:
            settings = PageSettings.of(landing.get_settings(session))
            active = [
                GroupRow.from_group(g) for g in groups.list_groups(session, status=STATUS_ACTIVE)
            ]
        self.post_message(self.Loaded(generation, settings, active))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.generation != self._generation:
            return  # an older read: a newer one (or a save) came after it
        # Unsaved edits survive a reload; a form with none shows what is stored now.
        clean = self.saved is None or not self.dirty()
        self._take_groups(message.groups, keep_form=not clean)
        self.saved = message.settings
        if clean:
            self.form.fill(message.settings)
        self._form_changed()

    def _take_groups(self, active: list[GroupRow], *, keep_form: bool) -> None:
        """New active groups and which are stored as shown; the form keeps its ticks if asked."""
        chosen = self.form.shown()
        listed = {g.id for g in self.groups}
        self.groups = active
        self.saved_shown = frozenset(g.id for g in active if g.shown_on_landing_page)
        if keep_form:
            # The admin's unsaved ticks stay; a group new to the list comes as stored.
            selection = {
                g.id
                for g in active
                if (g.id in chosen if g.id in listed else g.shown_on_landing_page)
            }
        else:
            selection = set(self.saved_shown)
        self.form.list_groups(self.groups, selection)

    # --- the form -------------------------------------------------------------------

    def dirty(self) -> bool:
        """Does the form differ from the stored settings?"""
        if self.saved is None:
            return False
        values = self.form.values()
        typed = any(
            getattr(values, name).strip() != getattr(self.saved, name).strip() for name in FIELDS
        )
        return typed or self.form.shown() != set(self.saved_shown)

    @on(Input.Changed, "LandingForm Input")
    @on(TextArea.Changed, "#landing-intro")
    @on(SelectionList.SelectedChanged, "#landing-groups")
    def _form_changed(self) -> None:
        """Check the fields, say whether they are saved, and redraw the preview from them."""
        if self.saved is None:
            return  # not filled yet
        values = self.form.values()
        self.form.check(values)
        dirty = self.dirty()
        self.form.show_state(saving=self.saving, dirty=dirty)
        self.set_class(dirty, "-dirty")
        shown = self.form.shown()
        self.form.show_groups_note(len(shown), len(self.groups))
        self.pane.show_draft(
            PageDraft(
                settings=values,
                groups=tuple(self.groups),
                shown=frozenset(shown),
                saved_shown=self.saved_shown,
                saved_base_url=self.saved.base_url,
                unsaved=dirty,
            )
        )

    # --- saving ---------------------------------------------------------------------

    def action_save(self) -> None:
        if self.saved is None or self.saving:
            return
        values = self.form.values()
        problems = self.form.check(values)
        if problems:
            self.form.focus_field(next(iter(problems)))
            self.notify(
                "Fix the fields marked in red first; nothing was saved.", severity="warning"
            )
            return
        if not self.dirty():
            self.notify("Nothing to save: the form matches the stored settings.")
            return
        self.form.show_error(FORM_ERROR, "")
        self.form.show_error(GROUPS_ERROR, "")
        self.saving = True
        self._generation += 1  # reads already on their way predate this save: drop them
        self.form.show_state(saving=True, dirty=True)
        self._save(values, frozenset(self.form.shown()))

    @work(thread=True, group="landing.write")
    def _save(self, values: PageSettings, shown: frozenset[int]) -> None:
        """Save the wording and the shown groups in one transaction, or neither."""
        actor = actors.actor_name()
        try:
            with self.subgroups.store.write() as session:
                row = landing.update_settings(
                    session=session,
                    actor=actor,
                    title=values.title,
                    intro=values.intro,
                    all_email_wording=values.all_email_wording,
                    confirmation_text=values.confirmation_text,
                    base_url=values.base_url,
                    source="console",
                )
                settings = PageSettings.of(row)
                landing.set_shown_groups(
                    session=session, actor=actor, group_ids=shown, source="console"
                )
                active = [
                    GroupRow.from_group(g)
                    for g in groups.list_groups(session, status=STATUS_ACTIVE)
                ]
            self.post_message(self.Saved(values, settings, active))
        except SubgroupsError as exc:
            self.post_message(self.Failed(exc.message, exc.field))
        except Exception as exc:  # the store failed (locked, gone): say so, keep the form
            self.post_message(self.Failed(f"The store could not save this: {exc}"))

    @on(Saved)
    def _saved(self, message: Saved) -> None:
        self.saving = False
        self._generation += 1
        unchanged_since = self.form.values() == message.sent
        self._take_groups(message.groups, keep_form=True)
        self.saved = message.settings
        if unchanged_since:
            # Show what was stored (trimmed; the base URL without a trailing /).
            self.form.fill(message.settings)
        self.notify("Landing page settings saved.")
        self._form_changed()

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.saving = False
        self._form_changed()
        self.form.show_error(self.form.error_for(message.field), message.text)
        if message.field is not None:
            self.form.focus_field(message.field)
        self.notify(message.text, title="Not saved", severity="error", markup=False)

    def action_revert(self) -> None:
        from app.ui.modals.confirm import ConfirmModal

        if self.saved is None or not self.dirty():
            self.notify("Nothing to revert: the form matches the stored settings.")
            return

        def answered(yes: bool | None) -> None:
            if yes and self.saved is not None:
                self.form.fill(self.saved)
                self.form.list_groups(self.groups, self.saved_shown)
                self._form_changed()

        self.app.push_screen(
            ConfirmModal(
                "Revert the landing page settings",
                "Discard the unsaved changes and show the stored settings again?",
                confirm_label="Revert",
            ),
            answered,
        )

    def action_edit_settings(self) -> None:
        self.form.focus_field("title")

    def action_leave_field(self) -> None:
        self.query_one("#landing-page-scroll").focus()

    # --- the preview's keys -------------------------------------------------------------

    def action_pick_recipient(self) -> None:
        self.pane.pick()

    def action_act_as_recipient(self) -> None:
        self.pane.act()

    def action_copy_link(self) -> None:
        self.pane.copy_link()
