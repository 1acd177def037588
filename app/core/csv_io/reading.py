"""Reading a profile CSV: the whole file checked against the groups (step 1 of an import).

``read_csv`` collects every problem (file, line, column) before giving up:
a bad file raises ``CsvError`` with all of them, and nothing is written. A
good file comes back as ``ParsedCsv``: its rows with their cells checked
and cleaned, state cells as stored states (None: empty).
"""

import codecs
import csv
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from app.core import bulk
from app.core.csv_io.columns import (
    Found,
    Header,
    ParsedRow,
    check_chunk,
)
from app.core.csv_io.fingerprint import Fingerprint, Hashing
from app.core.csv_io.format import (
    ALL_EMAIL,
    CHUNK,
    EMAIL,
    FIXED_COLUMNS,
    GROUP_PREFIX,
    IDENTITY,
    NAME,
    Progress,
    Source,
    restore_cell,
)
from app.core.csv_io.problems import CsvError, CsvProblem
from app.core.errors import InvalidInput
from app.core.groups import name_key
from app.core.models import Group
from app.core.text_rules import control_problem

# A row (one record, even when a quoted cell spans lines) holds at most this
# many characters. Checked while reading, so a 10 MB line or a quote left
# open never sits in memory, whatever csv.field_size_limit (process-wide) says.
MAX_ROW_CHARS = 64 * 1024
KEPT_PROBLEMS = 200  # in the error's list; the rest are counted


@dataclass
class ParsedCsv:
    """A good file: the groups its columns name (by id) and its rows."""

    file: str
    columns: list[str]
    group_ids: list[int]
    property_names: list[str]
    rows: list[ParsedRow]
    # The file as read (None: a stream), so that an import of its plan can check
    # that it is still the file previewed.
    fingerprint: Fingerprint | None = None


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


def _open_text(source: Source) -> tuple[IO[str], IO[bytes] | None, int, Hashing | None]:
    """The text to read, the bytes under it (None: a text stream), their size (0: unknown)
    and, for a file, what hashes its bytes as they are read."""
    hashing = None
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            raw: IO[bytes] = io.FileIO(path, "rb")
            size = os.fstat(raw.fileno()).st_size
        except OSError as exc:
            raise InvalidInput(
                f"{path}: cannot open the file: {exc.strerror}", field="file"
            ) from exc
        hashing = Hashing(raw)  # type: ignore[arg-type]
        buffered: IO[bytes] = io.BufferedReader(hashing, 1 << 16)
    elif isinstance(source.read(0), bytes):
        raw, size = source, 0  # type: ignore[assignment]
        buffered = raw
    else:
        return source, None, 0, None  # type: ignore[return-value]
    # utf-8-sig: a byte order mark (Excel writes one) is read and dropped.
    text = io.TextIOWrapper(buffered, encoding="utf-8-sig", newline="")  # type: ignore[type-var]
    return text, raw, size, hashing


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


def _read_header(
    columns: list[str], *, line: int, groups: Sequence[Group], problems: _Problems
) -> Header | None:
    by_key = {group.name_key: group for group in groups}
    seen: dict[object, int] = {}
    fixed: dict[str, int] = {}
    group_columns: list[tuple[int, Group]] = []
    properties: list[tuple[int, str]] = []
    for index, column in enumerate(columns):
        number = index + 1
        problem = control_problem(column)
        if problem is not None:
            problems.add(line, column, number, f"the column name {problem}")
            continue
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
    return Header(
        fixed[IDENTITY], fixed.get(EMAIL), fixed.get(NAME), fixed.get(ALL_EMAIL),
        group_columns, properties,
    )  # fmt: skip


@bulk.paused_gc()
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
    text, raw, size, hashing = _open_text(source)
    fingerprint = None
    lines = _Lines(text)
    rows: list[ParsedRow] = []
    header: Header | None = None
    columns: list[str] = []
    seen: dict[str, int] = {}
    # The rows since the last chunk was checked, and the problems found in them.
    chunk_lines: list[int] = []
    chunk_rows: list[list[str]] = []
    found: list[Found] = []

    def check() -> None:
        if chunk_rows:
            assert header is not None
            rows.extend(check_chunk(chunk_lines, chunk_rows, header, columns, seen, found))
            chunk_lines.clear()
            chunk_rows.clear()
        found.sort(key=_place)
        for line, _, column, number, message in found:
            problems.add(line, column, number, message)
        found.clear()

    start = read = 0
    try:
        for cells in csv.reader(lines, strict=True):
            line, start, lines.pending = start + 1, lines.line, 0
            if not any(cells) or (len(cells) == 1 and not cells[0].strip()):
                continue  # a blank line, or one of empty cells (",,,") as spreadsheets leave
            if header is None:
                # A byte order mark left by a text stream's reader is no part of the name.
                columns = [
                    restore_cell(cell.strip()) for cell in (cells[0].lstrip("\ufeff"), *cells[1:])
                ]
                header = _read_header(columns, line=line, groups=groups, problems=problems)
                if header is None:
                    break
                continue
            if len(cells) != len(columns):
                _wrong_width(cells, line, columns, found)
            else:
                chunk_lines.append(line)
                chunk_rows.append(cells)
            read += 1
            if read % CHUNK == 0:
                check()
                if progress:
                    progress("reading", raw.tell() if size and raw else read, size)
        check()
    except _RowTooLong as exc:
        check()
        problems.add(
            exc.line, None, None,
            f"the row is longer than {MAX_ROW_CHARS:,} characters (64 KiB), the most a row may "
            "hold; is a quote (\") left open?",
        )  # fmt: skip
    except UnicodeDecodeError:
        check()
        problems.append(_decode_problem(raw, file))
    except csv.Error as exc:  # named at the row it began in: an open quote runs on from there
        check()
        problems.add(
            start + 1, None, None,
            f"the file is not valid CSV from this row on: {exc} (is a quote (\") left open?)",
        )  # fmt: skip
    finally:
        if isinstance(source, (str, os.PathLike)):
            if hashing is not None:
                fingerprint = hashing.fingerprint(Path(source))
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
        fingerprint=fingerprint,
    )


def _wrong_width(cells: list[str], line: int, columns: list[str], found: list[Found]) -> None:
    width = len(columns)
    message = f"the row has {len(cells)} cells but the header has {width} columns"
    if len(cells) > width:
        found.append((line, -1, None, width + 1, message))
        return
    missing = ", ".join(columns[len(cells) : len(cells) + 3]) + (
        ", …" if width - len(cells) > 3 else ""
    )
    found.append((line, -1, None, len(cells) + 1, f"{message} (missing: {missing})"))


def _place(found: Found) -> tuple[int, int]:
    return found[0], found[1]
