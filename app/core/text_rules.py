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

import re

from app.core.errors import InvalidInput

# C0, DEL, C1, and the two Unicode line breaks that are not controls.
CONTROL_CLASS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
_CONTROL = re.compile(f"[{CONTROL_CLASS}]")

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
_SHORT = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def _escape(code: int) -> str:
    if code in _SHORT:
        return _SHORT[code]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_CODES = [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
_SHOWN = {code: _escape(code) for code in _CODES}
_SHOWN_KEEP_NEWLINE = {code: text for code, text in _SHOWN.items() if code != 0x0A}
# In JSON text every string already escapes U+0000-U+001F; these are left.
_JSON = {code: f"\\u{code:04x}" for code in _CODES if code >= 0x7F}


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character this module refuses."""
    return _CONTROL.search(text) is not None


def describe(char: str) -> str:
    """A control character for a message: ``ESC (U+001B)``."""
    code = ord(char)
    name = _NAMES.get(code, "control character")
    return f"{name} (U+{code:04X})"


def control_problem(text: str) -> str | None:
    """What is wrong with ``text`` (None: nothing): which control character, and where."""
    found = _CONTROL.search(text)
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


def shown(text: str) -> str:
    """``text`` fit for a terminal: each control character as a visible escape (``\\x1b``)."""
    if _CONTROL.search(text) is None:
        return text
    return text.translate(_SHOWN)


def shown_lines(text: str) -> str:
    """Like ``shown`` but keeping newlines: for messages made of several lines."""
    if _CONTROL.search(text) is None:
        return text
    return text.translate(_SHOWN_KEEP_NEWLINE)


def json_shown(encoded: str) -> str:
    """JSON text (``json.dumps(..., ensure_ascii=False)``) with DEL, C1 and U+2028/9 escaped.

    JSON escapes U+0000-U+001F itself; these others are valid in a JSON
    string as they are, but a terminal may act on them. Outside strings
    JSON holds none of them, so the result is the same JSON value.
    """
    return encoded.translate(_JSON)
