"""Options and argument types the command groups share: ``--db``, ``--json``,
whole numbers and port numbers."""

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.store import Store


def db_option() -> argparse.ArgumentParser:
    """A parent parser adding ``--db``, accepted before or after the command."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--db",
        metavar="URL_OR_PATH",
        default=argparse.SUPPRESS,
        help="the store: an SQLite file path or a SQLAlchemy URL (default: $SUBGROUPS_DB, "
        "else subgroups.db in the user data directory)",
    )
    return parent


def json_option() -> argparse.ArgumentParser:
    """A parent parser adding ``--json``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print JSON")
    return parent


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return value


# A command's handler: the parsed arguments and the open store in, the exit code out.
Command = Callable[[argparse.Namespace, "Store"], int]
