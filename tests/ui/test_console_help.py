"""Help (F1 and ?) lists keys that really work where it says, and the command
palette finds the sections' actions by name."""

from dataclasses import replace
from pathlib import Path

from console_pilot import SIZE, settle, show_section, start, table_rows, type_text
from textual.binding import Binding
from textual.command import CommandList, CommandPalette
from textual.widgets import DataTable

from app.ui.app import SubgroupsApp
from app.ui.modals.change_state import ChangeStateModal
from app.ui.modals.confirm import ConfirmModal
from app.ui.modals.group_form import GroupFormModal
from app.ui.modals.help import HelpScreen
from app.ui.sections.groups import GroupsSection
from app.ui.widgets.event_log import LogLines


def live_keys(app: SubgroupsApp) -> dict[str, tuple[str, str, type]]:
    """What works now: displayed key -> (action, what the binding says, class of its node)."""
    result = {}
    for active in app.active_bindings.values():
        if active.enabled:
            binding = active.binding
            text = binding.tooltip or binding.description
            result[app.get_key_display(binding)] = (binding.action, text, type(active.node))
    return result


def assert_listed_keys_work(
    app: SubgroupsApp, rows: list[list[str]], where: str, owner: type, *, same_text: bool = True
) -> None:
    """Every key help lists under ``where`` is bound and enabled now, on ``owner``; for
    the owner's own bindings (``same_text``), help says what the binding's tooltip says."""
    listed = [row for row in rows if row[0] == where]
    assert listed, f"help lists nothing for {where}"
    live = live_keys(app)
    own = {
        app.get_key_display(replace(binding, key=key)): binding.tooltip or binding.description
        for binding in owner.BINDINGS
        if isinstance(binding, Binding)
        for key in binding.key.split(",")
    }
    for _, keys, text in listed:
        for key in keys.split(", "):
            assert key in live, f"help says {key!r} works in {where}, but it is not bound there"
            _, live_text, node_class = live[key]
            assert issubclass(node_class, owner), (
                f"{key!r} runs on {node_class.__name__}, not {owner.__name__}"
            )
            if same_text and key in own:
                assert text == own[key] == live_text, (
                    f"{key!r}: help says {text!r}, the binding {live_text!r}"
                )


async def open_help(pilot, key: str = "f1") -> list[list[str]]:  # type: ignore[no-untyped-def]
    await pilot.press(key)
    assert isinstance(pilot.app.screen, HelpScreen)
    rows = table_rows(pilot.app.screen.query_one("#help-keys", DataTable))
    await pilot.press("escape")
    assert not isinstance(pilot.app.screen, HelpScreen)
    return rows


async def test_f1_and_question_mark_list_keys_that_are_really_bound(
    sample_db: Path, make_app
) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        rows = await open_help(pilot, "f1")
        assert await open_help(pilot, "question_mark") == rows
        assert ["Everywhere", "f1, ?", "List every key"] in rows
        titles = [entry.title for entry in app.SECTIONS.values()]
        assert {row[0] for row in rows} == {
            "Everywhere",
            "Forms",
            "Campaign wizard",
            "Live event log",
            *titles,
        }
        assert_listed_keys_work(app, rows, "Everywhere", SubgroupsApp)
        listed_for_groups = {k for row in rows if row[0] == "Groups" for k in row[1].split(", ")}
        assert listed_for_groups == {
            app.get_key_display(b) for b in GroupsSection.BINDINGS if isinstance(b, Binding)
        }

        # Each section's keys work once its number key has taken you there.
        for number, entry in enumerate(app.SECTIONS.values(), start=1):
            await pilot.press(str(number))
            await show_section(pilot, entry.key)  # built on first showing: let it load
            assert_listed_keys_work(app, rows, entry.title, entry.load())

        # The log's keys, once L has moved to its lines.
        await pilot.press("L")
        assert_listed_keys_work(app, rows, "Live event log", LogLines)

        # The form keys, in both forms.
        await pilot.press("2", "s")
        assert isinstance(app.screen, ChangeStateModal)
        assert_listed_keys_work(app, rows, "Forms", ChangeStateModal, same_text=False)
        await pilot.press("escape", "1", "n")
        assert isinstance(app.screen, GroupFormModal)
        assert_listed_keys_work(app, rows, "Forms", GroupFormModal, same_text=False)


async def test_palette_finds_the_groups_archive_action(sample_db: Path, make_app) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        selected = app.query_one(GroupsSection).selected_group()
        assert selected is not None
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await type_text(pilot, "archive")
        results = app.screen.query_one(CommandList)
        await settle(pilot, lambda: results.option_count > 0, what="the palette's results")
        prompts = [str(results.get_option_at_index(i).prompt) for i in range(results.option_count)]
        wanted = "Groups: Archive the selected group (asks first) (a)"
        assert any(prompt.startswith(wanted) for prompt in prompts), prompts

        # Choosing it runs the action in the Groups section: it asks first.
        def highlighted() -> str:
            index = results.highlighted
            return "" if index is None else str(results.get_option_at_index(index).prompt)

        for _ in range(len(prompts) + 1):
            if highlighted().startswith(wanted):
                break
            await pilot.press("down")
        assert highlighted().startswith(wanted)
        await pilot.press("enter")
        await settle(
            pilot, lambda: isinstance(app.screen, ConfirmModal), what="the archive confirmation"
        )
        assert f"Archive {selected.name!r}?" in str(
            app.screen.query_one("#confirm-message").render()
        )
        await pilot.press("n")
