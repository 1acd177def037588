"""The console: sections switched by number keys, the live event log pane
below them, a footer with the current keys, help on F1 or ?.

Sections are children of one ContentSwitcher rather than separate screens or
modes, so the event log pane is one widget fed by one poller and keeps its
history, pause and filters while you move between sections.

The first frame comes before the data layer: given ``open_store`` rather than
an open store, the console paints its frame (section bar, log pane, footer)
first and opens the store in a worker, which imports SQLAlchemy and the shown
section meanwhile; each section is built the first time it is shown.
"""

import asyncio
import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.signal import Signal
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Footer, Header, Static
from textual.worker import get_current_worker

from app.core import actors
from app.resources import resource_dir
from app.ui import app_keys
from app.ui.commands import SubgroupsCommands
from app.ui.daemon_executor import DaemonExecutor
from app.ui.messages import NewEvents, RunSectionAction, StoreChanged
from app.ui.sections.base import Section
from app.ui.sections.registry import SECTIONS
from app.ui.style_sheets import STYLE_SHEETS
from app.ui.widgets.event_log import EventLogPane
from app.ui.widgets.group_gauge import GroupsFirstLook
from app.ui.widgets.presence import PresenceLine

if TYPE_CHECKING:
    from app.core import ledger
    from app.core.ledger_wakeups import LedgerWakeups
    from app.core.store import Store

STYLES = resource_dir("styles")
POLL_SECONDS = 0.05  # how often the ledger is asked whether it changed (not read)
INITIAL_EVENTS = 50
# How long the store opener waits for the first look to be drawn before its imports.
FIRST_LOOK_WAIT = 0.25


class SubgroupsApp(App[None]):
    """subgroups: email subscription groups, from the keyboard."""

    TITLE = "subgroups"
    CSS_PATH = [STYLES / name for name in STYLE_SHEETS]
    COMMANDS = App.COMMANDS | {SubgroupsCommands}
    SECTIONS = SECTIONS
    BINDINGS = app_keys.APP

    section: reactive[str] = reactive("groups")
    show_log: reactive[bool] = reactive(True)

    @dataclass
    class StoreIsEmpty(Message):
        """The first look at the store found no groups and no profiles."""

    @dataclass
    class SampleLoaded(Message):
        error: str | None = None

    @dataclass
    class StoreOpened(Message):
        """The worker opened the store (``store`` None: it could not; ``error`` says why)."""

        store: "Store | None"
        error: str = ""
        exit_code: int = 0

    class FirstLook(Message):
        """The first look counted the active groups (``first_look_active``)."""

    def __init__(
        self,
        store: "Store | None" = None,
        *,
        open_store: "Callable[[], Store] | None" = None,
        first_look: Callable[[], int | None] | None = None,
        store_name: str = "",
        demo: bool = False,
        poll_seconds: float = POLL_SECONDS,
        offer_sample_data: bool = True,
        outbox_dir: Path | None = None,
    ) -> None:
        super().__init__()
        if (store is None) == (open_store is None):
            raise ValueError("give the console a store or a way to open one, not both")
        # None until the store is open (at once when handed an open store).
        self.store: Store = store  # type: ignore[assignment]
        self._open_store = open_store
        # A quick count of the active groups before the store opens (None: none to show).
        self._first_look = first_look
        self.first_look_active: int | None = None
        # Set once the first look is on screen (the opener's imports wait for it).
        self._first_look_shown = threading.Event()
        # What the header names before the store is open.
        self.store_name = store_name
        # Why the store could not be opened (the console then exits with exit_code).
        self.open_error = ""
        # Where campaigns sent from the console go (None: the default Maildir outbox).
        self.outbox_dir = outbox_dir
        self.demo = demo
        self.poll_seconds = poll_seconds
        # Seconds between wake-ups that nothing announced (a missed notification):
        # None keeps LedgerWakeups' own; a test sets it far off to see only notifications.
        self.ledger_fallback: float | None = None
        self.offer_sample_data = offer_sample_data
        # Set when the console starts quitting: long thread work (the ledger
        # poller, a segment index build) checks it and stops.
        self.closing = threading.Event()
        # Sections being built (mounted) right now, by key: set once they are.
        self._building: dict[str, asyncio.Event] = {}
        # What tells the ledger poller to read (set when it starts).
        self.ledger_wakeups: LedgerWakeups | None = None
        # New ledger events, from any process: each section decides what to read again.
        self.store_changes: Signal[StoreChanged] = Signal(self, "store-changes")
        # The changes of a burst of events, published once it is over (a 0.5 s timer).
        self._reload_timer: Timer | None = None
        self._pending: StoreChanged | None = None

    # --- layout ------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="✉")
        yield Static(id="section-bar")
        yield PresenceLine()
        with Vertical(id="main"):
            # Empty: each section is built the first time it is shown.
            yield ContentSwitcher(id="sections")
            yield EventLogPane(id="event-log")
        yield Footer()

    def on_load(self) -> None:
        # Before any worker starts: thread workers on daemon threads quitting never waits for.
        asyncio.get_running_loop().set_default_executor(DaemonExecutor())
        if self.store is None and self._first_look is not None:
            self.take_first_look(self._first_look)  # meanwhile the first frame is built
        else:
            self._first_look_shown.set()

    @work(thread=True, group="first-look", name="first look")
    def take_first_look(self, look: Callable[[], int | None]) -> None:
        """Count the active groups at once (the standard library's sqlite3), if that can be
        done; else the gauge waits for the store."""
        self.first_look_active = look()
        self.post_message(self.FirstLook())  # on_mount drew it already, if it came first

    def _set_sub_title(self, name: str) -> None:
        self.sub_title = name + ("  ·  demo with simulated traffic" if self.demo else "")

    async def on_mount(self) -> None:
        # What was chosen before start-up (the watchers wait for the widgets).
        self.query_one(EventLogPane).display = self.show_log
        self._show_section_bar()
        if self.store is None:
            self._set_sub_title(self.store_name)
            # Not the log's filter box while no section is there: the number keys go to it.
            self.screen.AUTO_FOCUS = "#sections *"
            if self.first_look_active is not None:  # read already: in the first frame
                await self._show_first_look()
            # After the first frame is out: the worker's imports would hold it up.
            self.call_after_refresh(self.open_the_store, self.section)
            return
        await self._store_ready()

    @work(thread=True, exclusive=True, group="store-open", name="store opener")
    def open_the_store(self, section: str) -> None:
        """Open the store off the UI thread, after the first frame: this imports the
        data layer (SQLAlchemy, the models) and the shown section's module too."""
        # The first look drawn first: this thread's imports would hold the GIL (at most so long).
        self._first_look_shown.wait(FIRST_LOOK_WAIT)
        from app.core.errors import SubgroupsError

        assert self._open_store is not None
        try:
            store = self._open_store()
        except SubgroupsError as error:
            self.post_message(self.StoreOpened(None, str(error), error.exit_code))
            return
        try:
            importlib.import_module(self.SECTIONS[section].module)
            importlib.import_module("app.core.ledger_wakeups")
        except ImportError:  # pragma: no cover - the UI thread imports it again and says why
            pass
        self.post_message(self.StoreOpened(store))

    @on(FirstLook)
    async def _show_first_look(self) -> None:
        """The Groups header from the first look, until the store is open."""
        active = self.first_look_active
        shown = self.query("#groups-first-look")
        if self.store is None and not self.closing.is_set() and active is not None and not shown:
            look = GroupsFirstLook(active, id="groups-first-look")
            look.display = self.section == "groups"
            await self.query_one("#sections", ContentSwitcher).mount(look)
        self.call_after_refresh(self._first_look_shown.set)

    @on(StoreOpened)
    async def _store_opened(self, message: StoreOpened) -> None:
        if message.store is None:
            self.open_error = message.error
            self.exit(return_code=message.exit_code or 1)
            return
        self.store = message.store
        if self.closing.is_set():
            return
        await self._store_ready()

    async def _store_ready(self) -> None:
        """The store is open: name it, show the section, follow the ledger."""
        self._set_sub_title(self.store.display_name)
        await self._show_section(self.section)
        self.query_one(PresenceLine).start()
        self.poll_ledger()
        if self.offer_sample_data:
            self.check_empty()

    def on_resize(self, event: events.Resize) -> None:
        # No media queries in TCSS: a class lets the styles give a short
        # terminal's rows to the sections rather than to the log pane.
        self.set_class(event.size.height < 32, "-short")

    def exit(self, *args: Any, **kwargs: Any) -> None:
        self.closing.set()
        if self._reload_timer is not None:
            self._reload_timer.stop()
        super().exit(*args, **kwargs)

    def on_unmount(self) -> None:
        self.closing.set()

    def _show_section_bar(self) -> None:
        parts = []
        for number, (key, entry) in enumerate(self.SECTIONS.items(), start=1):
            label = f" {number} {entry.title} "
            parts.append(
                Content.styled(label, "reverse bold") if key == self.section else Content(label)
            )
        self.query_one("#section-bar", Static).update(Content("").join(parts))

    # --- sections ------------------------------------------------------------

    def action_show_section(self, section: str) -> None:
        self.section = section

    @property
    def started(self) -> bool:
        """The app is mounted: its sections and log pane exist. (Not ``is_mounted``: on an
        App that is a method, about a widget, and always true as a condition.)"""
        return self._is_mounted

    async def watch_section(self, section: str) -> None:
        if self.started:
            await self._show_section(section)

    def _section(self, key: str) -> Section:
        return self.query_one(f"#{key}", Section)

    def built_section(self, key: str) -> Section | None:
        """The section if it was built (shown at least once), else None."""
        for child in self.query_one("#sections", ContentSwitcher).children:
            if child.id == key and isinstance(child, Section):
                return child
        return None

    async def build_section(self, key: str) -> Section:
        """The section, built (its module imported, its widget mounted) the first time.

        Nothing of a section exists before it is first shown: its module, what
        that imports (its dialogs, its services), its widgets and its loads.
        """
        section = self.built_section(key)
        if section is None:
            section = self.SECTIONS[key].load()(id=key)
            self._building[key] = built = asyncio.Event()
            try:
                await self.query_one("#sections", ContentSwitcher).mount(section)
            finally:
                built.set()
                del self._building[key]
        elif key in self._building:
            await self._building[key].wait()  # another caller is mounting it
        return section

    async def _show_section(self, section: str) -> None:
        self._show_section_bar()
        first_look = self.query("#groups-first-look")
        if self.store is None:
            first_look.set(display=section == "groups")
            return  # shown once the store is open
        shown = await self.build_section(section)
        if section != self.section:
            return  # another section was chosen while this one was built
        self.query_one("#sections", ContentSwitcher).current = section
        await first_look.remove()  # in the same refresh as the section: nothing moves
        shown.focus_main()
        shown.activate()

    # Keys that act on the main screen (sections, the log pane): not while the
    # wizard or a dialog covers it, where they would change what cannot be seen.
    MAIN_SCREEN_ACTIONS = frozenset(
        {"show_section", "toggle_log", "pause_log", "focus_log", "leave_text_box"}
    )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.MAIN_SCREEN_ACTIONS and len(self.screen_stack) > 1:
            return False
        if action == "leave_text_box":
            # Only from a text box; elsewhere escape is left to whoever else wants it.
            return isinstance(self.focused, app_keys.text_box_types())
        return True

    def action_leave_text_box(self) -> None:
        """Escape in a text box (the Profiles search, the log's filters): back to the
        section's main widget, where the number keys switch sections again."""
        section = self.built_section(self.section)
        if section is not None:
            section.focus_main()

    @on(RunSectionAction)
    async def _run_section_action(self, message: RunSectionAction) -> None:
        if not message.section:
            await self.run_action(message.action)
            return
        if self.store is None:
            self.notify("The store is still opening.", severity="warning")
            return
        self.section = message.section
        widget = await self.build_section(message.section)
        await widget.run_action(message.action)

    def action_help(self) -> None:
        from app.ui.modals.help import HelpScreen

        self.push_screen(HelpScreen(app_keys.help_sections(self.BINDINGS)))

    # --- the live event log ----------------------------------------------------

    def action_toggle_log(self) -> None:
        self.show_log = not self.show_log

    def watch_show_log(self, show: bool) -> None:
        if self.started:
            self.query_one(EventLogPane).display = show

    def action_pause_log(self) -> None:
        pane = self.query_one(EventLogPane)
        pane.paused = not pane.paused
        if not self.show_log:
            self.show_log = True

    def action_focus_log(self) -> None:
        if not self.show_log:
            self.show_log = True
        self.query_one("#log-lines").focus()

    @work(thread=True, exclusive=True, group="ledger", name="ledger poller")
    def poll_ledger(self) -> None:
        """Watch the ledger for events from any process and hand them to the UI.

        The ledger is read only when it may have changed (``LedgerWakeups``:
        SQLite's data_version, PostgreSQL's LISTEN/NOTIFY), from the last id seen.
        """
        from app.core import ledger
        from app.core.ledger_wakeups import LedgerWakeups

        # Made before the first read: a commit after this point wakes the loop.
        fallback = {} if self.ledger_fallback is None else {"fallback": self.ledger_fallback}
        self.ledger_wakeups = wakeups = LedgerWakeups(
            self.store.engine, interval=self.poll_seconds, **fallback
        )
        try:
            with self.store.read() as session:
                initial = ledger.recent_events(session, limit=INITIAL_EVENTS)
                follower = ledger.LedgerFollower(after_id=ledger.latest_id(session))
            self.post_message(NewEvents(initial, initial=True))
            worker = get_current_worker()
            retry = False  # the last read failed (busy): read again without a wake-up
            while (retry and not self.closing.wait(self.poll_seconds)) or wakeups.wait(
                self.closing
            ):
                if worker.is_cancelled:
                    break
                retry = not self._read_new_events(follower)
        finally:
            wakeups.close()

    def _read_new_events(self, follower: "ledger.LedgerFollower") -> bool:
        """Hand the new events to the UI; False if the store was busy."""
        from sqlalchemy.exc import OperationalError

        from app.ui.reads.new_events import new_events

        try:
            message = new_events(self.store, follower, keep=INITIAL_EVENTS)
        except OperationalError:
            return False  # busy or briefly unavailable
        if message is not None:
            self.post_message(message)
        return True

    @on(NewEvents)
    def _new_events(self, message: NewEvents) -> None:
        self.query_one(EventLogPane).add(message.events, skipped=message.skipped)
        if message.initial or not message.events:
            return
        change = StoreChanged(
            names=frozenset(e.name for e in message.events),
            identities=frozenset(e.identity for e in message.events if e.identity),
            bulk=bool(message.skipped),
            events=tuple(message.events),
        )
        # At once (the Profiles detail follows), then once the burst is over.
        self.store_changes.publish(change)
        self._pending = change if self._pending is None else self._pending.merged(change)
        if self._reload_timer is None:
            self._reload_timer = self.set_timer(0.5, self._burst_over)

    def _burst_over(self) -> None:
        """Coalesce bursts of events into one reload of the groups, counts, lists."""
        self._reload_timer = None
        change, self._pending = self._pending, None
        if self.closing.is_set() or change is None:
            return  # quitting: the sections may already be gone
        self.store_changes.publish(replace(change, settled=True))

    # --- first run -----------------------------------------------------------

    @work(thread=True, group="first-run")
    def check_empty(self) -> None:
        from app.core.seed import store_is_empty

        with self.store.read() as session:
            empty = store_is_empty(session)
        if empty:
            self.post_message(self.StoreIsEmpty())

    @on(StoreIsEmpty)
    def _offer_sample(self) -> None:
        from app.ui.modals.confirm import ConfirmModal

        self.push_screen(
            ConfirmModal(
                "This store is empty",
                "Load the sample data? About a dozen subscription groups, a few thousand "
                "profiles with a believable history, a saved segment, a sent campaign with "
                "the unsubscribes it caused and a draft, so you can try everything. "
                "You can also start from scratch.",
                confirm_label="Load sample data",
            ),
            self._load_sample_if,
        )

    def _load_sample_if(self, yes: bool | None) -> None:
        if yes:
            self.load_sample()

    @work(thread=True, exclusive=True, group="first-run")
    def load_sample(self) -> None:
        from app.core.outbox import MaildirOutbox, default_outbox_dir
        from app.core.sample_campaigns import load_sample

        self.call_from_thread(self.notify, "Loading the sample data…")
        try:
            outbox = MaildirOutbox(self.outbox_dir or default_outbox_dir(self.store.store_id))
            load_sample(store=self.store, actor=actors.actor_name(), outbox=outbox)
            self.post_message(self.SampleLoaded())
        except Exception as exc:
            self.post_message(self.SampleLoaded(str(exc)))

    @on(SampleLoaded)
    def _sample_loaded(self, message: SampleLoaded) -> None:
        if message.error:
            self.notify(
                message.error, title="Sample data not loaded", severity="error", markup=False
            )
            return
        self.notify("Sample data loaded.")
        self.store_changes.publish(StoreChanged(everything=True, settled=True))
