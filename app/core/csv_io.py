"""Profile CSV files: import (read, plan, write) and export (DESIGN.md §2).

The format: a header row; ``identity`` (required), ``email``, ``name``,
``all_email``, one ``group:<group name>`` column per group the file speaks
about (any group, archived ones included, matched ignoring case), and any
other column is a custom property. State cells hold ``subscribed``,
``unsubscribed`` or nothing (never set, or leave as is); an empty email,
name or property cell leaves the stored value as it is. UTF-8, with or
without a byte order mark.

An import runs in three steps, so the console can show a preview first:

1. ``read_csv`` checks the whole file against the groups and collects every
   problem (file, line, column) before giving up: a bad file raises
   ``CsvError`` and nothing is written.
2. ``plan_import`` compares the rows with the store: new profiles, changed
   fields, and every state change with the stored state it replaces. An
   explicit stored ``unsubscribed`` never becomes ``subscribed`` unless the
   import overwrites unsubscribes, with a reason; by default such cells are
   listed as kept unsubscribed and left alone.
3. ``apply_import`` plans again inside one write transaction, refuses if the
   store changed since the preview, and writes everything with one ledger
   event per state change (Source ``import``).

``import_profiles`` runs all three (a dry run stops after the plan).
At 200k rows the ORM's and SQLAlchemy's per-row work would cost more than
the database's (``bench/bench_import.py``), so writes go through the
driver (executemany on SQLite, COPY on PostgreSQL) with values converted as
the columns' types convert them, and lookups through the DBAPI cursor.
"""

import codecs
import csv
import gc
import io
import json
import operator
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from sqlalchemy import (
    JSON,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    cast,
    func,
    insert,
    select,
    update,
)
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

# A row (one record, even when a quoted cell spans lines) holds at most this
# many characters. Checked while reading, so a 10 MB line or a quote left
# open never sits in memory, whatever csv.field_size_limit (process-wide) says.
MAX_ROW_CHARS = 64 * 1024
IDENTITY_MAX, EMAIL_MAX, NAME_MAX = 320, 320, 200
SHOWN_PROBLEMS = 5  # in the error's message
KEPT_PROBLEMS = 200  # in the error's list; the rest are counted
CHUNK = 5_000  # rows per executemany, and per progress report
IN_CHUNK = 2_000  # values per IN (...) on SQLite
SQLITE_IMPORT_CACHE_KIB = 64 * 1024  # the page cache while an import writes
STATE_HELP = "use subscribed, unsubscribed, or leave the cell empty"

# (stage, done, total): "reading" counts bytes of a file (rows of a stream,
# total 0), "planning" rows, "writing" profiles and state changes.
Progress = Callable[[str, int, int], None]
# Asked between chunks while writing; True stops the import, which rolls back.
Cancel = Callable[[], bool]
Source = str | os.PathLike[str] | IO[str] | IO[bytes]

_PROFILE: Table = Profile.__table__  # type: ignore[attr-defined]
_STATE: Table = GroupState.__table__  # type: ignore[attr-defined]
_EVENT: Table = Event.__table__  # type: ignore[attr-defined]


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector during bulk work (re-entrant, thread-safe).

    An import keeps millions of small tuples alive; the collector's repeated
    passes over them cost more than reading the file (a third of the time at
    200k rows). They hold no reference cycles, so nothing is missed; other
    threads' cycles are collected once the last import is done.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


# --- errors -------------------------------------------------------------------


@dataclass(frozen=True)
class CsvProblem:
    """One thing wrong with a CSV file, and where (line and column are 1-based)."""

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
        return (
            f"{self.file}, {self.where}: {self.message}"
            if self.where
            else f"{self.file}: {self.message}"
        )


class CsvError(InvalidInput):
    """The file is not a valid profile CSV: ``problems`` (the first few hundred) and ``total``."""

    def __init__(self, problems: Sequence[CsvProblem], *, total: int = 0) -> None:
        self.problems = list(problems)
        self.total = max(total, len(self.problems))
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
    """The store changed between the preview and the import; nothing was written."""


class ImportCancelled(SubgroupsError):
    """The user stopped the import; nothing was written."""


# --- reading ------------------------------------------------------------------


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
class ParsedCsv:
    """A good file: the groups its columns name (by id) and its rows."""

    file: str
    columns: list[str]
    group_ids: list[int]
    property_names: list[str]
    rows: list[ParsedRow]


class _RowTooLong(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _Lines:
    """A text stream's physical lines, counted, with a bound on each row's length.

    ``csv.reader`` pulls lines until it has a whole row; ``read_csv`` sets
    ``pending`` back to 0 after each row, so it measures the row being read.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.line = 0
        self.pending = 0

    def __iter__(self) -> Iterator[str]:
        readline = self.stream.readline
        while True:
            text = readline(MAX_ROW_CHARS + 3)  # the row, its line ending, one more
            if not text:
                return
            self.line += 1
            self.pending += len(text)
            if self.pending > MAX_ROW_CHARS + 2:
                raise _RowTooLong(self.line)
            yield text


class _Problems:
    """Problems found so far: the first ``KEPT_PROBLEMS``, and how many in all."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.kept: list[CsvProblem] = []
        self.total = 0

    def add(self, line: int | None, column: str | None, number: int | None, message: str) -> None:
        self.append(CsvProblem(self.file, line, column, number, message))

    def append(self, problem: CsvProblem) -> None:
        self.total += 1
        if len(self.kept) < KEPT_PROBLEMS:
            self.kept.append(problem)

    def error(self) -> CsvError:
        return CsvError(self.kept, total=self.total)


def _display_name(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<stream>"


def _open_text(source: Source) -> tuple[IO[str], IO[bytes] | None, int]:
    """The text to read, the bytes under it (None: a text stream) and their size (0: unknown)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            raw: IO[bytes] = path.open("rb")
            size = os.fstat(raw.fileno()).st_size
        except OSError as exc:
            raise InvalidInput(
                f"{path}: cannot open the file: {exc.strerror}", field="file"
            ) from exc
    elif isinstance(source.read(0), bytes):
        raw, size = source, 0  # type: ignore[assignment]
    else:
        return source, None, 0  # type: ignore[return-value]
    # utf-8-sig: a byte order mark (Excel writes one) is read and dropped.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""), raw, size


def _decode_problem(raw: IO[bytes] | None, file: str) -> CsvProblem:
    """Where a file stops being UTF-8 (byte offset and line), found by reading it again."""
    fix = "save it as UTF-8 (with or without BOM) and import again"
    if raw is None or not raw.seekable():
        return CsvProblem(file, None, None, None, f"the file is not UTF-8 text; {fix}")
    raw.seek(0)
    if raw.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return CsvProblem(file, 1, None, None, f"the file is UTF-16 text, not UTF-8; {fix}")
    raw.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = newlines = 0  # before this block
    while True:
        block = raw.read(1 << 20)
        carried = decoder.getstate()[0]  # an unfinished character from the last block
        try:
            decoder.decode(block, final=not block)
        except UnicodeDecodeError as bad:  # positions are in carried + block
            data = carried + block
            line = newlines + data[: bad.start].count(b"\n") + 1
            byte = data[bad.start : bad.start + 1]
            what = f"byte 0x{byte.hex().upper()}" if byte else "an unfinished character"
            at = offset - len(carried) + bad.start
            message = (
                f"the file is not UTF-8: {what} at byte offset {at:,} is not UTF-8 text; {fix}"
            )
            return CsvProblem(file, line, None, None, message)
        if not block:
            return CsvProblem(file, None, None, None, f"the file is not UTF-8 text; {fix}")
        offset += len(block)
        newlines += block.count(b"\n")


@dataclass
class _Header:
    """Where each kind of column is (0-based cell indexes)."""

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
    columns: list[str], *, line: int, groups: Sequence[Group], problems: _Problems
) -> _Header | None:
    by_key = {group.name_key: group for group in groups}
    seen: dict[object, int] = {}
    fixed: dict[str, int] = {}
    group_columns: list[tuple[int, Group]] = []
    properties: list[tuple[int, str]] = []
    for index, column in enumerate(columns):
        number = index + 1
        lowered = column.casefold()
        key: object = lowered
        group = None
        if not column:
            problems.add(line, None, number, "the column has no name; every column needs one")
            continue
        if lowered.startswith(GROUP_PREFIX):
            group_name = column[len(GROUP_PREFIX) :].strip()
            group = by_key.get(name_key(group_name))
            if group is None:
                problems.add(
                    line, column, number,
                    f"no group is named {group_name!r} (names match ignoring case, archived "
                    "groups included; `subgroups groups list --all` lists them)",
                )  # fmt: skip
                continue
            key = group.id
        elif lowered not in FIXED_COLUMNS:
            key = ("property", column)
        if key in seen:
            problems.add(
                line, column, number,
                f"the column repeats column {seen[key]} ({columns[seen[key] - 1]!r}); "
                "each column may appear once",
            )  # fmt: skip
            continue
        seen[key] = number
        if group is not None:
            group_columns.append((index, group))
        elif lowered in FIXED_COLUMNS:
            fixed[lowered] = index
        else:
            properties.append((index, column))
    if IDENTITY not in fixed:
        names = ", ".join(repr(c) for c in columns[:8]) + (", …" if len(columns) > 8 else "")
        problems.add(
            line,
            None,
            None,
            f"the header has no identity column, which is required (it has {names})",
        )
    if problems.total:
        return None
    return _Header(
        fixed[IDENTITY], fixed.get(EMAIL), fixed.get(NAME), fixed.get(ALL_EMAIL),
        group_columns, properties,
    )  # fmt: skip


# One @ with something before it; a domain of dot-separated labels; no spaces.
_EMAIL = re.compile(r"[^@\s]+@(?:[^@\s.]+\.)+[^@\s.]+")


def valid_email(text: str) -> bool:
    """A simple, sane check: one @ with something before it, a dotted domain, no spaces."""
    return _EMAIL.fullmatch(text) is not None


@_cyclic_gc_paused()
def read_csv(
    source: Source, *, groups: Sequence[Group], progress: Progress | None = None
) -> ParsedCsv:
    """Read and check a whole profile CSV against ``groups`` (all of them, archived too).

    ``source`` is a path, a text stream or a binary stream. Raises
    ``CsvError`` with every problem found (the first few hundred kept, all
    counted); returns only when the whole file is good.
    """
    file = _display_name(source)
    problems = _Problems(file)
    text, raw, size = _open_text(source)
    lines = _Lines(text)
    rows: list[ParsedRow] = []
    header: _Header | None = None
    columns: list[str] = []
    seen: dict[str, int] = {}
    start = read = 0
    try:
        for cells in csv.reader(lines, strict=True):
            line, start, lines.pending = start + 1, lines.line, 0
            if not any(cells) or (len(cells) == 1 and not cells[0].strip()):
                continue  # a blank line, or one of empty cells (",,,") as spreadsheets leave
            if header is None:
                # A byte order mark left by a text stream's reader is no part of the name.
                columns = [cell.strip() for cell in (cells[0].lstrip("\ufeff"), *cells[1:])]
                header = _read_header(columns, line=line, groups=groups, problems=problems)
                if header is None:
                    break
                continue
            if len(cells) != len(columns):
                _wrong_width(cells, line, columns, problems)
            else:
                row = _read_row(cells, line, header, columns, seen, problems)
                if row is not None:
                    rows.append(row)
            read += 1
            if progress and read % CHUNK == 0:
                progress("reading", raw.tell() if size and raw else read, size)
    except _RowTooLong as exc:
        problems.add(
            exc.line, None, None,
            f"the row is longer than {MAX_ROW_CHARS:,} characters (64 KiB), the most a row may "
            "hold; is a quote (\") left open?",
        )  # fmt: skip
    except UnicodeDecodeError:
        problems.append(_decode_problem(raw, file))
    except csv.Error as exc:  # named at the row it began in: an open quote runs on from there
        problems.add(
            start + 1, None, None,
            f"the file is not valid CSV from this row on: {exc} (is a quote (\") left open?)",
        )  # fmt: skip
    finally:
        if isinstance(source, (str, os.PathLike)):
            text.close()
        elif isinstance(text, io.TextIOWrapper) and raw is not None:
            text.detach()  # the caller's stream stays open
    if header is None and not problems.total:
        problems.add(
            1, None, None, "the file is empty; expected a header row with an identity column"
        )
    if problems.total:
        raise problems.error()
    assert header is not None
    if progress:
        progress("reading", size or read, size or read)
    return ParsedCsv(
        file=file,
        columns=columns,
        group_ids=[group.id for _, group in header.groups if group.id is not None],
        property_names=[name for _, name in header.properties],
        rows=rows,
    )


def _wrong_width(cells: list[str], line: int, columns: list[str], problems: _Problems) -> None:
    width = len(columns)
    message = f"the row has {len(cells)} cells but the header has {width} columns"
    if len(cells) > width:
        problems.add(line, None, width + 1, message)
        return
    missing = ", ".join(columns[len(cells) : len(cells) + 3]) + (
        ", …" if width - len(cells) > 3 else ""
    )
    problems.add(line, None, len(cells) + 1, f"{message} (missing: {missing})")


# Exact cells, looked up in one step; anything else goes the slow way (_state).
_STATE_CELLS: dict[str, str | None] = {"": None, SUBSCRIBED: SUBSCRIBED, UNSUBSCRIBED: UNSUBSCRIBED}


def _read_row(
    cells: list[str],
    line: int,
    header: _Header,
    columns: list[str],
    seen: dict[str, int],
    problems: _Problems,
) -> ParsedRow | None:
    """The row checked, or None (its problems noted)."""
    before = problems.total
    at = header.identity
    identity = cells[at].strip()
    if not identity:
        problems.add(line, columns[at], at + 1, "the identity is empty; every row needs one")
    elif len(identity) > IDENTITY_MAX:
        problems.add(
            line, columns[at], at + 1,
            f"the identity is {len(identity)} characters long; the most is {IDENTITY_MAX}",
        )  # fmt: skip
    elif identity in seen:
        problems.add(
            line, columns[at], at + 1,
            f"identity {identity!r} is also on line {seen[identity]}; a profile may appear once",
        )  # fmt: skip
    else:
        seen[identity] = line
    email = name = all_email = None
    if header.email is not None:
        at = header.email
        email = cells[at].strip() or None
        if email is not None and (len(email) > EMAIL_MAX or _EMAIL.fullmatch(email) is None):
            problems.add(
                line, columns[at], at + 1,
                f"{email[:80]!r} is not an email address (one @, a dotted domain, no spaces, "
                f"at most {EMAIL_MAX} characters)",
            )  # fmt: skip
    if header.name is not None:
        at = header.name
        name = cells[at].strip() or None
        if name is not None and len(name) > NAME_MAX:
            problems.add(
                line, columns[at], at + 1,
                f"the name is {len(name)} characters long; the most is {NAME_MAX}",
            )  # fmt: skip
    if header.all_email is not None:
        all_email = _state(cells, header.all_email, line, columns, problems)
    try:
        states = tuple(map(_STATE_CELLS.__getitem__, header.group_cells(cells)))
    except KeyError:
        states = tuple(_state(cells, index, line, columns, problems) for index, _ in header.groups)
    properties = {}
    for index, key in header.properties:
        value = cells[index].strip()
        if value:
            properties[key] = value
    if problems.total != before:
        return None
    # tuple.__new__: the named tuple without its Python-level __new__ (hot: once a row).
    return tuple.__new__(ParsedRow, (line, identity, email, name, all_email, states, properties))


def _state(
    cells: list[str], index: int, line: int, columns: list[str], problems: _Problems
) -> str | None:
    cell = cells[index]
    if cell in _STATE_CELLS:
        return _STATE_CELLS[cell]
    word = cell.strip().lower()
    if not word or word in STATES:
        return word or None
    problems.add(
        line, columns[index], index + 1, f"{cell.strip()[:80]!r} is not a state; {STATE_HELP}"
    )
    return None


# --- planning -----------------------------------------------------------------


class NewProfile(NamedTuple):
    """A profile the import creates (subscribed to all email until a change says otherwise)."""

    line: int
    identity: str
    email: str | None
    name: str
    properties: dict[str, str]


class FieldChange(NamedTuple):
    """One changed field of an existing profile: ``column`` is email, name or a property."""

    column: str
    old: Any
    new: str


class ProfileUpdate(NamedTuple):
    """An existing profile whose fields the import changes, with all its new values."""

    line: int
    identity: str
    profile_id: int
    email: str | None
    name: str
    properties: dict[str, Any]
    changes: tuple[FieldChange, ...]


class PlannedChange(NamedTuple):
    """One state change; group None means all email, ``old`` None means never set.

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
    """A ``subscribed`` cell over an explicit unsubscribe, left alone (group None: all email)."""

    line: int
    identity: str
    group_id: int | None
    group_name: str | None


@dataclass
class ImportPlan:
    """What an import does, from the store as it was when planned."""

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
        """Rows that change nothing (kept unsubscribes aside)."""
        touched = {c.identity for c in self.state_changes}
        touched.update(p.identity for p in self.new_profiles)
        touched.update(p.identity for p in self.updated_profiles)
        return self.rows - len(touched)

    @property
    def overwritten_unsubscribes(self) -> int:
        return sum(1 for c in self.state_changes if c.overwrites_unsubscribe)

    def changes_by_group(self) -> list[tuple[int | None, str | None, int, int]]:
        """(group id, name, to subscribed, to unsubscribed) in file order; id None: all email."""
        counts = Counter((c.group_id, c.new) for c in self.state_changes)
        names = {c.group_id: c.group_name for c in self.state_changes}
        return [
            (gid, names[gid], counts[(gid, SUBSCRIBED)], counts[(gid, UNSUBSCRIBED)])
            for gid in (None, *self.parsed.group_ids)
            if gid in names
        ]

    def summary_json(self) -> dict[str, Any]:
        """The counts, for people and scripts."""
        return {
            "file": self.file,
            "rows": self.rows,
            "new_profiles": len(self.new_profiles),
            "updated_profiles": len(self.updated_profiles),
            "unchanged_rows": self.unchanged_rows,
            "state_changes": len(self.state_changes),
            "by_group": [
                {"group_id": gid, "group": name, "subscribed": sub, "unsubscribed": unsub}
                for gid, name, sub, unsub in self.changes_by_group()
            ],
            "kept_unsubscribed": len(self.kept_unsubscribed),
            "overwritten_unsubscribes": self.overwritten_unsubscribes,
            "reason": self.reason,
        }

    def details_json(self) -> dict[str, Any]:
        """Every new profile, field change, state change and kept unsubscribe.

        A ``group`` of null means all email.
        """
        return {
            "new_profile_list": [
                {"line": p.line, "identity": p.identity} for p in self.new_profiles
            ],
            "updated_profile_list": [
                {
                    "line": u.line,
                    "identity": u.identity,
                    "changes": [
                        {"column": c.column, "old": c.old, "new": c.new} for c in u.changes
                    ],
                }
                for u in self.updated_profiles
            ],
            "state_change_list": [
                {
                    "line": c.line,
                    "identity": c.identity,
                    "group": c.group_name,
                    "old": c.old,
                    "new": c.new,
                    "overwrites_unsubscribe": c.overwrites_unsubscribe,
                }
                for c in self.state_changes
            ],
            "kept_unsubscribed_list": [
                {"line": k.line, "identity": k.identity, "group": k.group_name}
                for k in self.kept_unsubscribed
            ],
        }

    def same_as(self, other: "ImportPlan") -> bool:
        """True when both plans write the same things."""
        return (
            self.new_profiles == other.new_profiles
            and self.updated_profiles == other.updated_profiles
            and self.state_changes == other.state_changes
            and self.kept_unsubscribed == other.kept_unsubscribed
        )


def clean_overwrite(overwrite_unsubscribes: bool, reason: str | None) -> str | None:
    """The reason recorded on overwritten unsubscribes; refused if missing, or given for nothing."""
    cleaned = clean_reason(reason)
    if overwrite_unsubscribes and cleaned is None:
        raise InvalidInput(
            "Overwriting unsubscribes needs a reason (--reason TEXT); it is recorded on every "
            "unsubscribe the import overwrites",
            field="reason",
        )
    if cleaned is not None and not overwrite_unsubscribes:
        raise InvalidInput(
            "A reason goes with --overwrite-unsubscribes; it is recorded on the unsubscribes "
            "the import overwrites",
            field="reason",
        )
    return cleaned


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for begin in range(0, len(values), size):
        yield values[begin : begin + size]


def _fetch(session: Session, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """The rows of a query (``?`` placeholders) on the DBAPI cursor itself.

    At a few hundred thousand rows, SQLAlchemy's result rows and IN lists
    double the time of these reads.
    """
    connection = session.connection()
    if connection.dialect.paramstyle != "qmark":  # psycopg; our SQL holds no other ? or %
        sql = sql.replace("?", "%s")
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _select_where_in(
    session: Session, sql: str, values: Sequence[Any], *, lock: bool = False
) -> list[Any]:
    """The rows of ``sql`` (which ends in ``WHERE column``) whose column is one of ``values``.

    ``lock`` (PostgreSQL) keeps the rows locked until commit, so
    ``set_state`` in another session waits for the import rather than
    changing a state under its plan (on SQLite the write transaction's lock
    does that already).
    """
    rows: list[Any] = []
    if session.get_bind().dialect.name == "postgresql":
        statement = sql + " = ANY(?)" + (" FOR UPDATE" if lock else "")
        for chunk in _chunks(values, 20 * IN_CHUNK):
            rows += _fetch(session, statement, [list(chunk)])
        return rows
    for chunk in _chunks(values, IN_CHUNK):
        rows += _fetch(session, f"{sql} IN ({', '.join(['?'] * len(chunk))})", chunk)
    return rows


def property_text(value: Any) -> str:
    """A property value as a CSV cell: text as it is, numbers and the like as JSON, None empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _stored_properties(stored: Any, decoded: dict[str, dict[str, Any]]) -> dict[str, Any]:
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


def _profile_update(
    row: ParsedRow,
    pid: int,
    old_email: str | None,
    old_name: str,
    old_properties: dict[str, Any],
) -> ProfileUpdate | None:
    """The fields a row changes on an existing profile; empty cells change nothing."""
    changes: list[FieldChange] = []
    email, name = old_email, old_name
    if row.email is not None and row.email != old_email:
        changes.append(FieldChange(EMAIL, old_email, row.email))
        email = row.email
    if row.name is not None and row.name != old_name:
        changes.append(FieldChange(NAME, old_name, row.name))
        name = row.name
    properties = old_properties
    for key, value in row.properties.items():
        old_value = old_properties.get(key)
        if property_text(old_value) != value:
            changes.append(FieldChange(key, old_value, value))
            if properties is old_properties:  # copy on first write: the old one is shared
                properties = dict(old_properties)
            properties[key] = value
    if not changes:
        return None
    return ProfileUpdate(row.line, row.identity, pid, email, name, properties, tuple(changes))


@_cyclic_gc_paused()
def _plan(
    session: Session,
    parsed: ParsedCsv,
    *,
    overwrite_unsubscribes: bool,
    reason: str | None,
    lock: bool,
    progress: Progress | None = None,
) -> ImportPlan:
    """Compare the rows with the store as this session sees it."""
    groups = {group.id: group for group in _all_groups(session)}
    if any(gid not in groups for gid in parsed.group_ids):  # cannot happen: groups stay
        raise ImportOutdated("A group the file names is gone; read the file again")
    columns = [(gid, groups[gid].name) for gid in parsed.group_ids]
    existing = {
        identity: (pid, email, name, properties, all_email)
        for identity, pid, email, name, properties, all_email in _select_where_in(
            session,
            "SELECT identity, id, email, name, properties, all_email FROM profile WHERE identity",
            [row.identity for row in parsed.rows],
            lock=lock,
        )
    }
    stored: dict[int, dict[int, str]] = {}  # profile id -> group id -> stored state
    if columns and existing:
        wanted = set(parsed.group_ids)
        # By profile only (the primary key's prefix): faster than naming the groups too.
        for pid, gid, state in _select_where_in(
            session,
            "SELECT profile_id, group_id, state FROM group_state WHERE profile_id",
            [found[0] for found in existing.values()],
        ):
            if gid in wanted:
                stored.setdefault(pid, {})[gid] = state
    new_profiles: list[NewProfile] = []
    updates: list[ProfileUpdate] = []
    changes: list[PlannedChange] = []
    kept: list[KeptUnsubscribed] = []
    decoded: dict[str, dict[str, Any]] = {}
    total = len(parsed.rows)
    # tuple.__new__ skips the named tuples' Python-level __new__ (hot: once a state).
    make = tuple.__new__
    for done, row in enumerate(parsed.rows, start=1):
        line, identity, email, name, all_email, states, properties = row
        if progress and done % CHUNK == 0:
            progress("planning", done, total)
        found = existing.get(identity)
        if found is None:
            new_profiles.append(make(NewProfile, (line, identity, email, name or "", properties)))
            if all_email == UNSUBSCRIBED:
                changes.append(
                    PlannedChange(line, identity, None, None, None, SUBSCRIBED, UNSUBSCRIBED, False)
                )
            for (gid, gname), state in zip(columns, states, strict=False):
                if state is not None:
                    changes.append(
                        make(PlannedChange, (line, identity, None, gid, gname, None, state, False))
                    )
            continue
        pid, old_email, old_name, old_properties, old_all = found
        old_properties = _stored_properties(old_properties, decoded)
        if (
            (email is not None and email != old_email)
            or (name is not None and name != old_name)
            or (properties and not properties.items() <= old_properties.items())
        ):
            update_ = _profile_update(row, pid, old_email, old_name, old_properties)
            if update_ is not None:  # None: a stored 7 and a cell "7" are the same
                updates.append(update_)
        mine = stored.get(pid, {})
        cells: list[tuple[int | None, str | None, str | None, str]] = []
        if all_email:
            cells.append((None, None, old_all, all_email))
        cells += [
            (gid, gname, mine.get(gid), state)
            for (gid, gname), state in zip(columns, states, strict=False)
            if state is not None
        ]
        for group_id, group_name, old, new in cells:
            if old == new:
                continue
            if old != UNSUBSCRIBED or overwrite_unsubscribes:
                overwrites = old == UNSUBSCRIBED
                changes.append(
                    make(
                        PlannedChange,
                        (line, identity, pid, group_id, group_name, old, new, overwrites),
                    )
                )
            else:
                kept.append(KeptUnsubscribed(line, identity, group_id, group_name))
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
    return list(session.execute(select(Group).order_by(Group.id)).scalars())  # type: ignore[arg-type]


def plan_import(
    *,
    session: Session,
    source: Source,
    overwrite_unsubscribes: bool = False,
    reason: str | None = None,
    progress: Progress | None = None,
) -> ImportPlan:
    """Read and check the whole file, then plan it against the store; writes nothing.

    Raises ``CsvError`` for a bad file, ``InvalidInput`` for an overwrite
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
    """What an import did, or for a dry run would do; ``events`` is the ledger events written."""

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
    """Bulk writes in the session's transaction, as fast as the driver allows.

    SQLite: statements compiled once per chunk and run with executemany.
    PostgreSQL: new rows go in with COPY (psycopg's executemany costs some
    40 µs of Python a row); updates with executemany. Values are handed over
    ready for the driver, converted once by ``processor``.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect
        self.copy = self.dialect.name == "postgresql"

    def processor(self, table: Table, column: str) -> Callable[[Any], Any]:
        """How a value of this column goes to the driver (as SQLAlchemy would send it)."""
        kind = table.c[column].type
        if self.copy:  # COPY takes plain values, and JSON as its text (as json.dumps writes it)
            if isinstance(kind, JSON):
                return json.dumps
            if isinstance(kind, TypeDecorator):
                return lambda value: kind.process_bind_param(value, self.dialect)
            return lambda value: value
        convert = kind.dialect_impl(self.dialect).bind_processor(self.dialect)
        return convert or (lambda value: value)

    def insert(self, table: Table, keys: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows of driver-ready values, given in ``keys`` order."""
        if not rows:
            return
        if not self.copy:
            self.run(insert(table), keys, rows)
            return
        cursor = self.session.connection().connection.cursor()
        try:
            with cursor.copy(f"COPY {table.name} ({', '.join(keys)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()

    def run(self, statement: Any, keys: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Execute ``statement`` for each row of driver-ready values, given in ``keys`` order."""
        if not rows:
            return
        compiled = statement.compile(dialect=self.dialect, column_keys=list(keys))
        params: Sequence[Any] = rows
        if not compiled.positional:
            params = [dict(zip(keys, row, strict=True)) for row in rows]
        elif list(compiled.positiontup) != list(keys):
            where = [list(keys).index(key) for key in compiled.positiontup]
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
    now = clock.now()
    ts = writer.processor(_EVENT, "ts")(now)
    total = len(plan.new_profiles) + len(plan.updated_profiles) + len(plan.state_changes)
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if cancel is not None and cancel():
            raise ImportCancelled(f"The import of {plan.file} was cancelled; nothing was written")
        if progress:
            progress("writing", done, total)

    advance(0)
    to_json = writer.processor(_PROFILE, "properties")
    ids: dict[str, int] = {}
    if plan.new_profiles:
        before = session.execute(select(func.coalesce(func.max(_PROFILE.c.id), 0))).scalar_one()
        created = writer.processor(_PROFILE, "created_at")(now)
        serialised: dict[tuple[tuple[str, str], ...], Any] = {}  # country and plan repeat a lot
        keys = ("identity", "email", "name", "properties", "all_email", "created_at")
        for chunk in _chunks(plan.new_profiles, CHUNK):
            rows = []
            for p in chunk:
                key = tuple(p.properties.items())
                properties = serialised.get(key)
                if properties is None:
                    properties = to_json(p.properties)
                    if len(serialised) < 100_000:
                        serialised[key] = properties
                rows.append((p.identity, p.email, p.name, properties, SUBSCRIBED, created))
            writer.insert(_PROFILE, keys, rows)
            advance(len(chunk))
        # The new ids: above the old maximum (other writers' rows have other identities).
        ids.update(_fetch(session, "SELECT identity, id FROM profile WHERE id > ?", [before]))
    profile_update = (
        update(_PROFILE)
        .where(_PROFILE.c.id == bindparam("b_id"))
        .values(
            email=bindparam("b_email"),
            name=bindparam("b_name"),
            properties=bindparam("b_properties"),
        )
    )
    for chunk in _chunks(plan.updated_profiles, CHUNK):
        values = [(u.email, u.name, to_json(u.properties), u.profile_id) for u in chunk]
        writer.run(profile_update, ("b_email", "b_name", "b_properties", "b_id"), values)
        advance(len(chunk))
    groups = {group.id: group for group in _all_groups(session)}
    events = 0
    for chunk in _chunks(plan.state_changes, CHUNK):
        events += _write_changes(
            writer, chunk, ids=ids, groups=groups, ts=ts, actor=actor, reason=plan.reason
        )
        advance(len(chunk))
    if not total:
        return 0  # nothing changes: the store, its ledger included, stays as it was
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


_STATE_UPDATE = (
    update(_STATE)
    .where(_STATE.c.profile_id == bindparam("b_profile"), _STATE.c.group_id == bindparam("b_group"))
    .values(state=bindparam("b_state"), updated_at=bindparam("b_ts"))
)
_CHANNEL_UPDATE = (
    update(_PROFILE)
    .where(_PROFILE.c.id == bindparam("b_id"))
    .values(all_email=bindparam("b_state"))
)
_EVENT_KEYS = (
    "ts",
    "name",
    "identity",
    "profile_id",
    "group_id",
    "campaign_id",
    "source",
    "actor",
    "properties",
)


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
    """The rows ``subscriptions.apply_changes`` writes for these changes, written in bulk.

    The same states, channel flags and events with the same properties
    (``change_properties``), each distinct properties value serialised once
    (a few hundred for a million events). Only an overwritten unsubscribe
    carries the import's reason.
    """
    to_json = writer.processor(_EVENT, "properties")
    serialised: dict[tuple[int | None, str | None, str, bool], Any] = {}
    new_states: list[tuple[Any, ...]] = []
    changed_states: list[tuple[Any, ...]] = []
    channel: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    name = ledger.CHANNEL_UNSUBSCRIBED
    for change in changes:
        pid = ids[change.identity] if change.profile_id is None else change.profile_id
        gid = change.group_id
        key = (gid, change.old, change.new, change.overwrites_unsubscribe)
        properties = serialised.get(key)
        if properties is None:
            properties = serialised[key] = to_json(
                change_properties(
                    group=None if gid is None else groups[gid],
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
    writer.insert(_STATE, ("profile_id", "group_id", "state", "updated_at"), new_states)
    writer.run(_STATE_UPDATE, ("b_state", "b_ts", "b_profile", "b_group"), changed_states)
    writer.run(_CHANNEL_UPDATE, ("b_state", "b_id"), channel)
    writer.insert(_EVENT, _EVENT_KEYS, events)
    return len(events)


@_cyclic_gc_paused()
def _write_or_refuse(
    session: Session,
    plan: ImportPlan,
    *,
    actor: str,
    progress: Progress | None,
    cancel: Cancel | None,
) -> int:
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A page cache big enough for indexes that grow in random order (emails):
        # a third less CPU for 200k profile inserts. Given back afterwards, as
        # the connection returns to the pool.
        cache = int(connection.exec_driver_sql("PRAGMA cache_size").scalar_one())
        connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_IMPORT_CACHE_KIB}")
    try:
        return _write(session, plan, actor=actor, progress=progress, cancel=cancel)
    except IntegrityError as exc:  # another writer created one of the new identities meanwhile
        raise ImportOutdated(
            f"Another writer added profiles of {plan.file} during the import; nothing was written, "
            "import it again"
        ) from exc
    finally:
        if sqlite:
            connection.exec_driver_sql(f"PRAGMA cache_size = {cache}")


def apply_import(
    *,
    store: Store,
    plan: ImportPlan,
    actor: str,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> ImportResult:
    """Write a previewed plan in one write transaction, with its ledger events.

    The plan is made again inside the transaction: if the store changed
    since the preview (another admin, the landing page), the import is
    refused with ``ImportOutdated`` and nothing is written.
    """
    started = time.perf_counter()
    with store.write() as session:
        fresh = _plan(
            session, plan.parsed, overwrite_unsubscribes=plan.overwrite_unsubscribes,
            reason=plan.reason, lock=True,
        )  # fmt: skip
        if not fresh.same_as(plan):
            raise ImportOutdated(
                f"The store changed since {plan.file} was previewed (profiles or states were "
                "changed meanwhile); preview it again"
            )
        events = _write_or_refuse(session, fresh, actor=actor, progress=progress, cancel=cancel)
    return ImportResult(fresh, dry_run=False, events=events, seconds=time.perf_counter() - started)


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
    """Import a profile CSV: all of it, or (a bad file) nothing; a dry run only plans.

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
        return ImportResult(plan, dry_run=True, events=0, seconds=time.perf_counter() - started)
    with store.write() as session:
        plan = _plan(
            session, parsed, overwrite_unsubscribes=overwrite_unsubscribes, reason=cleaned,
            lock=True, progress=progress,
        )  # fmt: skip
        events = _write_or_refuse(session, plan, actor=actor, progress=progress, cancel=cancel)
    return ImportResult(plan, dry_run=False, events=events, seconds=time.perf_counter() - started)


# --- export -------------------------------------------------------------------


def export_profiles(
    *,
    session: Session,
    dest: IO[str],
    identities: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> int:
    """Write profiles as a profile CSV (all of them, or those named); returns how many.

    Columns: identity, email, name, the properties (sorted), all_email, and
    one ``group:`` column per group, archived ones included (by id), holding
    the stored state (empty: never set). Importing the file into the same
    store changes nothing; into an empty store with the same groups, it
    recreates the profiles and their stored states.
    """
    groups = _all_groups(session)
    position = {group.id: index for index, group in enumerate(groups)}
    wanted = None if identities is None else sorted(set(identities))
    # The header needs every property name first: one pass over the distinct values.
    keys: set[str] = set()
    total = 0
    text = cast(_PROFILE.c.properties, Text)
    distinct = select(text, func.count()).group_by(text)
    for where in _batches(session, wanted):
        for properties, count in session.execute(distinct.where(where)):
            keys.update(json.loads(properties) if properties else {})
            total += count
    property_names = sorted(keys)
    writer = csv.writer(dest, lineterminator="\n")
    groups_header = [GROUP_PREFIX + group.name for group in groups]
    writer.writerow([IDENTITY, EMAIL, NAME, *property_names, ALL_EMAIL, *groups_header])
    blank = [""] * len(groups)
    decoded: dict[str, dict[str, Any]] = {}
    columns = "SELECT id, identity, email, name, properties, all_email FROM profile WHERE"
    written = 0
    for low, high, chunk in _export_batches(session, wanted):
        if chunk is None:
            profiles = _fetch(session, f"{columns} id BETWEEN ? AND ? ORDER BY id", [low, high])
        else:
            profiles = sorted(_select_where_in(session, f"{columns} identity", chunk))
        if not profiles:
            continue
        states: dict[int, list[str]] = {}
        if chunk is None:
            found = _fetch(
                session,
                "SELECT profile_id, group_id, state FROM group_state "
                "WHERE profile_id BETWEEN ? AND ?",
                [low, high],
            )
        else:
            found = _select_where_in(
                session,
                "SELECT profile_id, group_id, state FROM group_state WHERE profile_id",
                [row[0] for row in profiles],
            )
        for pid, gid, state in found:
            states.setdefault(pid, blank.copy())[position[gid]] = state
        rows = []
        for pid, identity, email, name, properties, all_email in profiles:
            stored = _stored_properties(properties, decoded)
            values = [property_text(stored.get(key)) for key in property_names]
            rows.append(
                [identity, email or "", name or "", *values, all_email, *states.get(pid, blank)]
            )
        writer.writerows(rows)
        written += len(rows)
        if progress:
            progress("exporting", written, total)
    return written


def _batches(session: Session, identities: list[str] | None) -> Iterator[Any]:
    """WHERE clauses covering the profiles to export, about ``CHUNK`` at a time."""
    for low, high, chunk in _export_batches(session, identities):
        if chunk is None:
            yield _PROFILE.c.id.between(low, high)
        else:
            yield _PROFILE.c.identity.in_(chunk)


def _export_batches(
    session: Session, identities: list[str] | None
) -> Iterator[tuple[int, int, Sequence[str] | None]]:
    """(low id, high id, None) ranges of about ``CHUNK`` profiles, or (0, 0, identities) chunks."""
    if identities is not None:
        for chunk in _chunks(identities, IN_CHUNK):
            yield 0, 0, chunk
        return
    low, high = session.execute(select(func.min(_PROFILE.c.id), func.max(_PROFILE.c.id))).one()
    if low is None:
        return
    for begin in range(int(low), int(high) + 1, CHUNK):
        yield begin, begin + CHUNK - 1, None
