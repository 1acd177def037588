"""The one place the services read the time, so tests can fix it."""

import getpass
import os
from collections.abc import Callable
from datetime import UTC, datetime


def _system_now() -> datetime:
    return datetime.now(UTC)


_now: Callable[[], datetime] = _system_now


def now() -> datetime:
    """The current time, UTC, aware."""
    return _now()


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
