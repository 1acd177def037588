"""The profile CSV format's columns and cells, and what the import's steps share.

A header row; ``identity`` (required), ``email``, ``name``, ``all_email``,
one ``group:<group name>`` column per group the file speaks about (any
group, archived ones included, matched ignoring case), and any other column
is a custom property. State cells hold ``subscribed``, ``unsubscribed`` or
nothing (never set, or leave as is); an empty email, name or property cell
leaves the stored value as it is. UTF-8, with or without a byte order mark.

Formula cells (OWASP, "CSV Injection"): a spreadsheet runs a cell that
starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return as a formula
(``=HYPERLINK(...)``). The export writes such a cell with a ``'`` before it,
which a spreadsheet shows as text; the import takes one ``'`` off a cell
whose rest starts like a formula. A value that itself starts with ``'``
and then a formula character gets one ``'`` more, so every value comes
back as it was exported.
"""

import json
import os
import re
from collections.abc import Callable
from typing import IO, Any

from sqlalchemy import select
from sqlmodel import Session

from app.core.models import Group

IDENTITY, EMAIL, NAME, ALL_EMAIL = "identity", "email", "name", "all_email"
FIXED_COLUMNS = (IDENTITY, EMAIL, NAME, ALL_EMAIL)
GROUP_PREFIX = "group:"
CHUNK = 5_000  # rows per write, and per progress report

# (stage, done, total): "reading" counts bytes of a file (rows of a stream,
# total 0), "planning" rows, "writing" profiles and state changes,
# "exporting" profiles.
Progress = Callable[[str, int, int], None]
# Asked between chunks while writing; True stops the import, which rolls back.
Cancel = Callable[[], bool]
# A path, a text stream or a binary stream.
Source = str | os.PathLike[str] | IO[str] | IO[bytes]


# A cell a spreadsheet would run (after any quotes the export put before it).
_FORMULA_START = frozenset("=+-@\t\r'")
_QUOTED_FORMULA = re.compile("'+[=+\\-@\t\r]")


def defuse_cell(text: str) -> str:
    """``text`` as an exported cell: a ``'`` before it when a spreadsheet would run it."""
    if text[:1] in _FORMULA_START and (text[0] != "'" or _QUOTED_FORMULA.match(text)):
        return "'" + text
    return text


def restore_cell(text: str) -> str:
    """An imported cell as the value it stands for: ``defuse_cell`` undone."""
    if text[:1] == "'" and _QUOTED_FORMULA.match(text):
        return text[1:]
    return text


def all_groups(session: Session) -> list[Group]:
    """Every group a file may name (archived ones included), by id."""
    return list(session.execute(select(Group).order_by(Group.id)).scalars())  # type: ignore[arg-type]


def property_text(value: Any) -> str:
    """A property value as a CSV cell: text as it is, numbers and the like as JSON, None empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def stored_properties(stored: Any, decoded: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A profile's properties as the driver gives them (JSON text on SQLite), as a dict.

    Many profiles share one text (country and plan), so each is decoded
    once; the dicts are shared and must not be changed.
    """
    if isinstance(stored, str):
        found = decoded.get(stored)
        if found is None:
            value = json.loads(stored)
            found = decoded[stored] = value if isinstance(value, dict) else {}
        return found
    return stored if isinstance(stored, dict) else {}
