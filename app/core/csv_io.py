"""Profile CSV files: import (read, plan, apply) and export (DESIGN.md §2).

The format: a header row; ``identity`` (required), ``email``, ``name``,
``all_email``, one ``group:<group name>`` column per group the file speaks
about, and any other column is a custom property. State cells hold
``subscribed``, ``unsubscribed`` or nothing (never set / leave as is); an
empty property, email or name cell leaves the stored value as it is. UTF-8,
with or without a byte order mark.

An import happens in three steps, so the console can show a preview first:

1. ``read_csv`` checks the whole file against the groups, collecting every
   problem (file, line, column) before giving up: a bad file raises
   ``CsvError`` and nothing is written.
2. ``plan_import`` compares the rows with the store: new profiles, changed
   fields, and every state change with the stored state it replaces. An
   explicit stored ``unsubscribed`` is never turned into ``subscribed``
   unless the import overwrites unsubscribes with a reason; by default such
   cells are listed as kept unsubscribed.
3. ``apply_import`` plans again inside one write transaction, refuses if the
   store changed since the preview, and writes it all with one ledger event
   per state change (Source ``import``).

``import_profiles`` does all three (or only the first two, for a dry run).
The writes use the driver's executemany with values converted by the
columns' own types: at 200k rows the ORM's per-row work would cost more than
the database's (see ``bench/bench_import.py``).
"""

import codecs
import csv
import io
import json
import operator
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, NamedTuple

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.core import clock, ledger
from app.core.errors import InvalidInput, RuleRefused, SubgroupsError
from app.core.groups import name_key
from app.core.models import STATES, SUBSCRIBED, UNSUBSCRIBED, Event, Group, GroupState, Profile
from app.core.store import Store
from app.core.subscriptions import change_properties, clean_reason

IDENTITY, EMAIL, NAME, ALL_EMAIL = "identity", "email", "name", "all_email"
FIXED_COLUMNS = (IDENTITY, EMAIL, NAME, ALL_EMAIL)
GROUP_PREFIX = "group:"
SOURCE = "import"
PROFILES_IMPORTED = "Profiles Imported"

# A row (one record, even when a quoted cell spans lines) may hold at most
# this many characters. Checked while reading, so a 10 MB line or a quote
# left open never sits in memory, whatever csv.field_size_limit says.
MAX_ROW_CHARS = 64 * 1024
IDENTITY_MAX, EMAIL_MAX, NAME_MAX = 320, 320, 200
SHOWN_PROBLEMS = 5  # in the error's message
KEPT_PROBLEMS = 200  # in the error's list; the rest are only counted
CHUNK = 5_000  # rows per executemany, and between progress reports
IN_CHUNK = 2_000  # values per IN (...)
READ_BLOCK = 1 << 20

STATE_HELP = "use subscribed, unsubscribed, or leave the cell empty"
_EMAIL = re.compile(r"[^@\s]+@[^@\s.][^@\s]*\.[^@\s.]+")

# (stage, done, total): stage is "reading" (bytes, total 0 when unknown),
# "planning" (rows) or "writing" (rows and changes written).
Progress = Callable[[str, int, int], None]
# Asked between chunks while writing; True stops the import and rolls it back.
Cancel = Callable[[], bool]
Source = str | os.PathLike[str] | IO[str] | IO[bytes]


# --- errors -------------------------------------------------------------------


@dataclass(frozen=True)
class CsvProblem:
    """One thing wrong with a CSV file, and where."""

    file: str
    line: int | None
    column: str | None
    column_number: int | None
    message: str

    @property
    def where(self) -> str:
        parts = [f"line {self.line}"] if self.line else []
        if self.column_number:
            parts.append(f"column {self.column_number}")
        text = ", ".join(parts)
        if self.column:
            text += f" ({self.column})" if text else f"column {self.column}"
        return text

    def __str__(self) -> str:
        where = self.where
        return f"{self.file}, {where}: {self.message}" if where else f"{self.file}: {self.message}"


class CsvError(InvalidInput):
    """The file is not a valid profile CSV; ``problems`` says where (the first few hundred)."""

    def __init__(self, problems: Sequence[CsvProblem], *, total: int | None = None) -> None:
        self.problems = list(problems)
        self.total = max(total or 0, len(self.problems))
        first = self.problems[0]
        if self.total == 1:
            message = f"{first}; nothing was imported"
        else:
            lines = [f"{first.file}: {self.total:,} problems; nothing was imported"]
            lines += [f"  {p.where}: {p.message}" for p in self.problems[:SHOWN_PROBLEMS]]
            if self.total > SHOWN_PROBLEMS:
                lines.append(f"  and {self.total - SHOWN_PROBLEMS:,} more")
            message = "\n".join(lines)
        super().__init__(message, field="file")


class ImportOutdated(RuleRefused):
    """The store changed between the preview and the import."""


class ImportCancelled(SubgroupsError):
    """The user stopped the import; nothing was written."""


# --- reading ------------------------------------------------------------------


class _RowTooLong(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _Lines:
    """The physical lines of a text stream, counted, with a bound on each row's length.

    ``csv.reader`` pulls lines until it has a whole record; the reader of
    rows calls ``next_row`` after each record, so ``pending`` is the size of
    the record being read.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.line = 0
        self.pending = 0

    def __iter__(self) -> Iterator[str]:
        readline = self.stream.readline
        while True:
            # Room for the row and its line ending; a longer read is a too-long line.
            text = readline(MAX_ROW_CHARS + 3)
            if not text:
                return
            self.line += 1
            self.pending += len(text)
            if self.pending > MAX_ROW_CHARS + 2:
                raise _RowTooLong(self.line)
            yield text


class ParsedRow(NamedTuple):
    """One checked row: states line up with ``ParsedCsv.group_ids`` (None: empty cell)."""

    line: int
    identity: str
    email: str | None
    name: str | None
    all_email: str | None
    states: tuple[str | None, ...]
    properties: dict[str, str]


@dataclass
class ParsedCsv:
    """A checked file: the groups its columns name (by id) and its rows."""

    file: str
    columns: list[str]
    group_ids: list[int]
    group_columns: list[str]
    property_names: list[str]
    rows: list[ParsedRow]


class _Collector:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[CsvProblem] = []
        self.total = 0

    def add(self, line: int | None, column: str | None, number: int | None, message: str) -> None:
        self.total += 1
        if len(self.problems) < KEPT_PROBLEMS:
            self.problems.append(CsvProblem(self.file, line, column, number, message))

    def append(self, problem: CsvProblem) -> None:
        self.total += 1
        self.problems.append(problem)

    def error(self) -> CsvError:
        return CsvError(self.problems, total=self.total)


def _display_name(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<stream>"


def _decode_problem(raw: IO[bytes] | None, file: str, exc: UnicodeDecodeError) -> CsvProblem:
    """Where a file stops being UTF-8: byte offset and line, found by reading it again."""
    hint = "save it as UTF-8 (with or without BOM) and import again"
    if raw is None or not raw.seekable():
        return CsvProblem(file, None, None, None, f"the file is not UTF-8 text; {hint}")
    raw.seek(0)
    head = raw.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return CsvProblem(
            file, 1, None, None, f"the file is UTF-16 text, not UTF-8; {hint}"
        )
    raw.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = lines = 0
    while True:
        block = raw.read(READ_BLOCK)
        carried = len(decoder.getstate()[0])
        try:
            decoder.decode(block, final=not block)
        except UnicodeDecodeError as bad:
            start = offset - carried + bad.start
            data = block[: max(0, bad.start - carried)]
            line = lines + data.count(b"\n") + 1
            byte = (block if bad.start >= carried else b"")[bad.start - carried : bad.start - carried + 1]
            what = f"byte 0x{byte.hex().upper()}" if byte else "an incomplete character"
            return CsvProblem(
                file,
                line,
                None,
                None,
                f"the file is not UTF-8: {what} at byte offset {start:,} cannot be read; {hint}",
            )
        if not block:
            break
        lines += block.count(b"\n")
        offset += len(block)
    return CsvProblem(file, None, None, None, f"the file is not UTF-8 text ({exc.reason}); {hint}")


def _open_text(source: Source) -> tuple[IO[str], IO[bytes] | None, int, bool]:
    """(text stream, the bytes under it if we can re-read them, byte size or 0, we opened it)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            raw: IO[bytes] = path.open("rb")
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot open the file: {exc.strerror}", field="file") from exc
        try:
            size = os.fstat(raw.fileno()).st_size
        except OSError:
            size = 0
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        return text, raw, size, True
    sample = source.read(0)
    if isinstance(sample, bytes):
        raw = source  # type: ignore[assignment]
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        return text, raw, 0, False
    return source, None, 0, False  # type: ignore[return-value]


@dataclass
class _Header:
    identity: int
    email: int | None
    name: int | None
    all_email: int | None
    groups: list[tuple[int, Group]]
    properties: list[tuple[int, str]]
    # A row's group cells in column order, picked in one step.
    group_cells: Callable[[list[str]], Sequence[str]] = field(init=False)

    def __post_init__(self) -> None:
        indexes = [index for index, _ in self.groups]
        if len(indexes) > 1:
            self.group_cells = operator.itemgetter(*indexes)
        else:  # itemgetter of one index gives the cell, not a tuple
            self.group_cells = lambda cells: [cells[i] for i in indexes]


def _read_header(
    cells: list[str], *, line: int, groups: Sequence[Group], problems: _Collector
) -> _Header | None:
    by_key = {group.name_key: group for group in groups}
    seen: dict[object, int] = {}
    fixed: dict[str, int] = {}
    group_columns: list[tuple[int, Group]] = []
    properties: list[tuple[int, str]] = []
    for index, cell in enumerate(cells):
        number = index + 1
        column = cell.strip()
        if index == 0:
            column = column.lstrip("\ufeff").strip()
        lowered = column.casefold()
        key: object
        if not column:
            problems.add(line, None, number, "the column has no name; every column needs a header")
            continue
        if lowered in FIXED_COLUMNS:
            key = lowered
        elif lowered.startswith(GROUP_PREFIX):
            group_name = column[len(GROUP_PREFIX) :].strip()
            group = by_key.get(name_key(group_name))
            if group is None:
                problems.add(
                    line, column, number,
                    f"no group is named {group_name!r} (names are matched ignoring case, archived "
                    "groups included); `subgroups groups list --all` lists them",
                )  # fmt: skip
                continue
            key = ("group", group.id)
        else:
            key = ("property", column)
        if key in seen:
            first = seen[key]
            problems.add(
                line, column, number,
                f"the column repeats column {first} ({cells[first - 1].strip()!r}); "
                "each column may appear once",
            )  # fmt: skip
            continue
        seen[key] = number
        if isinstance(key, str):
            fixed[key] = index
        elif key[0] == "group":
            group_columns.append((index, by_key[name_key(column[len(GROUP_PREFIX) :].strip())]))
        else:
            properties.append((index, column))
    if IDENTITY not in fixed:
        names = ", ".join(repr(c.strip()) for c in cells[:8]) + (", …" if len(cells) > 8 else "")
        problems.add(
            line, None, None,
            f"the header has no identity column (it is required); the columns are: {names}",
        )  # fmt: skip
    if problems.total:
        return None
    return _Header(
        identity=fixed[IDENTITY],
        email=fixed.get(EMAIL),
        name=fixed.get(NAME),
        all_email=fixed.get(ALL_EMAIL),
        groups=group_columns,
        properties=properties,
    )


def valid_email(text: str) -> bool:
    """A simple, sane check: one @, something before it, a dotted domain, no spaces."""
    return bool(_EMAIL.fullmatch(text)) and ".." not in text.partition("@")[2]


def read_csv(
    source: Source, *, groups: Sequence[Group], progress: Progress | None = None
) -> ParsedCsv:
    """Read and check a whole profile CSV against ``groups`` (all of them, archived too).

    Raises ``CsvError`` listing every problem found (the first few hundred,
    and how many in all); returns only when the whole file is good.
    """
    file = _display_name(source)
    problems = _Collector(file)
    text, raw, size, opened = _open_text(source)
    lines = _Lines(text)
    reader = csv.reader(lines, strict=True)
    rows: list[ParsedRow] = []
    header: _Header | None = None
    columns: list[str] = []
    width = 0
    seen: dict[str, int] = {}
    start = 1
    try:
        for cells in reader:
            line, start = start, lines.line + 1
            lines.pending = 0
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # a blank line
            if header is None:
                header = _read_header(cells, line=line, groups=groups, problems=problems)
                if header is None:
                    raise problems.error()
                columns, width = [c.strip().lstrip("\ufeff").strip() for c in cells], len(cells)
                continue
            if len(cells) != width:
                if len(cells) > width:
                    problems.add(
                        line, None, width + 1,
                        f"the row has {len(cells)} cells but the header has {width} columns",
                    )  # fmt: skip
                else:
                    missing = ", ".join(columns[len(cells) : len(cells) + 3])
                    problems.add(
                        line, None, len(cells) + 1,
                        f"the row has {len(cells)} cells but the header has {width} columns "
                        f"(missing: {missing}{', …' if width - len(cells) > 3 else ''})",
                    )  # fmt: skip
                continue
            row = _read_row(cells, line, header, columns, seen, problems)
            if row is not None:
                rows.append(row)
            if progress and len(rows) % CHUNK == 0:
                progress("reading", raw.tell() if raw is not None and size else len(rows), size)
    except _RowTooLong as exc:
        problems.add(
            exc.line, None, None,
            f"the row is longer than {MAX_ROW_CHARS:,} characters (64 KiB), the most a row may "
            "hold; is a quote (\") left open?",
        )  # fmt: skip
    except UnicodeDecodeError as exc:
        problems.append(_decode_problem(raw, file, exc))
    except csv.Error as exc:
        problems.add(lines.line, None, None, f"the file is not valid CSV: {exc}")
    finally:
        if opened:
            text.close()
        elif raw is not None:
            text.detach()
    if header is None and not problems.total:
        problems.add(
            1, None, None, "the file is empty; expected a header row with an identity column"
        )
    if problems.total:
        raise problems.error()
    assert header is not None
    if progress:
        progress("reading", size or len(rows), size or len(rows))
    return ParsedCsv(
        file=file,
        columns=columns,
        group_ids=[group.id for _, group in header.groups],  # type: ignore[misc]
        group_columns=[columns[index] for index, _ in header.groups],
        property_names=[name for _, name in header.properties],
        rows=rows,
    )


# Exact cells, looked up in one step; anything else goes the slow way (_state).
_STATE_CELLS: dict[str, str | None] = {"": None, SUBSCRIBED: SUBSCRIBED, UNSUBSCRIBED: UNSUBSCRIBED}


def _read_row(
    cells: list[str],
    line: int,
    header: _Header,
    columns: list[str],
    seen: dict[str, int],
    problems: _Collector,
) -> ParsedRow | None:
    before = problems.total
    where = header.identity
    identity = cells[where].strip()
    if not identity:
        problems.add(line, columns[where], where + 1, "the identity is empty; every row needs one")
    elif len(identity) > IDENTITY_MAX:
        problems.add(
            line, columns[where], where + 1,
            f"the identity is {len(identity)} characters long; the most is {IDENTITY_MAX}",
        )  # fmt: skip
    elif identity in seen:
        problems.add(
            line, columns[where], where + 1,
            f"identity {identity!r} is also on line {seen[identity]}; a profile may appear once",
        )  # fmt: skip
    else:
        seen[identity] = line
    email = None
    if header.email is not None:
        email = cells[header.email].strip() or None
        if email is not None and (len(email) > EMAIL_MAX or not valid_email(email)):
            problems.add(
                line, columns[header.email], header.email + 1,
                f"{email[:80]!r} is not an email address (expected one @, a dotted domain, "
                f"no spaces, at most {EMAIL_MAX} characters)",
            )  # fmt: skip
    name = None
    if header.name is not None:
        name = cells[header.name].strip() or None
        if name is not None and len(name) > NAME_MAX:
            problems.add(
                line, columns[header.name], header.name + 1,
                f"the name is {len(name)} characters long; the most is {NAME_MAX}",
            )  # fmt: skip
    all_email = None
    if header.all_email is not None:
        all_email = _state(cells, header.all_email, line, columns, problems)
    try:
        states = tuple(map(_STATE_CELLS.__getitem__, header.group_cells(cells)))
    except KeyError:
        states = tuple(_state(cells, index, line, columns, problems) for index, _ in header.groups)
    properties: dict[str, str] = {}
    for index, key in header.properties:
        value = cells[index].strip()
        if value:
            properties[key] = value
    if problems.total != before:
        return None
    return ParsedRow(line, identity, email, name, all_email, states, properties)


def _state(
    cells: list[str], index: int, line: int, columns: list[str], problems: _Collector
) -> str | None:
    cell = cells[index]
    if cell in _STATE_CELLS:
        return _STATE_CELLS[cell]
    word = cell.strip().lower()
    if not word:
        return None
    if word in STATES:
        return word
    problems.add(line, columns[index], index + 1, f"{cell.strip()!r} is not a state; {STATE_HELP}")
    return None


# --- planning -----------------------------------------------------------------


class NewProfile(NamedTuple):
    """A profile the import creates."""

    line: int
    identity: str
    email: str | None
    name: str
    properties: dict[str, str]


class FieldChange(NamedTuple):
    """One changed field of an existing profile (column: email, name or a property)."""

    column: str
    old: Any
    new: str


class ProfileUpdate(NamedTuple):
    """An existing profile whose fields the import changes; the full new values."""

    line: int
    identity: str
    profile_id: int
    email: str | None
    name: str
    properties: dict[str, Any]
    changes: tuple[FieldChange, ...]


class PlannedChange(NamedTuple):
    """A state change: group None is all email; ``old`` is the stored state (None: never set).

    ``profile_id`` is None for a profile the import creates.
    """

    line: int
    identity: str
    profile_id: int | None
    group_id: int | None
    group_name: str | None
    old: str | None
    new: str
    overwrites_unsubscribe: bool


class KeptUnsubscribed(NamedTuple):
    """A cell that would have resubscribed an explicit unsubscribe, left alone."""

    line: int
    identity: str
    group_id: int | None
    group_name: str | None


@dataclass
class ImportPlan:
    """What an import would do, read from the store as it was when planned."""

    file: str
    rows: int
    new_profiles: list[NewProfile]
    updated_profiles: list[ProfileUpdate]
    state_changes: list[PlannedChange]
    kept_unsubscribed: list[KeptUnsubscribed]
    overwrite_unsubscribes: bool
    reason: str | None
    parsed: ParsedCsv = field(repr=False)

    @property
    def unchanged_rows(self) -> int:
        touched = {c.identity for c in self.state_changes}
        touched.update(p.identity for p in self.new_profiles)
        touched.update(p.identity for p in self.updated_profiles)
        return self.rows - len(touched)

    @property
    def overwritten_unsubscribes(self) -> int:
        return sum(1 for c in self.state_changes if c.overwrites_unsubscribe)

    def changes_by_group(self) -> list[tuple[int | None, str, int, int]]:
        """(group id or None for all email, name, to subscribed, to unsubscribed), file order."""
        counts: Counter[tuple[int | None, str]] = Counter(
            (c.group_id, c.new) for c in self.state_changes
        )
        names = {c.group_id: c.group_name or "all email" for c in self.state_changes}
        order = [None, *self.parsed.group_ids]
        return [
            (gid, names[gid], counts[(gid, SUBSCRIBED)], counts[(gid, UNSUBSCRIBED)])
            for gid in order
            if gid in names
        ]

    def summary_json(self) -> dict[str, Any]:
        """Counts, for people and scripts (the CLI's --json adds the full lists)."""
        return {
            "file": self.file,
            "rows": self.rows,
            "new_profiles": len(self.new_profiles),
            "updated_profiles": len(self.updated_profiles),
            "unchanged_rows": self.unchanged_rows,
            "state_changes": len(self.state_changes),
            "by_group": [
                {"group_id": gid, "group": None if gid is None else name,
                 "subscribed": sub, "unsubscribed": unsub}
                for gid, name, sub, unsub in self.changes_by_group()
            ],  # fmt: skip
            "kept_unsubscribed": len(self.kept_unsubscribed),
            "overwritten_unsubscribes": self.overwritten_unsubscribes,
            "reason": self.reason,
        }

    def details_json(self) -> dict[str, Any]:
        """Every new profile, update, state change and kept unsubscribe."""
        return {
            "new_profile_list": [p.identity for p in self.new_profiles],
            "updated_profile_list": [
                {"identity": u.identity, "line": u.line,
                 "changes": [{"column": c.column, "old": c.old, "new": c.new} for c in u.changes]}
                for u in self.updated_profiles
            ],  # fmt: skip
            "state_change_list": [
                {"line": c.line, "identity": c.identity, "group": c.group_name, "old": c.old,
                 "new": c.new, "overwrites_unsubscribe": c.overwrites_unsubscribe}
                for c in self.state_changes
            ],  # fmt: skip
            "kept_unsubscribed_list": [
                {"line": k.line, "identity": k.identity, "group": k.group_name}
                for k in self.kept_unsubscribed
            ],
        }

    def same_as(self, other: "ImportPlan") -> bool:
        return (
            self.new_profiles == other.new_profiles
            and self.updated_profiles == other.updated_profiles
            and self.state_changes == other.state_changes
            and self.kept_unsubscribed == other.kept_unsubscribed
        )


def clean_overwrite(overwrite_unsubscribes: bool, reason: str | None) -> str | None:
    """The reason to record; refused when overwriting without one, or a reason with no overwrite."""
    cleaned = clean_reason(reason)
    if overwrite_unsubscribes and cleaned is None:
        raise InvalidInput(
            "Overwriting unsubscribes needs a reason (--reason TEXT): it is recorded on every "
            "unsubscribe the import overwrites",
            field="reason",
        )
    if cleaned is not None and not overwrite_unsubscribes:
        raise InvalidInput(
            "A reason goes with --overwrite-unsubscribes: it is recorded on the unsubscribes "
            "the import overwrites",
            field="reason",
        )
    return cleaned


def _chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for begin in range(0, len(values), size):
        yield values[begin : begin + size]


def property_text(value: Any) -> str:
    """A property value as a CSV cell (strings as they are; numbers and the like as JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _select_where_in(
    session: Session, sql: str, values: Sequence[Any], *, lock: bool = False
) -> list[Any]:
    """The rows of ``sql`` (ending in ``WHERE column``) whose column is one of ``values``.

    Driver-level SQL: building and compiling IN lists of a few hundred
    thousand values through SQLAlchemy costs more than the lookups. With
    ``lock`` (PostgreSQL) the rows stay locked until commit, so ``set_state``
    in another session waits for the import rather than changing a state
    it planned from (SQLite's write lock does that already).
    """
    # The DBAPI cursor itself: SQLAlchemy's result rows would double the time here.
    connection = session.connection()
    cursor = connection.connection.cursor()
    rows: list[Any] = []
    try:
        if connection.dialect.name == "postgresql":
            statement = sql + " = ANY(%(values)s)" + (" FOR UPDATE" if lock else "")
            for chunk in _chunks(values, 20 * IN_CHUNK):
                cursor.execute(statement, {"values": list(chunk)})
                rows += cursor.fetchall()
        else:
            for chunk in _chunks(values, IN_CHUNK):
                cursor.execute(f"{sql} IN ({', '.join(['?'] * len(chunk))})", tuple(chunk))
                rows += cursor.fetchall()
    finally:
        cursor.close()
    return rows


def _properties(stored: Any) -> dict[str, Any]:
    """A profile's properties as read by the driver (JSON text on SQLite)."""
    if isinstance(stored, str):
        stored = json.loads(stored)
    return stored if isinstance(stored, dict) else {}


def _profile_update(
    row: ParsedRow,
    pid: int,
    old_email: str | None,
    old_name: str,
    stored_properties: Any,
    decoded: dict[str, dict[str, Any]],
) -> "ProfileUpdate | None":
    """The fields a row changes on an existing profile (empty cells leave fields as they are)."""
    changes: list[FieldChange] = []
    email, name = old_email, old_name
    if row.email is not None and row.email != old_email:
        changes.append(FieldChange(EMAIL, old_email, row.email))
        email = row.email
    if row.name is not None and row.name != old_name:
        changes.append(FieldChange(NAME, old_name, row.name))
        name = row.name
    if isinstance(stored_properties, str):  # JSON text (SQLite): many profiles share one
        text = stored_properties
        stored_properties = decoded.get(text)
        if stored_properties is None:
            stored_properties = decoded[text] = _properties(text)
    old_properties: dict[str, Any] = stored_properties or {}
    properties = old_properties
    for key, value in row.properties.items():
        old_value = old_properties.get(key)
        if property_text(old_value) != value:
            changes.append(FieldChange(key, old_value, value))
            if properties is old_properties:
                properties = dict(old_properties)
            properties[key] = value
    if not changes:
        return None
    return ProfileUpdate(row.line, row.identity, pid, email, name, properties, tuple(changes))


def _plan(
    session: Session,
    parsed: ParsedCsv,
    *,
    overwrite_unsubscribes: bool,
    reason: str | None,
    lock: bool,
    progress: Progress | None,
) -> ImportPlan:
    groups = {g.id: g for g in _all_groups(session)}
    group_ids = parsed.group_ids
    missing = [gid for gid in group_ids if gid not in groups]
    if missing:
        raise ImportOutdated("A group the file names no longer exists; read the file again")
    names = [groups[gid].name for gid in group_ids]
    total = len(parsed.rows)
    existing: dict[str, tuple[int, str | None, str, Any, str]] = {}
    rows = _select_where_in(
        session,
        "SELECT identity, id, email, name, properties, all_email FROM profile WHERE identity",
        [row.identity for row in parsed.rows],
        lock=lock,
    )
    for identity, pid, email, name, properties, all_email in rows:
        existing[identity] = (pid, email, name, properties, all_email)
    stored: dict[int, dict[int, str]] = {}  # profile id -> group id -> stored state
    if group_ids and existing:
        # By profile only (the primary key's prefix): faster than adding the groups.
        wanted = set(group_ids)
        rows = _select_where_in(
            session,
            "SELECT profile_id, group_id, state FROM group_state WHERE profile_id",
            [value[0] for value in existing.values()],
        )
        for pid, gid, state in rows:
            if gid in wanted:
                stored.setdefault(pid, {})[gid] = state
    new_profiles: list[NewProfile] = []
    updates: list[ProfileUpdate] = []
    changes: list[PlannedChange] = []
    kept: list[KeptUnsubscribed] = []
    columns_of = list(zip(group_ids, names, strict=True))
    decoded: dict[str, dict[str, Any]] = {}  # stored properties JSON -> dict (read only)
    for done, row in enumerate(parsed.rows, start=1):
        line, identity = row.line, row.identity
        found = existing.get(identity)
        if found is None:
            new_profiles.append(
                NewProfile(line, identity, row.email, row.name or "", row.properties)
            )
            if row.all_email == UNSUBSCRIBED:
                changes.append(
                    PlannedChange(
                        line, identity, None, None, None, SUBSCRIBED, UNSUBSCRIBED, False
                    )
                )
            for (gid, gname), new in zip(columns_of, row.states, strict=True):
                if new is not None:
                    changes.append(PlannedChange(line, identity, None, gid, gname, None, new, False))
            continue
        pid, old_email, old_name, old_properties, old_all = found
        if row.email is not None or row.name is not None or row.properties:
            update_ = _profile_update(row, pid, old_email, old_name, old_properties, decoded)
            if update_ is not None:
                updates.append(update_)
        if row.all_email is not None and row.all_email != old_all:
            if old_all != UNSUBSCRIBED:
                changes.append(
                    PlannedChange(line, identity, pid, None, None, old_all, row.all_email, False)
                )
            elif overwrite_unsubscribes:
                changes.append(
                    PlannedChange(line, identity, pid, None, None, old_all, row.all_email, True)
                )
            else:
                kept.append(KeptUnsubscribed(line, identity, None, None))
        mine = stored.get(pid, {})
        for (gid, gname), new in zip(columns_of, row.states, strict=True):
            if new is None:
                continue
            old = mine.get(gid)
            if old == new:
                continue
            if old != UNSUBSCRIBED:
                changes.append(PlannedChange(line, identity, pid, gid, gname, old, new, False))
            elif overwrite_unsubscribes:
                changes.append(PlannedChange(line, identity, pid, gid, gname, old, new, True))
            else:
                kept.append(KeptUnsubscribed(line, identity, gid, gname))
        if progress and done % CHUNK == 0:
            progress("planning", done, total)
    if progress:
        progress("planning", total, total)
    return ImportPlan(
        file=parsed.file,
        rows=total,
        new_profiles=new_profiles,
        updated_profiles=updates,
        state_changes=changes,
        kept_unsubscribed=kept,
        overwrite_unsubscribes=overwrite_unsubscribes,
        reason=reason,
        parsed=parsed,
    )


def _all_groups(session: Session) -> list[Group]:
    return list(session.execute(select(Group)).scalars())


def plan_import(
    *,
    session: Session,
    source: Source,
    overwrite_unsubscribes: bool = False,
    reason: str | None = None,
    progress: Progress | None = None,
) -> ImportPlan:
    """Read and check the whole file, then plan it against the store; writes nothing.

    Raises ``CsvError`` for a bad file and ``InvalidInput`` for an overwrite
    without a reason (or a reason without an overwrite).
    """
    cleaned = clean_overwrite(overwrite_unsubscribes, reason)
    parsed = read_csv(source, groups=_all_groups(session), progress=progress)
    return _plan(
        session, parsed, overwrite_unsubscribes=overwrite_unsubscribes, reason=cleaned,
        lock=bool(session.info.get("write")), progress=progress,
    )  # fmt: skip


# --- writing ------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """What an import did (or, for a dry run, would do)."""

    plan: ImportPlan
    dry_run: bool
    events: int
    seconds: float

    def to_json(self, *, details: bool = False) -> dict[str, Any]:
        out = {"dry_run": self.dry_run, **self.plan.summary_json(), "events": self.events}
        if details:
            out.update(self.plan.details_json())
        return out


class _Writer:
    """Statements compiled once for the session's dialect, run through the driver's executemany."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect

    def processor(self, table: Table, column: str) -> Callable[[Any], Any]:
        """How SQLAlchemy converts a value of this column for the driver."""
        kind = table.c[column].type
        convert = kind.dialect_impl(self.dialect).bind_processor(self.dialect)
        return convert or (lambda value: value)  # type: ignore[no-any-return]

    def run(self, statement: Any, keys: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Execute ``statement`` once per row; ``rows`` hold driver-ready values in ``keys`` order."""
        if not rows:
            return
        compiled = statement.compile(dialect=self.dialect, column_keys=list(keys))
        order = list(compiled.positiontup or keys) if compiled.positional else list(keys)
        params: Sequence[Any] = rows
        if not compiled.positional:
            params = [dict(zip(keys, row, strict=True)) for row in rows]
        elif order != list(keys):
            where = [list(keys).index(key) for key in order]
            params = [tuple(row[i] for i in where) for row in rows]
        self.session.connection().exec_driver_sql(compiled.string, params)


def _write(
    session: Session,
    plan: ImportPlan,
    *,
    actor: str,
    progress: Progress | None,
    cancel: Cancel | None,
) -> int:
    """Write a plan made in this same transaction; returns the number of ledger events."""
    writer = _Writer(session)
    profile_table: Table = Profile.__table__  # type: ignore[attr-defined]
    state_table: Table = GroupState.__table__  # type: ignore[attr-defined]
    event_table: Table = Event.__table__  # type: ignore[attr-defined]
    now = clock.now()
    to_ts = writer.processor(event_table, "ts")
    ts = to_ts(now)
    to_json = writer.processor(profile_table, "properties")
    total = len(plan.new_profiles) + len(plan.updated_profiles) + len(plan.state_changes)
    done = 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        if cancel is not None and cancel():
            raise ImportCancelled("The import was cancelled; nothing was written")
        if progress:
            progress("writing", done, total)

    step(0)
    ids: dict[str, int] = {}
    if plan.new_profiles:
        before = session.execute(select(func.coalesce(func.max(profile_table.c.id), 0))).scalar()
        keys = ("identity", "email", "name", "properties", "all_email", "created_at")
        to_created = writer.processor(profile_table, "created_at")
        created = to_created(now)
        # Serialised once per distinct set of properties (country and plan repeat a lot).
        as_json: dict[tuple[tuple[str, str], ...], Any] = {}

        def properties_json(properties: dict[str, str]) -> Any:
            key = tuple(properties.items())
            value = as_json.get(key)
            if value is None:
                value = to_json(properties)
                if len(as_json) < 100_000:
                    as_json[key] = value
            return value

        for chunk in _chunks(plan.new_profiles, CHUNK):
            rows = [
                (p.identity, p.email, p.name, properties_json(p.properties), SUBSCRIBED, created)
                for p in chunk
            ]
            writer.run(insert(profile_table), keys, rows)
            step(len(chunk))
        # Ids above the old maximum; another writer's rows (PostgreSQL) have other identities.
        query = select(profile_table.c.identity, profile_table.c.id).where(
            profile_table.c.id > before
        )
        ids.update((identity, pid) for identity, pid in session.execute(query))
    if plan.updated_profiles:
        statement = (
            update(profile_table)
            .where(profile_table.c.id == bindparam("b_id"))
            .values(
                email=bindparam("b_email"),
                name=bindparam("b_name"),
                properties=bindparam("b_properties", type_=profile_table.c.properties.type),
            )
        )
        keys = ("b_email", "b_name", "b_properties", "b_id")
        for chunk in _chunks(plan.updated_profiles, CHUNK):
            rows = [(u.email, u.name, to_json(u.properties), u.profile_id) for u in chunk]
            writer.run(statement, keys, rows)
            step(len(chunk))
    groups = {g.id: g for g in _all_groups(session)}
    events = 0
    for chunk in _chunks(plan.state_changes, CHUNK):
        events += _write_changes(
            writer, chunk, ids=ids, groups=groups, ts=ts, actor=actor, reason=plan.reason
        )
        step(len(chunk))
    ledger.record(
        session,
        name=PROFILES_IMPORTED,
        source=SOURCE,
        actor=actor,
        now=now,
        properties={
            "File": Path(plan.file).name,
            "Rows": plan.rows,
            "New Profiles": len(plan.new_profiles),
            "Updated Profiles": len(plan.updated_profiles),
            "State Changes": len(plan.state_changes),
            "Kept Unsubscribed": len(plan.kept_unsubscribed),
            "Overwritten Unsubscribes": plan.overwritten_unsubscribes,
            "Reason": plan.reason,
        },
    )
    return events


def _write_changes(
    writer: _Writer,
    changes: Sequence[PlannedChange],
    *,
    ids: dict[str, int],
    groups: dict[int | None, Group],
    ts: Any,
    actor: str,
    reason: str | None,
) -> int:
    """The rows ``subscriptions.apply_changes`` writes for these changes, in bulk.

    Same states, same channel flags, same events with the same properties
    (``change_properties``); the event properties are serialised once per
    distinct value (a few hundred for a million events). Only overwrites of
    an unsubscribe carry the import's reason.
    """
    profile_table: Table = Profile.__table__  # type: ignore[attr-defined]
    state_table: Table = GroupState.__table__  # type: ignore[attr-defined]
    event_table: Table = Event.__table__  # type: ignore[attr-defined]
    to_json = writer.processor(event_table, "properties")
    cache: dict[tuple[int | None, str | None, str, bool], Any] = {}
    new_states: list[tuple[Any, ...]] = []
    changed_states: list[tuple[Any, ...]] = []
    channel: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    name = ledger.CHANNEL_UNSUBSCRIBED
    for change in changes:
        pid = change.profile_id or ids[change.identity]
        gid = change.group_id
        key = (gid, change.old, change.new, change.overwrites_unsubscribe)
        properties = cache.get(key)
        if properties is None:
            properties = cache[key] = to_json(
                change_properties(
                    group=groups[gid] if gid is not None else None,
                    old=change.old,
                    new=change.new,
                    source=SOURCE,
                    actor=actor,
                    campaign_id=None,
                    reason=reason if change.overwrites_unsubscribe else None,
                )
            )
        if gid is None:
            channel.append((change.new, pid))
        elif change.old is None:
            new_states.append((pid, gid, change.new, ts))
        else:
            changed_states.append((change.new, ts, pid, gid))
        events.append((ts, name, change.identity, pid, gid, None, SOURCE, actor, properties))
    writer.run(
        insert(state_table), ("profile_id", "group_id", "state", "updated_at"), new_states
    )
    writer.run(
        update(state_table)
        .where(
            state_table.c.profile_id == bindparam("b_profile"),
            state_table.c.group_id == bindparam("b_group"),
        )
        .values(state=bindparam("b_state"), updated_at=bindparam("b_ts")),
        ("b_state", "b_ts", "b_profile", "b_group"),
        changed_states,
    )
    writer.run(
        update(profile_table)
        .where(profile_table.c.id == bindparam("b_id"))
        .values(all_email=bindparam("b_state")),
        ("b_state", "b_id"),
        channel,
    )
    keys = (
        "ts", "name", "identity", "profile_id", "group_id", "campaign_id", "source", "actor",
        "properties",
    )  # fmt: skip
    writer.run(insert(event_table), keys, events)
    return len(events)


def apply_import(
    *,
    store: Store,
    plan: ImportPlan,
    actor: str,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> ImportResult:
    """Write a previewed plan in one write transaction, with its ledger events.

    The plan is made again inside the transaction; if the store changed since
    the preview (another admin, the landing page) the import is refused with
    ``ImportOutdated`` and nothing is written.
    """
    started = time.perf_counter()
    with store.write() as session:
        fresh = _plan(
            session, plan.parsed, overwrite_unsubscribes=plan.overwrite_unsubscribes,
            reason=plan.reason, lock=True, progress=None,
        )  # fmt: skip
        if not fresh.same_as(plan):
            raise ImportOutdated(
                f"The store changed since {plan.file} was previewed (someone else changed "
                "profiles or states); preview it again"
            )
        events = _write_guarded(session, fresh, actor=actor, progress=progress, cancel=cancel)
    return ImportResult(plan=fresh, dry_run=False, events=events, seconds=time.perf_counter() - started)


def _write_guarded(
    session: Session, plan: ImportPlan, *, actor: str, progress: Progress | None,
    cancel: Cancel | None,
) -> int:  # fmt: skip
    try:
        return _write(session, plan, actor=actor, progress=progress, cancel=cancel)
    except IntegrityError as exc:  # another writer added one of the new identities meanwhile
        raise ImportOutdated(
            f"Another writer added or changed profiles of {plan.file} during the import; "
            "nothing was written, run it again"
        ) from exc


def import_profiles(
    *,
    store: Store,
    source: Source,
    actor: str,
    dry_run: bool = False,
    overwrite_unsubscribes: bool = False,
    reason: str | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> ImportResult:
    """Import a profile CSV: all of it, or (bad file) nothing; a dry run only plans.

    The file is read and checked before the write transaction begins, so the
    store's write lock is held only while planning and writing.
    """
    started = time.perf_counter()
    cleaned = clean_overwrite(overwrite_unsubscribes, reason)
    with store.read() as session:
        groups = _all_groups(session)
    parsed = read_csv(source, groups=groups, progress=progress)
    if dry_run:
        with store.read() as session:
            plan = _plan(
                session, parsed, overwrite_unsubscribes=overwrite_unsubscribes, reason=cleaned,
                lock=False, progress=progress,
            )  # fmt: skip
        return ImportResult(plan=plan, dry_run=True, events=0, seconds=time.perf_counter() - started)
    with store.write() as session:
        plan = _plan(
            session, parsed, overwrite_unsubscribes=overwrite_unsubscribes, reason=cleaned,
            lock=True, progress=progress,
        )  # fmt: skip
        events = _write_guarded(session, plan, actor=actor, progress=progress, cancel=cancel)
    return ImportResult(plan=plan, dry_run=False, events=events, seconds=time.perf_counter() - started)


# --- export -------------------------------------------------------------------


def export_columns(groups: Sequence[Group], property_names: Iterable[str]) -> list[str]:
    """The header of an export: identity, email, name, properties (sorted), all_email, groups."""
    return [
        IDENTITY, EMAIL, NAME, *sorted(property_names), ALL_EMAIL,
        *(GROUP_PREFIX + group.name for group in groups),
    ]  # fmt: skip


def export_profiles(
    *,
    session: Session,
    dest: IO[str],
    identities: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> int:
    """Write profiles as a profile CSV (all of them, or those named); returns how many.

    One ``group:`` column per group, archived ones included (by id), stored
    states only (empty: never set). Importing the file into the same store
    changes nothing; into an empty store with the same groups, it recreates
    the profiles and their stored states.
    """
    profile_table: Table = Profile.__table__  # type: ignore[attr-defined]
    state_table: Table = GroupState.__table__  # type: ignore[attr-defined]
    groups = sorted(_all_groups(session), key=lambda g: g.id or 0)
    position = {group.id: index for index, group in enumerate(groups)}
    wanted = None if identities is None else sorted(set(identities))
    # Pass 1: the property names (the header comes first).
    keys: set[str] = set()
    total = 0
    props_query = select(profile_table.c.properties)
    for batch in _id_batches(session, wanted):
        for (properties,) in session.execute(props_query.where(batch)):
            keys.update(properties or {})
            total += 1
    property_names = sorted(keys)
    writer = csv.writer(dest, lineterminator="\n")
    writer.writerow(export_columns(groups, property_names))
    columns = (
        profile_table.c.id, profile_table.c.identity, profile_table.c.email,
        profile_table.c.name, profile_table.c.properties, profile_table.c.all_email,
    )  # fmt: skip
    written = 0
    blank = [""] * len(groups)
    for batch in _id_batches(session, wanted):
        profiles = session.execute(select(*columns).where(batch).order_by(profile_table.c.id)).all()
        if not profiles:
            continue
        states: dict[int, list[str]] = {}
        state_query = select(state_table.c.profile_id, state_table.c.group_id, state_table.c.state)
        first, last = profiles[0][0], profiles[-1][0]
        ranged = state_query.where(state_table.c.profile_id.between(first, last))
        for pid, gid, state in session.execute(ranged):
            states.setdefault(pid, blank.copy())[position[gid]] = state
        rows = []
        for pid, identity, email, name, properties, all_email in profiles:
            properties = properties or {}
            rows.append(
                [identity, email or "", name or "",
                 *(property_text(properties.get(key)) for key in property_names),
                 all_email, *states.get(pid, blank)]
            )  # fmt: skip
        writer.writerows(rows)
        written += len(rows)
        if progress:
            progress("exporting", written, total)
    return written


def _id_batches(session: Session, identities: list[str] | None) -> Iterator[Any]:
    """WHERE clauses that cover the profiles to export in batches of about ``CHUNK``, by id."""
    table: Table = Profile.__table__  # type: ignore[attr-defined]
    if identities is not None:
        for chunk in _chunks(identities):
            yield table.c.identity.in_(chunk)
        return
    bounds = session.execute(select(func.min(table.c.id), func.max(table.c.id))).one()
    if bounds[0] is None:
        return
    low, high = int(bounds[0]), int(bounds[1])
    for begin in range(low, high + 1, CHUNK):
        yield table.c.id.between(begin, begin + CHUNK - 1)
