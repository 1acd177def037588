"""In a browser (``subgroups serve``) the browser keeps some keys for itself: no
action of the console may be reachable only through one, and the key the
footer, help and the palette show first is one the browser leaves alone.

The bindings are collected from the code, not listed here: every widget,
screen and app class that the console's modules define or use (Textual's own
widgets included), with the bindings each inherits. A binding added later is
checked without touching this file.
"""

import importlib
import inspect
import pkgutil
from collections import defaultdict
from pathlib import Path

from browser_keys import RESERVED, reserved
from console_pilot import SIZE, settle, start
from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import CommandPalette
from textual.dom import DOMNode
from textual.widgets import DataTable, Input

import app.ui
from app.core import segments
from app.core.segment_rules import PropertyCondition, SegmentRule
from app.ui.modals.prompt import PromptModal
from app.ui.sections.segments import SegmentsSection

# Textual's own text-editing and scrolling keys that only a reserved key reaches,
# each with the way a browser user does the same thing.
FRAMEWORK_ONLY_RESERVED = {
    "delete_left_word": "Input's ctrl+w: backspace deletes the word too, a letter at a time",
    "page_left": "a scroll view's ctrl+pageup: left (and the scroll bar) scroll sideways",
    "page_right": "a scroll view's ctrl+pagedown: right (and the scroll bar) scroll sideways",
}


def console_classes() -> set[type[DOMNode]]:
    """Every DOM class the console's modules define or import (its widgets, Textual's
    widgets it composes, its screens, modals and the app), and the command palette."""
    found: set[type[DOMNode]] = {CommandPalette}
    for info in pkgutil.walk_packages(app.ui.__path__, "app.ui."):
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            # Textual's App itself is imported (to subclass, for types) but never run.
            if issubclass(value, DOMNode) and value is not App:
                found.add(value)
    return found


def own_bindings(cls: type[DOMNode]) -> list[Binding]:
    """The bindings a class declares itself (one per key)."""
    declared: list[BindingType] = list(cls.__dict__.get("BINDINGS", []))
    return list(Binding.make_bindings(declared))


def keys_by_action(cls: type[DOMNode]) -> dict[str, set[str]]:
    """Each action a node of this class answers to, and every key that reaches it
    (its own bindings and those it inherits, as Textual merges them)."""
    by_action: dict[str, set[str]] = defaultdict(set)
    for key, bindings in cls._merge_bindings().key_to_bindings.items():
        for binding in bindings:
            by_action[binding.action].add(key)
    return by_action


def declared_in_textual_only(cls: type[DOMNode], action: str) -> bool:
    return all(
        klass.__module__.startswith("textual.")
        for klass in cls.__mro__
        if any(b.action == action for b in own_bindings(klass))  # type: ignore[arg-type]
    )


def test_the_reserved_keys_are_chromiums_and_firefoxs_quit() -> None:
    # The issue names these four; the rest are the same commands' other keys.
    assert {"ctrl+n", "ctrl+t", "ctrl+w", "ctrl+q"} <= RESERVED
    assert reserved("ctrl+W") and not reserved("ctrl+p") and not reserved("f10")


def test_no_action_is_reachable_only_through_a_key_the_browser_keeps() -> None:
    classes = console_classes()
    names = {cls.__name__ for cls in classes}
    # The walk reaches the parts that matter (so an empty walk cannot pass).
    assert {
        "SubgroupsApp",
        "SegmentsSection",
        "LandingSection",
        "CampaignWizard",
        "HelpScreen",
        "LogLines",
        "Input",
        "TextArea",
    } <= names, names
    blocked: list[str] = []
    framework_seen: set[str] = set()
    for cls in sorted(classes, key=lambda c: c.__qualname__):
        for action, keys in keys_by_action(cls).items():
            if not keys or not all(reserved(key) for key in keys):
                continue
            if action in FRAMEWORK_ONLY_RESERVED and declared_in_textual_only(cls, action):
                framework_seen.add(action)
                continue
            blocked.append(f"{cls.__module__}.{cls.__qualname__}: {action} only on {sorted(keys)}")
    assert blocked == [], "\n".join(blocked)
    # The exceptions are still needed (Textual may give them another key one day).
    assert framework_seen == set(FRAMEWORK_ONLY_RESERVED)


def test_the_key_shown_first_is_one_the_browser_leaves() -> None:
    """The footer and the palette show a binding's first key, help lists it first."""
    shown_reserved = [
        f"{cls.__qualname__}: {binding.action} shows {binding.key}"
        for cls in console_classes()
        if cls.__module__.startswith("app.")
        for declared in cls.__dict__.get("BINDINGS", [])
        if isinstance(declared, Binding)
        for binding in [declared]
        if reserved(binding.key.split(",")[0])
    ]
    assert shown_reserved == []


async def test_f10_quits(sample_db: Path, make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("f10")
        await pilot.pause()
        assert app._exit, "f10 did not quit the console"


async def test_segments_rename_export_and_new_by_the_browser_keys(  # type: ignore[no-untyped-def]
    sample_db: Path, make_app, open_db, tmp_path: Path
) -> None:
    """On a saved segment: f2 renames it, ctrl+e exports its members, ctrl+l starts a new
    one (the keys a browser user has; ctrl+t, ctrl+w and ctrl+n open tabs and windows)."""
    check = open_db(sample_db)
    with check.write() as session:
        rule = SegmentRule((PropertyCondition("plan", "one_of", ("pro",)),))
        segments.save_segment(session=session, name="Pro plan", rule=rule, actor="test")
    app = make_app(sample_db)
    target = tmp_path / "members.csv"
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("3")
        await settle(pilot, lambda: bool(app.query(SegmentsSection)), what="the section")
        section = app.query_one(SegmentsSection)
        table = section.query_one("#segments-table", DataTable)
        await settle(pilot, lambda: table.row_count > 0, what="the saved segments")
        table.focus()
        await pilot.press("enter")
        await settle(pilot, lambda: section.segment_id is not None, what="the open segment")
        opened = section.segment_id

        await pilot.press("f2")
        await settle(pilot, lambda: isinstance(app.screen, PromptModal), what="the rename prompt")
        app.screen.query_one(Input).value = "Renamed with f2"
        await pilot.press("enter")
        await settle(pilot, lambda: section.segment_name == "Renamed with f2", what="the rename")
        with check.read() as session:
            assert segments.get_segment(session, "renamed with f2").id == opened

        await pilot.press("ctrl+e")
        await settle(pilot, lambda: isinstance(app.screen, PromptModal), what="the file prompt")
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await settle(
            pilot,
            lambda: target.exists() and not isinstance(app.screen, PromptModal),
            what="the export",
        )
        assert target.read_text(encoding="utf-8").startswith("identity,")

        await pilot.press("ctrl+l")
        await settle(pilot, what="a new segment")
        assert (section.segment_id, section.segment_name) == (None, "")
