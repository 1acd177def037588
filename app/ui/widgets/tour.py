"""The demo tour's panel: the current step's narration, whether it is done, and
what the presenter's key does (``subgroups demo --tour``).

The steps are data (app/ui/tour_steps.py). The panel follows the store: each
time new ledger events arrive (from this console, the simulator, the landing
server, the CLI) it asks, in a worker, whether the current step has happened
since the tour started (app/core/demo_tour.py), and says so. Nothing here
waits on the store on the UI thread; an answer for an earlier step or an
earlier start of the tour is dropped.
"""

from dataclasses import dataclass, field

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from app.core.demo_tour import Found
from app.ui import tour_steps
from app.ui.context import console
from app.ui.messages import StoreChanged
from app.ui.tour_steps import STEPS, TourStep
from app.ui.widgets.event_log import EventLogPane

# The steps the store answers (in a worker); the others the console itself answers.
STORE_LOOKS = frozenset(
    {
        tour_steps.GROUP_CREATED,
        tour_steps.SEGMENT_SAVED,
        tour_steps.CAMPAIGN_MADE,
        tour_steps.LANDING_UNSUBSCRIBE,
    }
)

# Said for the campaign before the tour knows it (tour_campaign finds it then).
STAND_IN_CAMPAIGN = 'the draft from step 3 (else the sample\'s "Winter sale")'


@dataclass
class TourState:
    """Where the tour is: the step, the ledger id it started after, what each step found."""

    index: int = 0
    # The newest ledger event when the tour (re)started: steps look after it (None: not read yet).
    after_id: int | None = None
    found: dict[str, Found] = field(default_factory=dict)
    # A problem with the current step's act, said in the panel.
    problem: str = ""
    # The presenter's key is doing the current step's act (in a worker).
    acting: bool = False

    @property
    def finished(self) -> bool:
        return self.index >= len(STEPS)

    @property
    def step(self) -> TourStep | None:
        return None if self.finished else STEPS[self.index]

    @property
    def done(self) -> bool:
        step = self.step
        return step is not None and step.looks_for in self.found

    def fill(self, text: str) -> str:
        """A narration with what earlier steps found (or words that stand in for it)."""
        name = self.campaign_name()
        campaign = f'"{name}"' if name else STAND_IN_CAMPAIGN
        unsubscribed = self.found.get(tour_steps.LANDING_UNSUBSCRIBE)
        identity = unsubscribed.identity if unsubscribed else "the person who left"
        return text.replace("{campaign}", campaign).replace("{identity}", identity)

    def campaign_name(self) -> str:
        for looked in (tour_steps.LANDING_UNSUBSCRIBE, tour_steps.CAMPAIGN_MADE):
            found = self.found.get(looked)
            if found is not None and found.campaign:
                return found.campaign
        return ""

    def campaign_id(self) -> int | None:
        for looked in (tour_steps.LANDING_UNSUBSCRIBE, tour_steps.CAMPAIGN_MADE):
            found = self.found.get(looked)
            if found is not None and found.campaign_id is not None:
                return found.campaign_id
        return None


class TourView(Vertical):
    """What the tour says now, docked at the bottom of a screen: step n of 6 (title),
    what to do, done or waiting, and the presenter's keys (bottom border).

    The console's main screen has the tour itself (``TourPanel``); a full screen
    opened over it (the campaign wizard) gets a view of its own, kept saying the same.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # (title, narration, status, keys): what the view says now.
        self.said: tuple[Content, Content, Content, Content] = (
            Content(),
            Content(),
            Content(),
            Content(),
        )

    def compose(self) -> ComposeResult:
        yield Static(self.said[1], id="tour-narration")
        yield Static(self.said[2], id="tour-status")

    def on_mount(self) -> None:
        self.show(*self.said)

    def show(self, title: Content, narration: Content, status: Content, keys: Content) -> None:
        self.said = (title, narration, status, keys)
        self.border_title = title
        self.border_subtitle = keys
        # Not there while being composed: compose() starts them with ``said``.
        for shown in self.query("#tour-narration, #tour-status").results(Static):
            text = narration if shown.id == "tour-narration" else status
            shown.update(text)
            shown.display = bool(text)


class TourPanel(TourView):
    """The tour: its steps, what they found, the presenter's keys; shown here and in the
    views on screens opened over the main one."""

    @dataclass
    class Looked(Message):
        """A worker's answer for the step ``index`` of the tour's start ``generation``."""

        generation: int
        index: int
        found: Found | None = None
        problem: str = ""
        after_id: int | None = None

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = TourState()
        # Bumped at each (re)start: a late answer for an earlier start is dropped.
        self.generation = 0

    def on_mount(self) -> None:
        console(self).store_changes.subscribe(self, self._store_changed)
        self.app.screen_change_signal.subscribe(self, self._screen_changed)
        self.restart()

    def _screen_changed(self, screen: Screen[object]) -> None:
        """A full screen over the console (the campaign wizard) gets the tour too."""
        if isinstance(screen, ModalScreen) or screen is self.screen or screen.query(TourView):
            return
        view = TourView()
        view.said = self.said
        screen.mount(view)

    # --- the presenter's keys ----------------------------------------------------

    def restart(self) -> None:
        """Back to the first step; steps look only at what happens from now on."""
        self.generation += 1
        self.state = TourState()
        self._show()
        self._start(self.generation)

    def next(self) -> None:
        """The presenter's key: the step's act if it has one and is not done, else on."""
        state = self.state
        step = state.step
        if step is None or state.acting:
            return
        if step.act and not state.done:
            self._act(step)
            return
        state.index += 1
        state.problem = ""
        self._show()
        self._look()

    def explained(self, identity: str, campaign: str, left_out: bool, reason: str) -> None:
        """The explainer answered (the last step is done when it says why they are left out)."""
        state = self.state
        step = state.step
        if step is None or step.looks_for != tour_steps.EXPLAINED or not left_out:
            return
        unsubscribed = state.found.get(tour_steps.LANDING_UNSUBSCRIBE)
        if unsubscribed is not None and unsubscribed.identity != identity:
            return
        state.found[tour_steps.EXPLAINED] = Found(f'{identity} and "{campaign}": {reason}')
        self._show()

    # --- looking -------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="tour.start", name="tour start")
    def _start(self, generation: int) -> None:
        from app.core import demo_tour

        with console(self).store.read() as session:
            after_id = demo_tour.latest_event_id(session)
        self.post_message(self.Looked(generation, 0, after_id=after_id))

    def _store_changed(self, change: StoreChanged) -> None:
        if not self.state.done:
            self._look()

    def _look(self) -> None:
        """Ask whether the current step has happened (the store in a worker; the log here)."""
        state = self.state
        step = state.step
        if step is None or state.after_id is None or state.done:
            return
        if step.looks_for in STORE_LOOKS:
            self._look_in_store(self.generation, state.index, step.looks_for, state.after_id)
        elif step.looks_for == tour_steps.EVENT_IN_LOG:
            self._look_in_log()

    @work(thread=True, exclusive=True, group="tour.look", name="tour look")
    def _look_in_store(self, generation: int, index: int, looks_for: str, after_id: int) -> None:
        from app.core import demo_tour

        look = {
            tour_steps.GROUP_CREATED: demo_tour.group_created,
            tour_steps.SEGMENT_SAVED: demo_tour.excluding_segment_saved,
            tour_steps.CAMPAIGN_MADE: demo_tour.campaign_with_do_not_send,
            tour_steps.LANDING_UNSUBSCRIBE: demo_tour.landing_unsubscribe,
        }[looks_for]
        with console(self).store.read() as session:
            found = look(session, after_id)
        if found is not None:
            self.post_message(self.Looked(generation, index, found))

    def _look_in_log(self) -> None:
        unsubscribed = self.state.found.get(tour_steps.LANDING_UNSUBSCRIBE)
        if unsubscribed is None:
            self.state.problem = "Nobody has unsubscribed in this tour yet (the step before)."
            self._show()
            return
        event = self.app.query_one(EventLogPane).by_id.get(str(unsubscribed.event_id))
        if event is None:
            return
        shown = event.ts.astimezone().strftime("%H:%M:%S")
        left = event.group_name or "all email"
        self.state.found[tour_steps.EVENT_IN_LOG] = Found(
            f"In the log at {shown}: {event.name}, {event.identity}, {left}, source {event.source}."
        )
        self._show()

    @on(Looked)
    def _looked(self, message: Looked) -> None:
        state = self.state
        if message.generation != self.generation:
            return  # an answer for an earlier start of the tour
        if message.after_id is not None:
            state.after_id = message.after_id
            self._look()
            return
        if message.index != state.index:
            if message.problem:
                state.acting = False
            return
        state.acting = False
        state.problem = message.problem
        step = state.step
        if message.found is not None and step is not None:
            state.found[step.looks_for] = message.found
        self._show()
        if message.found is not None and step is not None and step.act:
            self._look()  # not needed for the step itself, but it may unlock the next

    # --- the acts ------------------------------------------------------------------

    def _act(self, step: TourStep) -> None:
        state = self.state
        if step.act == tour_steps.UNSUBSCRIBE_A_RECIPIENT:
            state.acting = True
            state.problem = ""
            self._show()
            self._unsubscribe(self.generation, state.index, state.campaign_id())
        elif step.act == tour_steps.OPEN_EXPLAINER:
            self._open_explainer()

    @work(thread=True, exclusive=True, group="tour.act", name="tour act")
    def _unsubscribe(self, generation: int, index: int, chosen: int | None) -> None:
        from app.core import demo_tour
        from app.core.errors import SubgroupsError

        store = console(self).store
        try:
            with store.read() as session:
                campaign = demo_tour.tour_campaign(session, chosen)
                campaign_id = campaign.id if campaign is not None else None
            if campaign_id is None:
                problem = (
                    "No draft campaign with a \u201cdo not send to\u201d group: "
                    "make one first (the step before)."
                )
                self.post_message(self.Looked(generation, index, problem=problem))
                return
            found = demo_tour.recipient_unsubscribes(store, campaign_id)
        except SubgroupsError as error:
            self.post_message(self.Looked(generation, index, problem=error.message))
            return
        self.post_message(self.Looked(generation, index, found))

    def _open_explainer(self) -> None:
        from app.ui.modals.explain import ExplainModal

        if isinstance(self.app.screen, ExplainModal):
            return  # open already: it is answering
        state = self.state
        unsubscribed = state.found.get(tour_steps.LANDING_UNSUBSCRIBE)
        campaign_id = state.campaign_id()
        if unsubscribed is None or campaign_id is None:
            state.problem = "Nobody has unsubscribed through a campaign's link in this tour yet."
            self._show()
            return
        self.app.push_screen(
            ExplainModal(
                console(self).store, campaign_id=campaign_id, identity=unsubscribed.identity
            )
        )

    # --- showing ---------------------------------------------------------------------

    def key_line(self) -> Content:
        """What the presenter's keys do now (the panel's bottom border)."""
        state = self.state
        step = state.step
        if step is None:
            what = "F9 starts the tour again"
            return Content(what)
        if state.acting:
            now = "F8 working…"
        elif step.act and not state.done:
            now = f"F8 {step.act_label}"
        elif state.index == len(STEPS) - 1:
            now = "F8 end the tour"
        else:
            now = "F8 next step"
        return Content(f"{now} · F9 restart")

    def _show(self) -> None:
        """Say where the tour is, here and in the views on the screens over this one."""
        said = self._contents()
        for screen in self.app.screen_stack:
            for view in screen.query(TourView):
                view.show(*said)

    def _contents(self) -> tuple[Content, Content, Content, Content]:
        """(title, narration, status, keys): what the views show."""
        state = self.state
        step = state.step
        keys = self.key_line()
        if step is None:
            ending = (
                "That is the story: a group, a segment without the people who left a group, "
                "a campaign that honours them, an unsubscribe from the landing page, its "
                "event in the log, and the explainer's answer."
            )
            return Content("Tour: the end"), Content(ending), Content(""), keys
        title = Content(f"Tour {state.index + 1}/{len(STEPS)}: {step.title}")
        narration = Content(state.fill(step.narration))
        found = state.found.get(step.looks_for)
        if found is not None:
            status = Content.styled(f"✓ Done. {found.summary}", "$success")
        elif state.problem:
            status = Content.styled(f"✗ {state.problem}", "$error")
        elif state.acting:
            status = Content.styled("Working…", "$text-muted")
        else:
            status = Content.styled(step.waiting, "$text-muted")
        return title, narration, status, keys
