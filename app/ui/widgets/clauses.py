"""The segment builder's clause editors: one box per condition, with its own count.

Each editor posts ``ClauseChanged`` whenever one of its controls changes; the
Segments section then rebuilds the rule and recounts in a worker.
"""

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Input, Select, SelectionList, Static

from app.core.errors import InvalidInput
from app.core.models import STATUS_ACTIVE
from app.core.segment_rules import (
    ALL,
    ANY,
    EXCLUDE,
    INCLUDE,
    OP_WORDS,
    OPS,
    Condition,
    EmailCondition,
    GroupsCondition,
    PropertyCondition,
)
from app.ui.messages import GroupRow
from app.ui.widgets.group_picker import GroupPicker, PickerOption

ALL_GROUPS = -1


class ClauseChanged(Message):
    """A clause editor's condition changed."""


class ClauseEditor(Vertical):
    """Base of the three editors: a title line with the clause's count."""

    KIND = ""

    def __init__(self) -> None:
        super().__init__(classes="clause")

    def title_bar(self) -> ComposeResult:
        with Horizontal(classes="clause-bar"):
            yield Static(self.KIND, classes="clause-kind")
            yield Static("…", classes="clause-count")

    def condition(self) -> Condition:
        """The condition as the controls say; InvalidInput when incomplete.

        Before its controls exist (just mounted), the condition it was opened with.
        """
        try:
            return self.read_controls()
        except NoMatches:  # its controls are still being mounted
            return self.initial_condition()

    def initial_condition(self) -> Condition:
        raise NotImplementedError

    def read_controls(self) -> Condition:
        raise NotImplementedError

    def show_count(self, text: str, *, error: bool = False) -> bool:
        """Show the clause's count; False when the clause is still mounting."""
        try:
            label = self.query_one(".clause-count", Static)
        except NoMatches:
            return False
        label.update(Content(text))
        label.set_class(error, "-error")
        return True

    def changed(self) -> None:
        self.post_message(ClauseChanged())


class GroupsClause(ClauseEditor):
    """Subscription Groups: Include or Exclude; All or chosen groups; ANY or ALL."""

    KIND = "Subscription Groups"

    def __init__(self, groups: list[GroupRow], condition: GroupsCondition | None = None) -> None:
        super().__init__()
        self.groups = groups
        self.initial = condition or GroupsCondition()

    def compose(self) -> ComposeResult:
        yield from self.title_bar()
        with Horizontal(classes="clause-controls"):
            yield Select(
                [(Content("Include"), INCLUDE), (Content("Exclude"), EXCLUDE)],
                value=self.initial.mode,
                allow_blank=False,
                compact=True,
                classes="clause-mode",
            )
            yield Select(
                [
                    (Content("people subscribed to any of"), ANY),
                    (Content("people subscribed to all of"), ALL),
                ],
                value=self.initial.match,
                allow_blank=False,
                compact=True,
                classes="clause-match",
            )
        chosen = set(self.initial.group_ids or ())
        options = [
            PickerOption("All (every active group)", ALL_GROUPS, self.initial.group_ids is None)
        ]
        for group in self.groups:
            if group.status == STATUS_ACTIVE:
                options.append(PickerOption(group.name, group.id, group.id in chosen))
            elif group.id in chosen:
                # An archived group already in a saved rule: shown, marked, still counted.
                options.append(PickerOption(f"{group.name} (archived)", group.id, True))
        yield GroupPicker(options, classes="clause-groups")

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.changed()

    @on(SelectionList.SelectionToggled)
    def _toggled(self, event: SelectionList.SelectionToggled[int]) -> None:
        event.stop()
        picker = self.query_one(GroupPicker)
        value = event.selection.value
        selected = set(picker.selected)
        if value == ALL_GROUPS and ALL_GROUPS in selected:
            # All replaces any chosen groups (also those the filter hides).
            for other in list(selected - {ALL_GROUPS}):
                picker.deselect(other)
        elif value != ALL_GROUPS and value in selected:
            picker.deselect(ALL_GROUPS)
        elif not picker.selected:
            picker.select(ALL_GROUPS)
        self.changed()

    def initial_condition(self) -> GroupsCondition:
        return self.initial

    def read_controls(self) -> GroupsCondition:
        mode = self.query_one(".clause-mode", Select).value
        match = self.query_one(".clause-match", Select).value
        if mode is Select.NULL or match is Select.NULL:
            return self.initial  # not mounted yet: the controls still show the initial rule
        selected = [v for v in self.query_one(GroupPicker).selected if v != ALL_GROUPS]
        return GroupsCondition(
            mode=str(mode),  # type: ignore[arg-type]
            group_ids=tuple(selected) if selected else None,
            match=str(match),  # type: ignore[arg-type]
        )


class PropertyClause(ClauseEditor):
    """A profile field or custom property compared with a value."""

    KIND = "Profile property"

    def __init__(
        self, condition: PropertyCondition | None = None, keys: list[str] | None = None
    ) -> None:
        super().__init__()
        self.initial = condition or PropertyCondition(key="", op="equals", values=())
        self.keys = keys or []

    def compose(self) -> ComposeResult:
        yield from self.title_bar()
        with Horizontal(classes="clause-controls"):
            hint = ", ".join(self.keys[:6]) or "country"
            yield Input(
                self.initial.key,
                placeholder=f"property ({hint})",
                compact=True,
                classes="clause-key",
            )
            yield Select(
                [(Content(OP_WORDS[op]), op) for op in OPS],
                value=self.initial.op,
                allow_blank=False,
                compact=True,
                classes="clause-op",
            )
            yield Input(
                ", ".join(self.initial.values),
                placeholder="value (one of: a, b, c)",
                compact=True,
                classes="clause-value",
            )

    @on(Input.Changed)
    @on(Select.Changed)
    def _control_changed(self, event: Message) -> None:
        event.stop()
        self.changed()

    def initial_condition(self) -> PropertyCondition:
        if not self.initial.key:
            raise InvalidInput("type a property name", field="key")
        return self.initial

    def read_controls(self) -> PropertyCondition:
        key = self.query_one(".clause-key", Input).value.strip()
        op_value = self.query_one(".clause-op", Select).value
        if op_value is Select.NULL:
            return self.initial_condition()  # still mounting
        op = str(op_value)
        raw = self.query_one(".clause-value", Input).value
        if not key:
            raise InvalidInput("type a property name", field="key")
        if op in ("is_set", "not_set"):
            return PropertyCondition(key=key, op=op, values=())
        values = (
            tuple(v.strip() for v in raw.split(",") if v.strip())
            if op == "one_of"
            else (raw.strip(),)
        )
        if not values or not values[0]:
            raise InvalidInput("type a value", field="value")
        return PropertyCondition(key=key, op=op, values=values)


class EmailClause(ClauseEditor):
    """The channel-wide email state."""

    KIND = "All email"

    def __init__(self, condition: EmailCondition | None = None) -> None:
        super().__init__()
        self.initial = condition or EmailCondition(state="unsubscribed")

    def compose(self) -> ComposeResult:
        yield from self.title_bar()
        yield Select(
            [
                (Content("people who did not unsubscribe from all email"), "subscribed"),
                (Content("people who unsubscribed from all email"), "unsubscribed"),
            ],
            value=self.initial.state,
            allow_blank=False,
            compact=True,
            classes="clause-email",
        )

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.changed()

    def initial_condition(self) -> EmailCondition:
        return self.initial

    def read_controls(self) -> EmailCondition:
        state = self.query_one(".clause-email", Select).value
        if state is Select.NULL:
            return self.initial  # still mounting
        return EmailCondition(state=str(state))  # type: ignore[arg-type]


def editor_for(condition: Condition, groups: list[GroupRow], keys: list[str]) -> ClauseEditor:
    """The editor that shows an existing condition."""
    if isinstance(condition, GroupsCondition):
        return GroupsClause(groups, condition)
    if isinstance(condition, PropertyCondition):
        return PropertyClause(condition, keys)
    return EmailClause(condition)
