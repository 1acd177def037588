"""The segment builder: a column of clause editors (Subscription Groups,
profile property, all email), each with its own count, the total, the plain
sentence and the first members.

Every change recounts in a worker. Results carry a generation number and a
late answer for an older rule is dropped, never shown over a newer one.
"""

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Static

from app.core import segments, text_rules
from app.core.errors import SubgroupsError
from app.core.segment_index import BuildCancelled, SegmentCount
from app.core.segment_rules import EmailCondition, GroupsCondition, SegmentRule
from app.ui.context import console
from app.ui.messages import GroupRow
from app.ui.widgets.clauses import (
    ClauseChanged,
    ClauseEditor,
    EmailClause,
    GroupsClause,
    PropertyClause,
    editor_for,
)

PREVIEW_ROWS = 20
PREVIEW_COLUMNS = ("Identity", "Name", "All email", "Subscribed to")


def set_columns(
    table: DataTable,  # type: ignore[type-arg]
    labels: tuple[str, ...],
    rows: list[list[str]],
    cap: int = 40,
) -> None:
    """Replace the table's columns with widths measured here from the rows.

    DataTable measures auto-width columns on idle; refilled quickly, it could
    keep a column at its header's width and cut every cell ("Mari…").
    """
    table.clear(columns=True)
    for i, label in enumerate(labels):
        width = max([len(label)] + [len(row[i]) for row in rows])
        table.add_column(label, width=min(width, cap))


class ClauseScroll(VerticalScroll):
    """The conditions' scroll. It says when its contents grew (a condition mounted and then
    laid out, a count line filled in) or its view shrank (the sentence above took a line):
    a scroll made before that may leave the condition being edited partly out of view."""

    class Reflowed(Message):
        """The contents' height or the view's changed."""

    def watch_virtual_size(self) -> None:
        self.post_message(self.Reflowed())

    def on_resize(self) -> None:
        self.post_message(self.Reflowed())


class SegmentBuilder(Vertical):
    """The rule being built: its conditions, their counts, the total and the members."""

    @dataclass
    class Counted(Message):
        generation: int
        result: SegmentCount | None
        sentence: str
        error: str | None = None
        rule: SegmentRule | None = None  # the rule counted

    @dataclass
    class Previewed(Message):
        generation: int
        members: list[segments.Member]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # What the clause editors offer: the groups and the profile property keys.
        self.groups: list[GroupRow] = []
        self.keys: list[str] = []
        self.generation = 0
        self._recount_timer: Timer | None = None
        # The rule whose counts are on screen (None: none yet).
        self.shown_rule: SegmentRule | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="segment-title")
        yield Static("", id="segment-sentence")
        yield Static("", id="segment-total")
        yield ClauseScroll(id="segment-clauses")
        yield Static("Members", classes="subtitle", id="segment-members-title")
        yield DataTable(id="segment-preview", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#segment-preview", DataTable).add_columns(*PREVIEW_COLUMNS)
        self.show_title(None)

    def show_title(self, name: str | None) -> None:
        """The open segment's name (None: a new one, not saved)."""
        title = self.query_one("#segment-title", Static)
        if name is None:
            title.update(Content("New segment (not saved) · ctrl+s saves"))
        else:
            title.update(Content.assemble(("Segment: ", "dim"), (name, "bold")))

    def show_counting(self) -> None:
        self.query_one("#segment-total", Static).update(
            Content("Counting… (the first count reads the whole store)")
        )

    def take_choices(self, groups: list[GroupRow], keys: list[str]) -> None:
        """New groups and property keys: the first time, start with one groups condition;
        later, count again."""
        first = not self.groups
        self.groups, self.keys = groups, keys
        if first and not self.query(ClauseEditor):
            self.set_rule(SegmentRule((GroupsCondition(),)))
        else:
            self.recount()

    def set_rule(self, rule: SegmentRule) -> None:
        container = self.query_one("#segment-clauses", VerticalScroll)
        container.remove_children()
        container.mount_all([editor_for(c, self.groups, self.keys) for c in rule.conditions])
        self.call_after_refresh(self.recount)

    def _editors(self) -> list[ClauseEditor]:
        return list(self.query_one("#segment-clauses").query_children(ClauseEditor))

    def current_rule(self) -> tuple[SegmentRule, list[str | None]]:
        """The rule the editors show, and per editor the reason it is incomplete (or None)."""
        conditions = []
        problems: list[str | None] = []
        for editor in self._editors():
            try:
                conditions.append(editor.condition())
                problems.append(None)
            except SubgroupsError as exc:
                problems.append(exc.message)
        return SegmentRule(tuple(conditions)), problems

    def counts_are_current(self) -> bool:
        """Whether the counts on screen are those of the rule the editors show now."""
        return self.shown_rule is not None and self.shown_rule == self.current_rule()[0]

    @on(ClauseChanged)
    def _clause_changed(self) -> None:
        # Toggling fast sends a burst: count once the keys pause a moment.
        if self._recount_timer is not None:
            self._recount_timer.stop()
        self._recount_timer = self.set_timer(0.08, self.recount)

    def recount(self) -> None:
        self.generation += 1
        rule, problems = self.current_rule()
        for editor, problem in zip(self._editors(), problems, strict=True):
            if problem:
                editor.show_count(problem, error=True)
        if any(problems):
            self.query_one("#segment-total", Static).update(
                Content("Finish the highlighted condition to count.")
            )
            return
        self._count(self.generation, rule)

    @work(thread=True, exclusive=True, group="segments.count")
    def _count(self, generation: int, rule: SegmentRule) -> None:
        store = console(self).store
        try:
            result = segments.count(store, rule, cancelled=self._cancelled)
            with store.read() as session:
                sentence = segments.sentence(session, rule)
            self.post_message(self.Counted(generation, result, sentence, rule=rule))
        except SubgroupsError as exc:
            self.post_message(self.Counted(generation, None, "", exc.message))
            return
        except BuildCancelled:
            return
        self._preview(generation, rule)

    def _cancelled(self) -> bool:
        """Is the console quitting? (Then a long index build stops.)

        Not the worker's own flag: a newer count cancels an older worker, and
        throwing away a half-done build would only start it again.
        """
        return console(self).closing.is_set()

    def _preview(self, generation: int, rule: SegmentRule) -> None:
        found = segments.members(
            console(self).store, rule, limit=PREVIEW_ROWS, cancelled=self._cancelled
        )
        self.post_message(self.Previewed(generation, found))

    @on(Counted)
    def _counted(self, message: Counted) -> None:
        if message.generation != self.generation:
            return  # an older rule's answer: a newer count is on its way
        total = self.query_one("#segment-total", Static)
        if message.result is None:
            total.update(Content(message.error or "Cannot count this rule."))
            return
        result = message.result
        shown = [
            editor.show_count(f"{n:,} people")
            for editor, n in zip(self._editors(), result.clauses, strict=False)
        ]
        if not all(shown):
            # A clause was still mounting and could not show its count: count again.
            self.set_timer(0.05, self.recount)
        share = f" ({result.total / result.profiles:.1%})" if result.profiles else ""
        total.update(
            Content.assemble(
                ("Total: ", "bold"),
                (f"{result.total:,}", "bold"),
                f" of {result.profiles:,} profiles{share}",
            )
        )
        self.query_one("#segment-sentence", Static).update(Content(message.sentence))
        self.shown_rule = message.rule

    @on(ClauseScroll.Reflowed)
    def _reflowed(self) -> None:
        # Once laid out: keep the condition being edited in view.
        self.call_after_refresh(self._keep_focused_editor_in_view)

    def _keep_focused_editor_in_view(self) -> None:
        focused = self.screen.focused
        editor = next(
            (e for e in self._editors() if focused is not None and focused in e.walk_children()),
            None,
        )
        if editor is None or focused is None:
            return
        scroll = self.query_one("#segment-clauses", VerticalScroll)
        # All of it when it fits, else the control that has the focus.
        fits = editor.outer_size.height <= scroll.scrollable_content_region.height
        scroll.scroll_to_widget(editor if fits else focused, animate=False)

    @on(Previewed)
    def _previewed(self, message: Previewed) -> None:
        if message.generation != self.generation:
            return
        table = self.query_one("#segment-preview", DataTable)
        rows = []
        for member in message.members:
            subscribed = [name for name, state in member.states if state == "subscribed"]
            rows.append(
                [
                    text_rules.shown(member.identity),
                    text_rules.shown(member.name),
                    member.all_email,
                    f"{len(subscribed)}: " + ", ".join(subscribed),
                ]
            )
        set_columns(table, PREVIEW_COLUMNS, rows, cap=60)
        for identity, name, all_email, groups_text in rows:
            table.add_row(
                Text(identity),
                Text(name),
                all_email,
                Text(
                    groups_text,
                    no_wrap=True,
                    overflow="ellipsis",
                ),
            )

    async def _add(self, editor: ClauseEditor) -> None:
        # Once mounted (its controls exist) and laid out (it has a place to scroll to),
        # the new condition gets the focus and is scrolled to the top of the view.
        await self.query_one("#segment-clauses", VerticalScroll).mount(editor)
        self.call_after_refresh(self._focus_editor, editor)
        self.call_after_refresh(self.recount)

    def _focus_editor(self, editor: ClauseEditor) -> None:
        focusable = editor.query("Select, Input, SelectionList")
        if focusable:
            focusable.first().focus(scroll_visible=False)
        self.query_one("#segment-clauses", VerticalScroll).scroll_to_widget(
            editor, animate=False, top=True
        )

    async def add_groups(self) -> None:
        await self._add(GroupsClause(self.groups))

    async def add_property(self) -> None:
        await self._add(PropertyClause(keys=self.keys))

    async def add_email(self) -> None:
        await self._add(EmailClause(EmailCondition(state="unsubscribed")))

    async def remove_clause(self) -> None:
        """Remove the condition that has the focus (or say how)."""
        focused = self.screen.focused
        editor = next(
            (e for e in self._editors() if focused is not None and focused in e.walk_children()),
            None,
        )
        if editor is None:
            self.notify(
                "Move into a condition first (tab), then ctrl+r removes it.", severity="warning"
            )
            return
        await editor.remove()
        self.recount()

    def start_new(self) -> None:
        """A new, empty segment: one groups condition."""
        self.show_title(None)
        self.set_rule(SegmentRule((GroupsCondition(),)))
