"""The console with the demo tour (``subgroups demo --tour``): the same console,
the tour's panel docked at the bottom, and the presenter's keys.

F8 does what the panel's key line says (the step's act, else the next step)
and F9 starts the tour again; both are keys a browser leaves alone, so the
tour works in ``subgroups serve --demo-tour`` as in a terminal.
"""

from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from app.ui import app_keys, tour_steps
from app.ui.app import STYLES, SubgroupsApp
from app.ui.modals.explain import ExplainModal
from app.ui.widgets.tour import TourPanel

TOUR_KEYS: list[BindingType] = [
    Binding(
        tour_steps.NEXT_KEY,
        "tour_next",
        "Tour",
        tooltip="Tour: do what the tour's panel says (the step, or on to the next)",
        id="tour.next",
    ),
    Binding(
        tour_steps.RESTART_KEY,
        "tour_restart",
        "Tour again",
        tooltip="Tour: start the tour again from its first step",
        show=False,
        id="tour.restart",
    ),
]


class TourApp(SubgroupsApp):
    """The console, narrated for a presenter step by step."""

    CSS_PATH = [*SubgroupsApp.CSS_PATH, STYLES / "tour.tcss"]
    BINDINGS = [*app_keys.APP, *TOUR_KEYS]

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield TourPanel(id="tour")

    @property
    def tour(self) -> TourPanel:
        """The tour's panel (on the console's main screen, whatever covers it)."""
        return self.screen_stack[0].query_one(TourPanel)

    def action_tour_next(self) -> None:
        self.tour.next()

    def action_tour_restart(self) -> None:
        self.tour.restart()

    def on_explain_modal_explained(self, message: ExplainModal.Explained) -> None:
        """The explainer answered: the tour's last step waits for that."""
        explanation = message.explanation
        if explanation is not None:
            self.tour.explained(
                explanation.identity, message.campaign, not explanation.eligible, explanation.reason
            )
