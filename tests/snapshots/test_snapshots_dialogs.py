"""Screenshots of the console's dialogs: the command palette (open, and with a
query typed), the change-state dialog, the send confirmation and the send
summary, the prompt (renaming a segment) and the first-run offer of the sample
data, each at 120x40 and 80x24.

They are reached by pressing keys, as a user would, and the waits are on what
the screen shows (or on the modal's own state), not on section classes. The
shared fixtures (pinned clock, user and time zone, the sample store) are those
of test_snapshots.py, imported rather than redefined.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import test_snapshots as shared
from snapshot_support import (
    SIZES,
    before,
    console_on,
    profile_shown,
    settle,
    show,
    steady_cursors,
)
from textual.app import App
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, RadioSet, Select

from app.core.store import Store
from app.ui.app import SubgroupsApp
from app.ui.modals.change_state import ALL_EMAIL, ChangeStateModal
from app.ui.modals.confirm import ConfirmModal
from app.ui.modals.prompt import PromptModal
from app.ui.modals.send_campaign import SendModal

# The shared fixtures: the pinned clock, user and time zone, the sample store, the keyring.
pinned = shared.pinned
sample_template = shared.sample_template
sample_store = shared.sample_store
fixed_link_keyring = shared.fixed_link_keyring
screen_text = shared.screen_text

# Where the console writes a sent campaign: relative to the test's folder (./), so
# the summary's "Sent N messages to outbox" names no temporary folder.
OUTBOX = Path("outbox")


@pytest.fixture
def console(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., SubgroupsApp]]:
    """Build the console on ./store.db for a terminal of the given size, with options."""
    stores: list[Store] = []

    def make(size: tuple[int, int], **options: object) -> SubgroupsApp:
        app, store = console_on(size, monkeypatch, **options)  # type: ignore[arg-type]
        stores.append(store)
        return app

    yield make
    for store in stores:
        store.dispose()


# --- the command palette -------------------------------------------------------------


def _palette_listed(pilot: Pilot[None], query: str) -> bool:
    """The palette is open with ``query`` typed and its list filled (no search running)."""
    palette = pilot.app.screen
    if not isinstance(palette, CommandPalette):
        return False
    commands = palette.query_one(CommandList)
    return (
        palette.query_one(Input).value == query
        and palette._list_visible
        and not palette._show_busy
        and commands.option_count > 0
    )


def _console_entries_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The palette lists only the console's own entries, not Textual's (Keys, Maximize,
    Quit, Screenshot, Theme).

    Why: with an empty search the palette shows each provider's entries in the order
    the providers answer, and it keeps its providers in a set of classes, ordered by
    their addresses: Textual's entries come first in one run and last in the next
    (reported). A search is not affected: its hits are sorted by score.
    """
    own = {p for p in SubgroupsApp.COMMANDS if p not in App.COMMANDS}
    assert own, "the console adds a command provider of its own"
    monkeypatch.setattr(SubgroupsApp, "COMMANDS", own)


@pytest.mark.parametrize("size", SIZES)
def test_command_palette(
    snap_compare, console, sample_store: Path, monkeypatch: pytest.MonkeyPatch,
    size: tuple[int, int],
) -> None:  # fmt: skip
    """ctrl+p over Groups: the command palette with an empty search box ("Search for
    commands…") and, under it, every entry in the footer's order, each with its key
    and a line saying what it does: the five sections (1 to 5), the log's keys (l,
    p, L), Help (f1) and Leave text box (esc), then each section's actions, Groups'
    first. At 120x40 the list reaches Groups' Archive (a); at 80x24 it is cut after
    Pause log (p), the dialog ending above the footer. Textual's own entries are
    left out (see _console_entries_only: their place in the list varies by run)."""
    _console_entries_only(monkeypatch)

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+p")
        await settle(pilot, lambda: _palette_listed(pilot, ""))

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_command_palette_search(
    snap_compare, console, sample_store: Path, size: tuple[int, int]
) -> None:
    """ctrl+p, then "archive" typed: only the entries whose title matches, the
    matching letters highlighted, best first: "Groups: Archive the selected group
    (asks first) (a)", then "Show active, archived or all groups (f)" and "Unarchive
    the selected group (asks first) (u)", each with "In the Groups section"; the
    Groups section behind the palette."""

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+p")
        await settle(pilot, lambda: _palette_listed(pilot, ""))
        await pilot.press(*"archive")
        await settle(pilot, lambda: _palette_listed(pilot, "archive"))
        entries = pilot.app.screen.query_one(CommandList)
        first = str(entries.get_option_at_index(0).prompt)
        assert first.startswith("Groups: Archive the selected group"), first

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


# --- the change-state dialog -----------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_change_state_dialog(
    snap_compare, console, sample_store: Path, size: tuple[int, int]
) -> None:
    """Profiles (2), then s on the first person (C100001): the dialog "Change a
    subscription of C100001", Group set to the group under the detail's cursor
    ("Beta program (now unsubscribed)", the first group; never all email), New state
    with the focus and Subscribed chosen (the other state than the current one), an
    empty Reason box ("e.g. asked by phone"), and Save (ctrl+s) and Cancel (esc)."""

    async def steps(pilot: Pilot[None]) -> None:
        app = pilot.app
        await show(pilot, "2")
        found = app.query_one("#profiles-found")
        await settle(
            pilot,
            lambda: "profiles in the store" in str(found.render()) and profile_shown(app),
        )
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, ChangeStateModal))
        target = app.screen.query_one("#target", Select)
        assert target.value != ALL_EMAIL, "the dialog must not open on all email"
        status = app.screen.query_one("#status", RadioSet)
        assert status.has_focus and status.pressed_button is not None
        assert status.pressed_button.id == "subscribed"

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


# --- sending ---------------------------------------------------------------------------


async def _review_of_spring_sale(pilot: Pilot[None]) -> None:
    """4, the draft "Spring sale" selected, s: the wizard's review, counted and ready."""
    app = pilot.app
    await pilot.press("4")
    table = app.query_one("#campaigns-table", DataTable)
    await settle(pilot, lambda: table.row_count == 1)
    assert str(table.get_row_at(0)[0]) == "Spring sale"
    await pilot.press("s")  # on the list: opens the campaign at its review
    await settle(pilot, lambda: "Ready to send" in screen_text(pilot))


@pytest.mark.parametrize("size", SIZES)
def test_send_confirmation(
    snap_compare, console, sample_store: Path, fixed_link_keyring: Path,
    size: tuple[int, int],
) -> None:  # fmt: skip
    """The review of the draft "Spring sale", then s: the "Send campaign" dialog
    asking "Send Spring sale to N people?" (N the reach the review shows), that each
    gets one message, that people who opt out meanwhile are skipped and that one can
    cancel between batches; Send (y) and No (n / esc); the review behind it."""
    shared._write_campaigns(sample_store, sent_and_cancelled=False)

    async def steps(pilot: Pilot[None]) -> None:
        await _review_of_spring_sale(pilot)
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal))

    app = console(size, outbox_dir=OUTBOX)
    assert snap_compare(app, terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_send_summary(
    snap_compare, console, sample_store: Path, fixed_link_keyring: Path, tmp_path: Path,
    size: tuple[int, int],
) -> None:  # fmt: skip
    """The send dialog after "Spring sale" was sent (s on the review, y to confirm)
    into ./outbox: "Sending Spring sale", "Done", the progress bar full at 100%,
    "3,000 of 3,000 checked · 2,887 sent · 113 skipped", and the summary "Sent 2,887
    messages to outbox; 113 not eligible when their batch was checked."; Close
    (enter) has the focus. Behind it the review as it was when the send began."""
    shared._write_campaigns(sample_store, sent_and_cancelled=False)

    async def steps(pilot: Pilot[None]) -> None:
        await _review_of_spring_sale(pilot)
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal))
        await pilot.press("y")
        await settle(
            pilot,
            lambda: (
                isinstance(pilot.app.screen, SendModal) and pilot.app.screen.summary is not None
            ),
            timeout=60,
        )
        modal = pilot.app.screen
        assert isinstance(modal, SendModal) and modal.summary is not None
        assert modal.summary.startswith("Sent "), modal.summary
        # The messages are really in the outbox the summary names.
        assert any((tmp_path / OUTBOX / "new").iterdir())

    app = console(size, outbox_dir=OUTBOX)
    assert snap_compare(app, terminal_size=size, run_before=before(steps))


# --- the prompt dialog -------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_prompt_rename_segment(
    snap_compare, console, sample_store: Path, size: tuple[int, int]
) -> None:
    """Segments (3), the saved segment "DE readers" opened (enter), then ctrl+t: the
    prompt dialog "Rename segment" with the label "New name", the current name in the
    box (with the focus), Save (ctrl+s) and Cancel (esc); the segment behind it."""
    shared._save_sample_segment(sample_store)

    async def steps(pilot: Pilot[None]) -> None:
        app = pilot.app
        await pilot.press("3")
        table = app.query_one("#segments-table", DataTable)
        await settle(pilot, lambda: table.row_count == 1)
        await pilot.press("enter")
        await settle(pilot, lambda: "Total" in screen_text(pilot))
        await pilot.press("ctrl+t")
        await settle(pilot, lambda: isinstance(app.screen, PromptModal))
        assert app.screen.query_one("#prompt-value", Input).value == "DE readers"

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


# --- the first run ---------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_first_run_offer(snap_compare, console, tmp_path: Path, size: tuple[int, int]) -> None:
    """An empty store: over the empty Groups section ("0 / 50 active"), the dialog
    "This store is empty" offers to load the sample data, saying what it holds (a
    dozen groups, a few thousand profiles with a history, a segment, a sent campaign
    and a draft) and that one can start from scratch; "Load sample data (y)" and
    "No (n / esc)"."""
    from app.core.store import open_store

    open_store(tmp_path / "store.db").dispose()  # the schema, nothing else

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await settle(pilot, lambda: "0 / 50 active" in str(app.query_one("#active-count").render()))
        steady_cursors(app)
        await pilot.pause()

    app = console(size, offer_sample_data=True)
    assert snap_compare(app, terminal_size=size, run_before=run_before)
