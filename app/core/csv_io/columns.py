"""Checking a profile CSV's rows a chunk at a time, column by column.

``read_csv`` hands over ``CHUNK`` rows at once; each column of the chunk is
checked in one step where it can be (its cells stripped, their lengths, a
control character anywhere, every address against one pattern, every state
word looked up), and only a column that fails that step is checked cell by
cell, for the same messages as ever: each problem names its line and
column. Problems come out in file order (by line, then in the order a row's
cells are checked: identity, email, name, all_email, groups, properties).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import NamedTuple

from app.core.csv_io.format import restore_cell
from app.core.models import STATES, SUBSCRIBED, UNSUBSCRIBED, Group
from app.core.text_rules import control_problem

IDENTITY_MAX, EMAIL_MAX, NAME_MAX = 320, 320, 200
STATE_HELP = "use subscribed, unsubscribed, or leave the cell empty"

# A problem found in a chunk: (line, rank, column name, column number, message);
# rank orders a row's problems as its cells are checked (-1: the row as a whole).
Found = tuple[int, int, str | None, int | None, str]


class ParsedRow(NamedTuple):
    """One good row; ``states`` line up with ``ParsedCsv.group_ids`` (None: empty cell)."""

    line: int
    identity: str
    email: str | None
    name: str | None
    all_email: str | None
    states: tuple[str | None, ...]
    properties: dict[str, str]


@dataclass
class Header:
    """Where each kind of column is (0-based cell indexes)."""

    identity: int
    email: int | None
    name: int | None
    all_email: int | None
    groups: list[tuple[int, Group]]
    properties: list[tuple[int, str]]


# One @ with something before it; a domain of dot-separated labels; no spaces.
_EMAIL_TEXT = r"[^@\s]+@(?:[^@\s.]+\.)+[^@\s.]+"
_EMAIL = re.compile(_EMAIL_TEXT)
# A column of addresses or empty cells, one a line: checked in one match.
_EMAILS = re.compile(f"(?:{_EMAIL_TEXT})?(?:\n(?:{_EMAIL_TEXT})?)*")

# Exact cells, looked up in one step; anything else goes the slow way (_state).
_STATE_CELLS: dict[str, str | None] = {"": None, SUBSCRIBED: SUBSCRIBED, UNSUBSCRIBED: UNSUBSCRIBED}


def valid_email(text: str) -> bool:
    """A simple, sane check: one @ with something before it, a dotted domain, no spaces."""
    return _EMAIL.fullmatch(text) is not None


def _cleaned(cells: Sequence[str]) -> list[str]:
    """A column's cells stripped, with the export's ``'`` before a formula taken off."""
    values = [cell.strip() for cell in cells]
    if "\x00'" in "\x00" + "\x00".join(values):  # some cell starts with '
        values = [restore_cell(v) if v[:1] == "'" else v for v in values]
    return values


class _Chunk:
    """One chunk's cells by column, and what is wrong with them."""

    def __init__(
        self, lines: list[int], rows: list[list[str]], columns: list[str], found: list[Found]
    ) -> None:
        self.lines = lines
        self.by_column = list(zip(*rows, strict=True))
        self.columns = columns
        self.found = found
        self.bad: set[int] = set()  # positions of rows with a problem

    def note(self, i: int, rank: int, at: int, message: str) -> None:
        self.found.append((self.lines[i], rank, self.columns[at], at + 1, message))
        self.bad.add(i)

    def identities(self, at: int, seen: dict[str, int]) -> list[str]:
        values = _cleaned(self.by_column[at])
        count = len(values)
        if (
            all(values)
            and max(map(len, values)) <= IDENTITY_MAX
            and "".join(values).isprintable()
            and len(set(values)) == count
            and seen.keys().isdisjoint(values)
        ):
            seen.update(zip(values, self.lines, strict=True))
            return values
        for i, identity in enumerate(values):
            if not identity:
                self.note(i, 0, at, "the identity is empty; every row needs one")
            elif not identity.isprintable() and (problem := control_problem(identity)):
                self.note(i, 0, at, f"the identity {problem}")
            elif len(identity) > IDENTITY_MAX:
                self.note(
                    i, 0, at,
                    f"the identity is {len(identity)} characters long; the most is {IDENTITY_MAX}",
                )  # fmt: skip
            elif identity in seen:
                self.note(
                    i, 0, at,
                    f"identity {identity!r} is also on line {seen[identity]}; a profile may "
                    "appear once",
                )  # fmt: skip
            else:
                seen[identity] = self.lines[i]
        return values

    def emails(self, at: int) -> list[str | None]:
        values = _cleaned(self.by_column[at])
        joined = "\n".join(values)
        # Printable: no cell holds a control character, nor a line break of its own.
        if (
            max(map(len, values)) <= EMAIL_MAX
            and joined.replace("\n", "").isprintable()
            and _EMAILS.fullmatch(joined) is not None
        ):
            return [value or None for value in values]
        for i, email in enumerate(values):
            if not email:
                continue
            if not email.isprintable() and (problem := control_problem(email)):
                self.note(i, 1, at, f"the email address {problem}")
            elif len(email) > EMAIL_MAX or _EMAIL.fullmatch(email) is None:
                self.note(
                    i, 1, at,
                    f"{email[:80]!r} is not an email address (one @, a dotted domain, no "
                    f"spaces, at most {EMAIL_MAX} characters)",
                )  # fmt: skip
        return [value or None for value in values]

    def names(self, at: int) -> list[str | None]:
        values = _cleaned(self.by_column[at])
        if max(map(len, values)) > NAME_MAX or not "".join(values).isprintable():
            for i, name in enumerate(values):
                if not name:
                    continue
                if not name.isprintable() and (problem := control_problem(name)):
                    self.note(i, 2, at, f"the name {problem}")
                elif len(name) > NAME_MAX:
                    self.note(
                        i, 2, at, f"the name is {len(name)} characters long; the most is {NAME_MAX}"
                    )
        return [value or None for value in values]

    def states(self, at: int, rank: int) -> list[str | None]:
        cells = self.by_column[at]
        try:
            return list(map(_STATE_CELLS.__getitem__, cells))
        except KeyError:
            pass
        out: list[str | None] = []
        for i, cell in enumerate(cells):
            if cell in _STATE_CELLS:
                out.append(_STATE_CELLS[cell])
                continue
            word = cell.strip().lower()
            if not word or word in STATES:
                out.append(word or None)
                continue
            self.note(i, rank, at, f"{cell.strip()[:80]!r} is not a state; {STATE_HELP}")
            out.append(None)
        return out

    def properties(self, at: int, rank: int) -> list[str]:
        values = _cleaned(self.by_column[at])
        if not "".join(values).isprintable():
            for i, value in enumerate(values):
                if value and not value.isprintable() and (problem := control_problem(value)):
                    self.note(i, rank, at, f"the value {problem}")
        return values


def check_chunk(
    lines: list[int],
    rows: list[list[str]],
    header: Header,
    columns: list[str],
    seen: dict[str, int],
    found: list[Found],
) -> list[ParsedRow]:
    """The good rows of a chunk (each as wide as the header); problems go to ``found``.

    ``seen`` maps the identities of the rows before to their lines, and
    learns this chunk's.
    """
    if not rows:
        return []
    chunk = _Chunk(lines, rows, columns, found)
    none = list(repeat(None, len(rows)))
    identities = chunk.identities(header.identity, seen)
    emails = none if header.email is None else chunk.emails(header.email)
    names = none if header.name is None else chunk.names(header.name)
    all_email = none if header.all_email is None else chunk.states(header.all_email, 3)
    rank = 4
    state_columns = []
    for at, _ in header.groups:
        state_columns.append(chunk.states(at, rank))
        rank += 1
    states = list(zip(*state_columns, strict=True)) if state_columns else [()] * len(rows)
    if header.properties:
        keys = [key for _, key in header.properties]
        values = []
        for at, _ in header.properties:
            values.append(chunk.properties(at, rank))
            rank += 1
        properties = [
            {key: value for key, value in zip(keys, row, strict=True) if value}
            for row in zip(*values, strict=True)
        ]
    else:
        properties = [{} for _ in rows]
    # tuple.__new__: the named tuple without its Python-level __new__ (hot: once a row).
    make = tuple.__new__
    parsed = [
        make(ParsedRow, row)
        for row in zip(lines, identities, emails, names, all_email, states, properties, strict=True)
    ]
    if chunk.bad:
        parsed = [row for i, row in enumerate(parsed) if i not in chunk.bad]
    return parsed
