"""The console's own keys (everywhere): sections by number, the log pane, help, quit.

Apart from the app, as the sections' keys are (sections/keys.py).
"""

import sys

from textual.binding import Binding, BindingType
from textual.widgets import Input

from app.ui.screens import wizard_keys
from app.ui.sections.registry import SECTIONS
from app.ui.widgets.event_log import LogLines

APP: list[BindingType] = [
    Binding(
        "1",
        "show_section('groups')",
        "Groups",
        tooltip="Show the Groups section",
        id="app.groups",
        show=False,
    ),
    Binding(
        "2",
        "show_section('profiles')",
        "Profiles",
        tooltip="Show the Profiles section",
        id="app.profiles",
        show=False,
    ),
    Binding(
        "3",
        "show_section('segments')",
        "Segments",
        tooltip="Show the Segments section",
        id="app.segments",
        show=False,
    ),
    Binding(
        "4",
        "show_section('campaigns')",
        "Campaigns",
        tooltip="Show the Campaigns section",
        id="app.campaigns",
        show=False,
    ),
    Binding(
        "5",
        "show_section('landing')",
        "Landing page",
        tooltip="Show the Landing page section",
        id="app.landing",
        show=False,
    ),
    Binding(
        "6",
        "show_section('insights')",
        "Insights",
        tooltip="Show the Insights section",
        id="app.insights",
        show=False,
    ),
    Binding("l", "toggle_log", "Log", tooltip="Show or hide the live event log", id="app.log"),
    Binding(
        "p",
        "pause_log",
        "Pause log",
        tooltip="Pause or resume the live event log",
        show=False,
        id="app.pause_log",
    ),
    Binding(
        "L",
        "focus_log",
        "Log lines",
        tooltip="Go to the log (enter opens an event)",
        show=False,
        id="app.focus_log",
    ),
    Binding("f1,question_mark", "help", "Help", tooltip="List every key", id="app.help"),
    # Textual quits on ctrl+q, which Firefox keeps for itself: f10 (as in mc and
    # htop) quits in a browser too. Priority, as Textual's own quit key is.
    Binding(
        "f10,ctrl+q",
        "quit",
        "Quit",
        tooltip="Quit the console",
        show=False,
        priority=True,
        id="app.quit",
    ),
    Binding(
        "escape",
        "leave_text_box",
        "Leave text box",
        tooltip="Leave the text box, back to the section (then number keys switch sections)",
        show=False,
        id="app.leave_text_box",
    ),
]


def help_sections(app_bindings: list[BindingType]) -> list[tuple[str, list[BindingType]]]:
    """What F1 shows: the keys by where they work, read from the bindings themselves."""
    # Escape is live only in a text box: listed below, with what it does there.
    everywhere = [
        b for b in app_bindings if not (isinstance(b, Binding) and b.action == "leave_text_box")
    ]
    sections = [("Everywhere", everywhere)]
    sections += [(entry.title, list(entry.bindings)) for entry in SECTIONS.values()]
    sections.append(("Campaign wizard", list(wizard_keys.WIZARD)))
    sections.append(("Live event log", list(LogLines.BINDINGS)))
    sections.append(
        (
            "Forms",
            [
                Binding("ctrl+s", "", "Save"),
                Binding("escape", "", "Cancel / close; in a text box: back to the section"),
            ],
        )
    )
    sections.append(
        (
            "Everywhere",
            [
                Binding("ctrl+p", "", "Command palette: every action by name"),
            ],
        )
    )
    return sections


def text_box_types() -> tuple[type, ...]:
    """What escape leaves (``leave_text_box``): an Input, and a TextArea once a section or
    dialog imported it (nothing can be one before; importing it for this check alone would
    delay the first frame)."""
    text_area = sys.modules.get("textual.widgets._text_area")
    return (Input,) if text_area is None else (Input, text_area.TextArea)
