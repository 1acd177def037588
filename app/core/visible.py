"""Control characters made visible: the escaping half of ``text_rules``.

Every output path (the console, the CLI, error messages) shows stored text
through ``shown``, so a control character that reached the store before the
rules, or from another program, is written as a visible escape (``\\x1b``,
``\\n``) and never acts on the terminal. This module imports nothing of ours,
so the lowest modules (``errors``) can use it.
"""

import re

# C0, DEL, C1, and the two Unicode line breaks that are not controls.
CONTROL_CLASS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
CONTROL_PATTERN = re.compile(f"[{CONTROL_CLASS}]")

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


def shown(text: str) -> str:
    """``text`` fit for a terminal: each control character as a visible escape (``\\x1b``)."""
    if CONTROL_PATTERN.search(text) is None:
        return text
    return text.translate(_SHOWN)


def shown_lines(text: str) -> str:
    """Like ``shown`` but keeping newlines: for messages made of several lines."""
    if CONTROL_PATTERN.search(text) is None:
        return text
    return text.translate(_SHOWN_KEEP_NEWLINE)


def json_shown(encoded: str) -> str:
    """JSON text (``json.dumps(..., ensure_ascii=False)``) with DEL, C1 and U+2028/9 escaped.

    JSON escapes U+0000-U+001F itself; these others are valid in a JSON
    string as they are, but a terminal may act on them. Outside strings
    JSON holds none of them, so the result is the same JSON value.
    """
    return encoded.translate(_JSON)
