"""Control characters: refused in what people type or import, escaped in what is shown.

A control character in stored text is a way into the admin's terminal: ESC
starts the sequences that retitle or clear it, a newline forges a line in
the live log or in ``subgroups events``. So text that is one line by nature
(identities, names, descriptions, property keys and values, reasons) refuses
the C0 controls (U+0000-U+001F, tab and newline included), DEL (U+007F),
the C1 controls (U+0080-U+009F) and the Unicode line and paragraph
separators (U+2028, U+2029), wherever it comes in: the services check it,
so the CSV import, the CLI, the console's forms and the landing server all
refuse it alike.

Every output path escapes the same characters as a second line of
defence (text stored before the rule, or by another program): ``shown``
writes them as visible escapes, ``\\x1b``, ``\\n``, ``\\u2028``.
"""

from app.core.errors import InvalidInput
from app.core.visible import CONTROL_CLASS, CONTROL_PATTERN, json_shown, shown, shown_lines

__all__ = [
    "CONTROL_CLASS",
    "control_problem",
    "describe",
    "has_control",
    "json_shown",
    "refuse_controls",
    "shown",
    "shown_lines",
]


_NAMES = {
    0x00: "NUL",
    0x07: "BEL",
    0x08: "backspace",
    0x09: "tab",
    0x0A: "newline",
    0x0B: "vertical tab",
    0x0C: "form feed",
    0x0D: "carriage return",
    0x1B: "ESC",
    0x7F: "DEL",
    0x9B: "CSI",
    0x2028: "line separator",
    0x2029: "paragraph separator",
}


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character this module refuses."""
    return CONTROL_PATTERN.search(text) is not None


def describe(char: str) -> str:
    """A control character for a message: ``ESC (U+001B)``."""
    code = ord(char)
    name = _NAMES.get(code, "control character")
    return f"{name} (U+{code:04X})"


def control_problem(text: str) -> str | None:
    """What is wrong with ``text`` (None: nothing): which control character, and where."""
    found = CONTROL_PATTERN.search(text)
    if found is None:
        return None
    return (
        f"holds a control character, {describe(found.group())}, at character "
        f"{found.start() + 1}; control characters (tab, newline, escape …) are not allowed"
    )


def refuse_controls(text: str, *, what: str, field: str) -> str:
    """``text`` itself; ``InvalidInput`` naming ``what`` when it holds a control character."""
    problem = control_problem(text)
    if problem is not None:
        raise InvalidInput(f"{what} {problem}", field=field)
    return text
