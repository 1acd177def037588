"""The demo tour's steps, as data: what each step tells the presenter to do, what
the presenter's key does there, and what the tour looks for to call it done.

The seed's story in six steps (issue 11): a group and the `N / 50 active`
count; a segment that excludes a group; a campaign with "Do not send this
campaign to the following subscription groups"; a recipient unsubscribing on
the landing page; their `Channel Unsubscribed` event in the live log; the
explainer saying why they will not get the next campaign.

Narrations are plain text: ``{campaign}`` (the campaign's name in quotes) and
``{identity}`` are filled in from what earlier steps found, and the whole is
shown as literal text (never markup), since those are names people typed.
"""

from dataclasses import dataclass
from typing import Final

# The presenter's keys: ones a browser leaves alone (subgroups serve), unused elsewhere.
NEXT_KEY: Final = "f8"
RESTART_KEY: Final = "f9"

# What a step looks for (app/ui/widgets/tour.py runs the look).
GROUP_CREATED: Final = "group created"
SEGMENT_SAVED: Final = "excluding segment saved"
CAMPAIGN_MADE: Final = "campaign with do-not-send groups"
LANDING_UNSUBSCRIBE: Final = "landing page unsubscribe"
EVENT_IN_LOG: Final = "event in the log"
EXPLAINED: Final = "explained"

# What the presenter's key does on a step before it is done (else it moves on).
UNSUBSCRIBE_A_RECIPIENT: Final = "unsubscribe a recipient"
OPEN_EXPLAINER: Final = "open the explainer"


@dataclass(frozen=True)
class TourStep:
    """One step of the tour."""

    title: str
    # What to do, naming the console's keys (plain text; {campaign}, {identity} filled in).
    narration: str
    # What the tour waits for, said while it waits.
    waiting: str
    # What it looks for (one of the names above).
    looks_for: str
    # What the presenter's key does before the step is done ("": it moves on).
    act: str = ""
    # The key line's words for that act.
    act_label: str = ""


STEPS: Final[tuple[TourStep, ...]] = (
    TourStep(
        title="Create a group",
        narration="Press 1 for Groups, then n: name the new group and press ctrl+s. "
        "Watch the count above the table: N / 50 active (at 50, a new one is refused).",
        waiting="Waiting for a new group…",
        looks_for=GROUP_CREATED,
    ),
    TourStep(
        title="A segment that excludes a group",
        narration="Press 3 for Segments, ctrl+g adds a Subscription Groups condition: turn "
        "Include into Exclude, tick a group (Promotions, say), then ctrl+s and a name saves it.",
        waiting="Waiting for a saved segment that excludes a group…",
        looks_for=SEGMENT_SAVED,
    ),
    TourStep(
        title="A campaign that leaves out who opted out",
        narration="Press 4 for Campaigns, n starts the wizard: a name, a subject and a From "
        'address, then ctrl+f to Groups and tick one under "Do not send this campaign to '
        'the following subscription groups"; ctrl+s saves the draft, escape closes.',
        waiting="Waiting for a draft with a \u201cdo not send to\u201d group…",
        looks_for=CAMPAIGN_MADE,
    ),
    TourStep(
        title="A recipient unsubscribes on the landing page",
        narration="Someone who would get {campaign} clicks its one-click unsubscribe link. "
        "Press F8 to make it happen, or POST to a real link on `subgroups landing`.",
        waiting="Waiting for an unsubscribe from the landing page…",
        looks_for=LANDING_UNSUBSCRIBE,
        act=UNSUBSCRIBE_A_RECIPIENT,
        act_label="a recipient unsubscribes",
    ),
    TourStep(
        title="The event arrives in the live log",
        narration="Their Channel Unsubscribed event is in the live event log below, as it "
        "committed (l shows or hides the log; L then enter opens the event).",
        waiting="Waiting for the event in the log…",
        looks_for=EVENT_IN_LOG,
    ),
    TourStep(
        title="Why they will not get it",
        narration="Press F8: the explainer shows, step by step, why {identity} will not "
        "get {campaign}.",
        waiting="Waiting for the explainer…",
        looks_for=EXPLAINED,
        act=OPEN_EXPLAINER,
        act_label="open the explainer",
    ),
)
