"""The right half of the Landing page section: the page as one recipient sees it.

A picker chooses the recipient (blank: the first profile); the page is drawn
from the settings form as it stands, saved or not (a ``PageDraft``), with
the person's effective state in each shown group and their real links.
Ticking the page's boxes and pressing ctrl+o acts as that person, after
asking: ``recipient.act_as_recipient`` (app/core) with Source ``console``, so
each change is one ``Channel Unsubscribed`` event, as if they had saved the page.

Reads and writes run in workers; a recipient read carries a generation
number and an answer for an older pick is dropped.
"""

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Button, Checkbox, Input, Label, Static

from app.core import actors, landing, profiles, recipient, text_rules, tokens
from app.core.errors import SubgroupsError
from app.core.landing import PageSettings
from app.core.models import SUBSCRIBED, UNSUBSCRIBED
from app.ui.context import Console, console
from app.ui.messages import GroupRow
from app.ui.widgets.landing_preview import GroupChoice, PageGroupText, PagePreview

RECIPIENT_DELAY = 0.25  # seconds of quiet typing before the preview reads the recipient


@dataclass(frozen=True)
class PageDraft:
    """The page as the settings form holds it: what the preview draws."""

    settings: PageSettings
    # Every active group, by name; ``shown`` are those ticked in the form.
    groups: tuple[GroupRow, ...]
    shown: frozenset[int]
    # As stored: the groups the real page shows, and its base URL.
    saved_shown: frozenset[int]
    saved_base_url: str
    unsaved: bool


@dataclass(frozen=True)
class Recipient:
    """The person the preview shows, as plain data (safe to hand between threads)."""

    profile_id: int
    identity: str
    email: str | None
    name: str
    all_email: str
    # Effective state per group id, every group (the form may show one not saved as shown).
    states: dict[int, str]
    # How the picker found them ("the first profile", …).
    found_as: str
    # Their link token (no campaign), or why there is none.
    token: str | None
    token_error: str | None = None


class RecipientPane(Vertical):
    """The recipient picker, their page, and acting as them."""

    @dataclass
    class Loaded(Message):
        generation: int
        recipient: Recipient | None
        note: str = ""

    @dataclass
    class Acted(Message):
        identity: str
        events: int
        error: str | None = None

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.draft: PageDraft | None = None
        self.recipient: Recipient | None = None
        self.note = ""
        # The boxes the admin changed: group id -> ticked; all email -> unsubscribed.
        self.choices: dict[int, bool] = {}
        self.all_email_choice: bool | None = None
        # The person's choices were just saved: the page shows its confirmation text.
        self.confirmed = False
        self._generation = 0
        self._timer: Timer | None = None

    @property
    def subgroups(self) -> Console:
        return console(self)

    def compose(self) -> ComposeResult:
        with Horizontal(id="landing-recipient-bar"):
            yield Label("Preview as ", id="landing-recipient-label")
            yield Input(placeholder="identity, email or name", id="landing-recipient", compact=True)
        yield Static("", id="landing-recipient-status")
        # A focus stop of its own, so the arrows can scroll down to the links.
        with VerticalScroll(id="landing-page-scroll"):
            yield PagePreview(id="landing-page")
            yield Static("", id="landing-links")

    # --- the recipient --------------------------------------------------------------

    def pick(self) -> None:
        """Move to the picker, its text selected, ready to type another person."""
        box = self.query_one("#landing-recipient", Input)
        box.focus()
        box.select_all()

    @on(Input.Changed, "#landing-recipient")
    def _typed(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(RECIPIENT_DELAY, self.load)

    @on(Input.Submitted, "#landing-recipient")
    def _submitted(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.load()

    def load(self) -> None:
        """Read the recipient the picker names (blank: the first profile)."""
        self._generation += 1
        self._load(self._generation, self.query_one("#landing-recipient", Input).value)

    @work(thread=True, exclusive=True, group="landing.recipient")
    def _load(self, generation: int, query: str) -> None:
        try:
            with self.subgroups.store.read() as session:
                profile, found_as = recipient.find_recipient(session, query)
                if profile is None:
                    self.post_message(self.Loaded(generation, None, found_as))
                    return
                assert profile.id is not None
                page = landing.page_for(session, profile.id)
                view = profiles.profile_view(session, profile.identity, history_limit=0)
                binding = tokens.store_binding(session)
        except SubgroupsError as exc:
            self.post_message(self.Loaded(generation, None, exc.message))
            return
        states = {g.group_id: g.effective for g in view.groups}
        states.update({g.id: g.state for g in page.groups})
        token: str | None = None
        token_error: str | None = None
        try:
            token = tokens.load_keyring().sign(page.profile_id, store=binding)
        except SubgroupsError as exc:
            token_error = exc.message
        except OSError as exc:
            token_error = f"cannot read the link keyring: {exc.strerror or exc}"
        person = Recipient(
            profile_id=page.profile_id,
            identity=page.identity,
            email=page.email,
            name=page.name,
            all_email=page.all_email,
            states=states,
            found_as=found_as,
            token=token,
            token_error=token_error,
        )
        self.post_message(self.Loaded(generation, person))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.generation != self._generation:
            return  # an older pick: the newer one is on its way
        new = message.recipient
        if new is None or self.recipient is None or new.profile_id != self.recipient.profile_id:
            # Another person: their page starts from their own choices.
            self.choices.clear()
            self.all_email_choice = None
            self.confirmed = False
        self.recipient = new
        self.note = message.note
        # Changed boxes that now match the person's state: they did it, or we did.
        for group_id, ticked in list(self.choices.items()):
            if ticked == self._subscribed(group_id):
                del self.choices[group_id]
        if self.all_email_choice == self._all_email_now():
            self.all_email_choice = None
        self.render_page()

    def _subscribed(self, group_id: int) -> bool:
        """Is the recipient subscribed to the group now? (No recipient: the group's default.)"""
        if self.recipient is not None and group_id in self.recipient.states:
            return self.recipient.states[group_id] == SUBSCRIBED
        groups = self.draft.groups if self.draft is not None else ()
        policy = next((g.policy for g in groups if g.id == group_id), "")
        return profiles.effective_state(policy, None) == SUBSCRIBED

    def _all_email_now(self) -> bool:
        """Is the recipient unsubscribed from all email now?"""
        return self.recipient is not None and self.recipient.all_email == UNSUBSCRIBED

    # --- drawing the page -----------------------------------------------------------

    def show_draft(self, draft: PageDraft) -> None:
        """The settings form changed: draw the page from it."""
        self.draft = draft
        self.render_page()

    def render_page(self) -> None:
        """Draw the page: the draft's wording and groups, the person's states and changes."""
        draft = self.draft
        if draft is None:
            return  # the settings are not loaded yet
        preview = self.query_one(PagePreview)
        preview.border_title = (
            "Their page · with your unsaved settings" if draft.unsaved else "Their page"
        )
        values = draft.settings
        preview.show_wording(
            title=values.title,
            intro=values.intro,
            all_email_wording=values.all_email_wording,
            confirmation_text=values.confirmation_text,
            confirmed=self.confirmed,
        )
        checked = {g.id: self.choices.get(g.id, self._subscribed(g.id)) for g in draft.groups}
        preview.set_groups(
            [PageGroupText(g.id, g.name, g.description) for g in draft.groups], checked
        )
        preview.show_choices(
            shown=draft.shown,
            checked=checked,
            changed=set(self.choices),
            all_email_unsubscribed=(
                self.all_email_choice
                if self.all_email_choice is not None
                else self._all_email_now()
            ),
            all_email_changed=self.all_email_choice is not None,
        )
        preview.show_pending(len(self.changes()))
        self._show_recipient(preview)
        self._show_links()

    def _show_recipient(self, preview: PagePreview) -> None:
        status = self.query_one("#landing-recipient-status", Static)
        person = self.recipient
        if person is None:
            status.update(Content.styled(self.note or "Loading…", "$foreground-muted"))
            preview.show_recipient(
                Content.styled("Preferences for (no recipient)", "$foreground-muted")
            )
            return
        parts = [Content.styled(text_rules.shown(person.name or person.identity), "bold")]
        if person.email and person.email != person.identity:
            parts.append(Content(text_rules.shown(person.email)))
        parts.append(Content(text_rules.shown(person.identity)))
        line = Content(" · ").join(parts)
        if person.found_as:
            line = Content.assemble(
                line, Content.styled(f" ({person.found_as})", "$foreground-muted")
            )
        status.update(line)
        preview.show_recipient(
            Content.assemble("Preferences for ", (person.email or person.identity, "bold"))
        )

    def _link_base(self) -> tuple[str | None, bool]:
        """The base URL the links use (the form's, when valid) and whether it is unsaved."""
        if self.draft is None:
            return None, False
        try:
            base = landing.clean_setting("base_url", self.draft.settings.base_url)
        except SubgroupsError:
            return self.draft.saved_base_url, False
        return base, base != self.draft.saved_base_url

    def preferences_link(self) -> str | None:
        """The recipient's manage-preferences link, if there is one."""
        base, _ = self._link_base()
        if self.recipient is None or self.recipient.token is None or base is None:
            return None
        return tokens.preferences_url(base, self.recipient.token)

    def _show_links(self) -> None:
        links = self.query_one("#landing-links", Static)
        person = self.recipient
        base, unsaved = self._link_base()
        if person is None or base is None:
            links.update("")
            return
        if person.token is None:
            links.update(Content.styled(f"No links: {person.token_error or 'no token'}", "$error"))
            return
        heading = "Their links (no campaign; ctrl+l copies the first)"
        if unsaved:
            heading += " · unsaved base URL"
        links.update(
            Content.assemble(
                (heading, "bold"),
                "\nPreferences: ",
                tokens.preferences_url(base, person.token),
                "\nUnsubscribe (from all email): ",
                tokens.unsubscribe_url(base, person.token),
            )
        )

    @on(Checkbox.Changed, "#landing-page Checkbox")
    def _box_changed(self, event: Checkbox.Changed) -> None:
        """The admin ticked or unticked a box on the page: remember it as a change."""
        box = event.checkbox
        if box.id == "page-all-email":
            self.all_email_choice = None if event.value == self._all_email_now() else event.value
        elif isinstance(box.parent, GroupChoice):
            group_id = box.parent.group_id
            if event.value == self._subscribed(group_id):
                self.choices.pop(group_id, None)
            else:
                self.choices[group_id] = event.value
        else:
            return
        self.confirmed = False
        self.render_page()

    # --- acting as the recipient ----------------------------------------------------------

    def changes(self) -> list[tuple[str, str, str]]:
        """(what, from, to) for each box on the page that differs from the person's state."""
        found = []
        shown = self.draft.shown if self.draft is not None else frozenset()
        for group in self.draft.groups if self.draft is not None else ():
            if group.id in shown and group.id in self.choices:
                now = SUBSCRIBED if self._subscribed(group.id) else UNSUBSCRIBED
                wanted = SUBSCRIBED if self.choices[group.id] else UNSUBSCRIBED
                found.append((group.name, now, wanted))
        if self.all_email_choice is not None:
            now = UNSUBSCRIBED if self._all_email_now() else SUBSCRIBED
            wanted = UNSUBSCRIBED if self.all_email_choice else SUBSCRIBED
            found.append(("All email", now, wanted))
        return found

    @on(Button.Pressed, "#page-save")
    def act(self) -> None:
        """Save the page's changed boxes as the recipient's choices, after asking."""
        from app.ui.modals.confirm import ConfirmModal

        person, draft = self.recipient, self.draft
        if person is None or draft is None:
            self.notify("Choose a recipient first (ctrl+r).", severity="warning")
            return
        if draft.shown != draft.saved_shown:
            self.notify(
                "Save the settings first (ctrl+s): the preview shows other groups than the "
                "real page, and acting on it could change choices the person never saw.",
                severity="warning",
                timeout=8,
            )
            return
        changes = self.changes()
        if not changes:
            self.notify(
                "Nothing to save: the boxes show the person's current choices. "
                "Tick or untick one first.",
                severity="warning",
            )
            return
        message = Content.assemble(
            "Save these choices as ",
            (person.email or person.identity, "bold"),
            "? This changes a real person's consent:\n",
            *[
                Content.assemble("\n  ", (what, "bold"), f": {now} → {wanted}")
                for what, now, wanted in changes
            ],
            "\n\nEach change is a Channel Unsubscribed event with Source console and "
            f"Actor {actors.actor_name()}.",
        )
        group_changes = {g: ticked for g, ticked in self.choices.items() if g in draft.saved_shown}
        all_email = (
            None
            if self.all_email_choice is None
            else (UNSUBSCRIBED if self.all_email_choice else SUBSCRIBED)
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._act(person, group_changes, all_email, draft.saved_shown)

        self.app.push_screen(
            ConfirmModal("Act as the recipient", message, confirm_label="Save as them"), answered
        )

    @work(thread=True, group="landing.write")
    def _act(
        self,
        person: Recipient,
        group_changes: dict[int, bool],
        all_email: str | None,
        page_ids: frozenset[int],
    ) -> None:
        """Apply the admin's changes over the person's states as they are in the transaction.

        Only the boxes the admin changed are applied: a group the person
        changed themselves since the preview was read keeps their choice.
        """
        try:
            with self.subgroups.store.write() as session:
                # Locks the person: a change they commit now waits for this save.
                events = recipient.act_as_recipient(
                    session=session,
                    profile_id=person.profile_id,
                    group_choices=group_changes,
                    all_email=all_email,
                    page_group_ids=page_ids,
                    actor=actors.actor_name(),
                )
            self.post_message(self.Acted(person.identity, len(events)))
        except SubgroupsError as exc:
            self.post_message(self.Acted(person.identity, 0, exc.message))
        except Exception as exc:  # the store failed: say so; nothing was saved
            self.post_message(
                self.Acted(person.identity, 0, f"The store could not save this: {exc}")
            )

    @on(Acted)
    def _acted(self, message: Acted) -> None:
        if message.error is not None:
            self.notify(message.error, title="Not saved", severity="error", markup=False)
        else:
            self.choices.clear()
            self.all_email_choice = None
            self.confirmed = True
            changes = f"{message.events} change{'s' if message.events != 1 else ''}"
            self.notify(f"Saved {changes} as {message.identity} (Source console).", markup=False)
        self.load()
        self.render_page()

    def copy_link(self) -> None:
        """Copy the preferences link to the clipboard (OSC 52: the terminal must allow it)."""
        link = self.preferences_link()
        if link is None:
            self.notify("No link to copy: choose a recipient first.", severity="warning")
            return
        self.app.copy_to_clipboard(link)
        self.notify("Copied the preferences link (if your terminal allows clipboard access).")
