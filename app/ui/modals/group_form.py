"""The create / edit form for a subscription group, with inline validation.

Editing a group's policy shows, under the policy, how many people's
effective state it flips (those who never chose follow the policy), counted
in a worker; saving such a change asks first (issue 8: a policy change never
flips consent silently).
"""

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from app.core import actors, groups
from app.core.errors import SubgroupsError
from app.core.models import POLICY_OPT_IN, POLICY_OPT_OUT
from app.core.store import Store
from app.ui.messages import GroupRow
from app.ui.modals.confirm import ConfirmModal

POLICY_OPTIONS = [
    (Content("Opt-out: subscribed by default"), POLICY_OPT_OUT),
    (Content("Opt-in: not subscribed until they say yes"), POLICY_OPT_IN),
]


class GroupFormModal(ModalScreen[GroupRow | None]):
    """Create a group (``group`` None) or edit one. Escape cancels; ctrl+s saves."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="group_form.cancel"),
        Binding("ctrl+s", "save", "Save", id="group_form.save"),
    ]

    @dataclass
    class Saved(Message):
        """The worker saved the group."""

        group: GroupRow

    @dataclass
    class Failed(Message):
        """The service refused; ``field`` says which input the message is about."""

        message: str
        field: str | None

    @dataclass
    class PolicyCounted(Message):
        """What the chosen policy would flip (``then_save``: the count was for Save)."""

        change: groups.PolicyChange | None
        then_save: bool
        error: str | None = None

    def __init__(
        self, store: Store, group: GroupRow | None = None, *, active_count: int | None = None
    ) -> None:
        super().__init__()
        self.store = store
        self.group = group
        self.active_count = active_count

    def compose(self) -> ComposeResult:
        editing = self.group is not None
        title = f"Edit group {self.group.name!r}" if self.group else "New subscription group"
        with Vertical(id="group-form", classes="dialog"):
            yield Static(Content(title), classes="dialog-title")
            at_limit = (
                not editing
                and self.active_count is not None
                and self.active_count >= groups.MAX_ACTIVE_GROUPS
            )
            yield Static(
                Content(groups.limit_message(self.active_count or 0)) if at_limit else "",
                id="form-error",
                classes="form-error" + ("" if at_limit else " -empty"),
            )
            yield Label("Name (1-64 characters, unique)", classes="field-label")
            yield Input(
                self.group.name if self.group else "",
                id="name",
                placeholder="e.g. Newsletter",
                compact=True,
            )
            yield Static("", id="name-error", classes="field-error -empty")
            yield Label(
                f"Description (up to {groups.DESCRIPTION_MAX} characters)", classes="field-label"
            )
            yield Input(
                self.group.description if self.group else "",
                id="description",
                placeholder="What people get from this group",
                compact=True,
            )
            yield Static("", id="description-error", classes="field-error -empty")
            yield Label("Default policy", classes="field-label")
            yield Select(
                POLICY_OPTIONS,
                value=self.group.policy if self.group else POLICY_OPT_OUT,
                allow_blank=False,
                id="policy",
                compact=True,
            )
            yield Static("", id="policy-effect", classes="-empty")
            yield Checkbox(
                "Shown on the landing page",
                value=self.group.shown_on_landing_page if self.group else True,
                id="shown",
                compact=True,
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def _show(self, widget_id: str, message: str) -> None:
        widget = self.query_one(f"#{widget_id}", Static)
        widget.update(Content(message))
        widget.set_class(not message, "-empty")

    def _validate(self) -> bool:
        """Check the fields that need no database; show each problem under its field."""
        ok = True
        try:
            groups.clean_name(self.query_one("#name", Input).value)
            self._show("name-error", "")
        except SubgroupsError as exc:
            self._show("name-error", exc.message)
            ok = False
        try:
            groups.clean_description(self.query_one("#description", Input).value)
            self._show("description-error", "")
        except SubgroupsError as exc:
            self._show("description-error", exc.message)
            ok = False
        return ok

    @on(Input.Changed)
    def _field_changed(self) -> None:
        self._validate()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    def _policy(self) -> str:
        return str(self.query_one("#policy", Select).value)

    def _policy_changes(self) -> bool:
        return self.group is not None and self._policy() != self.group.policy

    @on(Select.Changed, "#policy")
    def _policy_changed(self) -> None:
        if self._policy_changes():
            self._show("policy-effect", "Counting who this changes…")
            self._count_policy(self._policy(), then_save=False)
        else:
            self._show("policy-effect", "")

    @work(thread=True, exclusive=True, group="group_form.count")
    def _count_policy(self, policy: str, *, then_save: bool) -> None:
        assert self.group is not None
        try:
            with self.store.read() as session:
                change = groups.policy_change(session, group_id=self.group.id, policy=policy)
            self.post_message(self.PolicyCounted(change, then_save))
        except SubgroupsError as exc:
            self.post_message(self.PolicyCounted(None, then_save, exc.message))
        except Exception as exc:  # the store failed (locked, gone): say so, keep the form
            self.post_message(self.PolicyCounted(None, then_save, f"Cannot count: {exc}"))

    @staticmethod
    def _effect(change: groups.PolicyChange) -> str:
        if not change.affected:
            return "Nobody's state changes: everyone has chosen for this group."
        text = change.describe()
        return text[0].upper() + text[1:] + "."

    @on(PolicyCounted)
    def _policy_counted(self, message: PolicyCounted) -> None:
        if message.change is None:
            self._show("policy-effect", "")
            self._show("form-error", message.error or "Cannot count who this changes.")
            self.query_one("#save", Button).disabled = False
            return
        change = message.change
        if change.new_policy != self._policy():
            return  # an older choice's count
        self._show("policy-effect", self._effect(change))
        if not message.then_save:
            return
        if not change.affected:
            self._save_fields(accept_consent_change=False)
            return
        question = Content.assemble(
            self._effect(change),
            " People who chose keep their choice. Change the policy?",
        )
        self.app.push_screen(
            ConfirmModal("Change the default policy", question, confirm_label="Change"),
            self._policy_answered,
        )

    def _policy_answered(self, yes: bool | None) -> None:
        if yes:
            self._save_fields(accept_consent_change=True)
        else:
            self.query_one("#save", Button).disabled = False
            self.query_one("#policy", Select).focus()

    def action_save(self) -> None:
        if not self._validate():
            return
        self._show("form-error", "")
        self.query_one("#save", Button).disabled = True
        if self._policy_changes():
            # Counted afresh (the store may have changed since the form opened), then asked.
            self._count_policy(self._policy(), then_save=True)
        else:
            self._save_fields(accept_consent_change=False)

    def _save_fields(self, *, accept_consent_change: bool) -> None:
        self._save(
            name=self.query_one("#name", Input).value,
            description=self.query_one("#description", Input).value,
            policy=self._policy(),
            shown=self.query_one("#shown", Checkbox).value,
            accept_consent_change=accept_consent_change,
        )

    @work(thread=True, exclusive=True)
    def _save(
        self, *, name: str, description: str, policy: str, shown: bool, accept_consent_change: bool
    ) -> None:
        try:
            with self.store.write() as session:
                if self.group is None:
                    saved = groups.create_group(
                        session=session,
                        name=name,
                        description=description,
                        policy=policy,
                        shown_on_landing_page=shown,
                        actor=actors.actor_name(),
                        source="console",
                    )
                else:
                    saved = groups.update_group(
                        session=session,
                        group_id=self.group.id,
                        name=name,
                        description=description,
                        policy=policy,
                        shown_on_landing_page=shown,
                        accept_consent_change=accept_consent_change,
                        actor=actors.actor_name(),
                        source="console",
                    )
            self.post_message(self.Saved(GroupRow.from_group(saved)))
        except SubgroupsError as exc:
            self.post_message(self.Failed(exc.message, exc.field))
        except Exception as exc:  # the store failed (locked, gone): say so, keep the form
            self.post_message(self.Failed(f"The store could not save this: {exc}", None))

    @on(Saved)
    def _on_saved(self, message: Saved) -> None:
        self.dismiss(message.group)

    @on(Failed)
    def _on_failed(self, message: Failed) -> None:
        self.query_one("#save", Button).disabled = False
        if message.field in ("name", "description"):
            self._show(f"{message.field}-error", message.message)
            self.query_one(f"#{message.field}", Input).focus()
        else:
            self._show("form-error", message.message)
