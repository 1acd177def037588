"""The campaign wizard's keys, apart from the wizard: help and the palette list them
without importing the wizard (imported when it is first opened)."""

from textual.binding import Binding, BindingType

# The wizard's steps, in order (the campaigns section opens it at one).
DETAILS, AUDIENCE, GROUPS, CONTENT, REVIEW = 1, 2, 3, 4, 5

WIZARD: list[BindingType] = [
    # ctrl+f (forward) and ctrl+b (back); ctrl+n too, which a browser keeps for itself.
    Binding(
        "ctrl+f,ctrl+n",
        "next",
        "Next",
        tooltip="Check this step, save, go to the next",
        id="wizard.next",
    ),
    Binding(
        "ctrl+b",
        "back",
        "Back",
        tooltip="Save this step, go to the previous one",
        id="wizard.back",
    ),
    Binding(
        "ctrl+s", "save", "Save", tooltip="Save the draft, stay on this step", id="wizard.save"
    ),
    Binding(
        "s",
        "send",
        "Send",
        tooltip="Send the campaign (review step; asks first)",
        id="wizard.send",
    ),
    Binding(
        "x",
        "explain",
        "Explain",
        tooltip="Why a person gets the campaign or not (review step)",
        id="wizard.explain",
    ),
    Binding("escape", "close", "Close", tooltip="Save what is valid and close", id="wizard.close"),
]
