"""The one place the services read the time, so tests can fix it."""

import getpass
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta


def _system_now() -> datetime:
    return datetime.now(UTC)


_now: Callable[[], datetime] = _system_now
# A clock for one thread only (``pinned``): the sample data's story told at its own time.
_thread = threading.local()


def now() -> datetime:
    """The current time, UTC, aware."""
    pinned: Callable[[], datetime] | None = getattr(_thread, "now", None)
    return pinned() if pinned is not None else _now()


@contextmanager
def pinned(at: datetime) -> Iterator[None]:
    """In this thread only, time starts at ``at`` and moves a millisecond per read.

    For the sample data: services that read the clock themselves (a send)
    record the story's time, while other threads (the console) keep theirs.
    """
    ticks = itertools.count()
    previous = getattr(_thread, "now", None)
    _thread.now = lambda: at + timedelta(milliseconds=next(ticks))
    try:
        yield
    finally:
        _thread.now = previous


def set_clock(func: Callable[[], datetime] | None) -> None:
    """Replace the clock (tests); ``None`` restores the system clock."""
    global _now
    _now = func or _system_now


def os_user() -> str:
    """The operating-system user, recorded as the Actor of console and CLI actions."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): fall back to the environment
        return os.environ.get("USER", "unknown")
