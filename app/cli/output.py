"""What the CLI prints: tables, JSON, one-line errors, progress lines, exit codes.

Every piece of user text goes through ``shown`` (or ``json_shown`` for JSON)
on its way out, so a control character held in the store prints as a visible
escape (``\\x1b``) and can neither forge a line nor drive the terminal.

Exit codes (DESIGN.md §2): 0 done; 1 refused by a rule, with one line on
stderr; 2 bad usage or bad input; 130 interrupted.
"""

import json
import os
import sys
from collections.abc import Callable, Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.core.errors import InvalidInput
from app.core.text_rules import json_shown, shown

if TYPE_CHECKING:
    from app.core.store import Store

OK = 0
REFUSED = 1
BAD_USAGE = 2
INTERRUPTED = 130

Progress = Callable[[str, int, int], None]


def error(message: str) -> None:
    """One line on stderr, as every refusal and failure is reported."""
    print(f"subgroups: {message}", file=sys.stderr)


def print_json(value: Any) -> None:
    """``value`` as indented JSON, user text escaped."""
    print(json_shown(json.dumps(value, ensure_ascii=False, indent=2)))


def json_line(value: Any) -> str:
    """``value`` as one line of JSON (JSON Lines), user text escaped."""
    return json_shown(json.dumps(value, ensure_ascii=False))


def local_time(ts: datetime) -> str:
    """A timestamp in the local time zone, to the second."""
    return ts.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def count(n: int, noun: str) -> str:
    """``1 row``, ``1,200 rows``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def table(rows: list[list[str]], headers: list[str], *, right: Collection[int] = ()) -> str:
    """Columns two spaces apart, fitted to the widest cell; the columns numbered in ``right``
    are right-aligned (headers too). Cells are user text: control characters are escaped."""
    cells = [headers, *([shown(str(cell)) for cell in row] for row in rows)]
    widths = [max(len(x) for x in column) for column in zip(*cells, strict=True)]
    return "\n".join(
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in cells
    )


def progress_printer() -> Progress | None:
    """A progress line on stderr for long work, when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(stage: str, done: int, total: int) -> None:
        if stage == "reading":  # done and total are bytes
            text = f"{done * 100 // total}%" if total else f"{done:,} rows"
        else:
            text = f"{done:,} / {total:,}" if total else f"{done:,}"
        print(f"\r{stage.capitalize()} {text}\033[K", end="", file=sys.stderr, flush=True)

    return show


def clear_progress() -> None:
    """Wipe the progress line, so what follows starts on a clean line."""
    print("\r\033[K", end="", file=sys.stderr, flush=True)


def silence_stdout() -> None:
    """Point stdout at /dev/null: the reader went away (``| head``), and the
    interpreter's own last flush must not complain."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def export_csv(store: "Store", file: str | None, identities: list[str] | None = None) -> int | None:
    """Write profiles (all, or those named) as a profile CSV to FILE, or stdout for None or "-".

    Returns how many were written to a file; None for stdout, where a reader
    that stops early (``| head``) is not an error.
    """
    from app.core import csv_io

    if file in (None, "-"):
        try:
            with store.read() as session:
                csv_io.export_profiles(session=session, dest=sys.stdout, identities=identities)
            sys.stdout.flush()
        except BrokenPipeError:
            silence_stdout()
        return None
    assert file is not None
    try:
        dest = open(file, "w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        raise InvalidInput(f"Cannot write {file}: {exc.strerror}", field="file") from exc
    progress = progress_printer()
    with dest, store.read() as session:
        written = csv_io.export_profiles(
            session=session, dest=dest, identities=identities, progress=progress
        )
    if progress:
        clear_progress()
    return written
