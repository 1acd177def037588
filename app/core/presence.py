"""Who is connected over SSH now, from the ledger's session events.

``subgroups ssh`` writes ``Admin Session Started`` (with a ``Session`` id, the
server's ``Host`` and the console's ``Process``) and ``Admin Session Ended``
(the same ``Session``). A session started and not ended is open, unless its
console was on this host and is gone (a server that was killed never wrote
the end).
"""

import os
import socket
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from app.core import ledger
from app.core.event_names import ADMIN_SESSION_ENDED, ADMIN_SESSION_STARTED

# How many of the latest session events are looked at (each kind).
RECENT = 1000


@dataclass(frozen=True)
class Connected:
    """One open session: who, with what role, from where, since when."""

    admin: str
    role: str | None
    client: str
    since: datetime


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def connected_admins(session: Session, *, but_me: bool = True) -> list[Connected]:
    """The open SSH sessions, oldest first; ``but_me`` leaves out this process's own."""
    started = ledger.recent_events(session, name=ADMIN_SESSION_STARTED, limit=RECENT)
    ended = ledger.recent_events(session, name=ADMIN_SESSION_ENDED, limit=RECENT)
    over = {e.properties.get("Session") for e in ended}
    host = socket.gethostname()
    found = []
    for event in started:
        props = event.properties
        if props.get("Session") in over:
            continue
        if props.get("Host") == host:
            if not _alive(props.get("Process")):
                continue
            if but_me and props.get("Process") == os.getpid():
                continue
        found.append(
            Connected(
                admin=event.actor,
                role=props.get("Role"),
                client=str(props.get("Client") or ""),
                since=event.ts,
            )
        )
    return found


def describe(connected: list[Connected]) -> str:
    """``Also connected: bob (viewer), cy (owner)``, or "" when nobody is."""
    if not connected:
        return ""
    people = ", ".join(f"{c.admin} ({c.role or 'removed'})" for c in connected)
    return f"Also connected over SSH: {people}"
