"""Who is connected over SSH, from the session events: started and not ended, and (on
this host) with its console process still there; this process's own session left out."""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from app.core import ledger, presence
from app.core.event_names import ADMIN_SESSION_ENDED, ADMIN_SESSION_STARTED
from app.core.store import Store


@pytest.fixture
def live_pid() -> Iterator[int]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield child.pid
    child.kill()
    child.wait()


def started(store: Store, admin: str, session: str, pid: int, host: str | None = None) -> None:
    with store.write() as s:
        ledger.record(
            s,
            name=ADMIN_SESSION_STARTED,
            source="ssh",
            actor=admin,
            properties={
                "Admin": admin,
                "Role": "viewer",
                "Client": "127.0.0.1:5000",
                "Session": session,
                "Host": host or socket.gethostname(),
                "Process": pid,
            },
        )


def ended(store: Store, admin: str, session: str) -> None:
    with store.write() as s:
        ledger.record(
            s,
            name=ADMIN_SESSION_ENDED,
            source="ssh",
            actor=admin,
            properties={"Admin": admin, "Session": session},
        )


def connected(store: Store, *, but_me: bool = True) -> list[str]:
    with store.read() as s:
        return [c.admin for c in presence.connected_admins(s, but_me=but_me)]


def test_open_sessions_are_those_started_not_ended_and_still_running(
    sqlite_store: Store, live_pid: int
) -> None:
    store = sqlite_store
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    started(store, "ann", "s1", live_pid)
    started(store, "bob", "s2", live_pid)
    started(store, "cy", "s3", int(dead.stdout))  # its server was killed: no end written
    started(store, "dee", "s4", 1, host="another-host")  # elsewhere: taken at its word
    started(store, "me", "s5", os.getpid())
    ended(store, "bob", "s2")

    assert connected(store) == ["ann", "dee"]
    assert connected(store, but_me=False) == ["ann", "dee", "me"]
    with store.read() as s:
        text = presence.describe(presence.connected_admins(s))
    assert text == "Also connected over SSH: ann (viewer), dee (viewer)"
    assert presence.describe([]) == ""
