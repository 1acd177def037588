"""Cheap wake-ups for ledger followers: is there anything new to read?

Reading the ledger every few hundred milliseconds costs a query each time
and still shows an event late. Instead a follower waits here, and reads
(``id > last``, the ledger id staying the cursor) only when told to:

- on SQLite, ``PRAGMA data_version`` is asked every ``interval`` seconds on
  one kept connection. It changes when any *other* connection commits to the
  file: other processes, and this process's own writes too, since the kept
  connection is taken out of the pool and never writes.
- on PostgreSQL, the kept connection LISTENs on the store's channel; a
  transaction that wrote to the ledger sends one notification as it commits
  (``notify_followers`` marks the session, a ``before_commit`` hook sends
  it), so it arrives when the events commit: one NOTIFY per committed
  transaction, whether it holds one event or a batch of thousands. NOTIFY is
  heard database-wide, so the channel is named after the store's schema
  (``CHANNEL`` plus a digest of ``current_schema()``): two stores sharing a
  database never wake each other's followers. A notification can be missed (the
  connection dropped, a write made without the helper), so a follower is
  also woken every ``fallback`` seconds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

CHANNEL = "subgroups_ledger"
INTERVAL = 0.05
FALLBACK = 1.0
# The store's own channel: a name of at most 63 bytes whatever the schema is called.
_STORE_CHANNEL = f"'{CHANNEL}_' || left(md5(current_schema()), 16)"


_PENDING = "ledger_notify_pending"


def notify_followers(session: Session) -> None:
    """Tell this store's followers, when this transaction commits, that the ledger grew.

    Only marks the session: however many events the transaction writes, one
    notification is sent, by ``_notify_on_commit`` just before it commits.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.info[_PENDING] = True


@event.listens_for(OrmSession, "before_commit")
def _notify_on_commit(session: OrmSession) -> None:
    """Send the one notification of a transaction that wrote to the ledger."""
    if session.info.pop(_PENDING, False):
        session.execute(text(f"SELECT pg_notify({_STORE_CHANNEL}, '')"))


@event.listens_for(OrmSession, "after_rollback")
def _forget_on_rollback(session: OrmSession) -> None:
    """A rolled-back transaction wrote nothing anyone should hear about."""
    session.info.pop(_PENDING, None)


class LedgerWakeups:
    """Blocks a follower until the ledger may have new events; one kept connection."""

    def __init__(
        self, engine: Engine, *, interval: float = INTERVAL, fallback: float = FALLBACK
    ) -> None:
        self.interval = interval
        self.fallback = fallback
        self.dialect = engine.dialect.name
        proxied = engine.raw_connection()
        proxied.detach()  # kept for good: never handed back to the pool, never writes
        raw: Any = proxied.dbapi_connection
        self._raw = raw
        self._version: int | None = None
        self._last_wake = time.monotonic()
        self.checks = 0  # how many times it looked (data_version asked, or the socket)
        # Why it woke its follower: told (a notification, or data_version moved) ...
        self.told_wakes = 0
        # ... or only because ``fallback`` seconds went by without being told.
        self.fallback_wakes = 0
        if self.dialect == "sqlite":
            self._version = self._data_version()
        elif self.dialect == "postgresql":
            self._raw.rollback()
            self._raw.autocommit = True
            channel = self._raw.execute(f"SELECT {_STORE_CHANNEL}").fetchone()[0]
            self._raw.execute(f'LISTEN "{channel}"')  # letters, digits and _ only

    def _data_version(self) -> int:
        cursor = self._raw.execute("PRAGMA data_version")
        try:
            return int(cursor.fetchone()[0])
        finally:
            cursor.close()

    def wait(self, stop: threading.Event) -> bool:
        """Wait for a change; True to read the ledger now, False once ``stop`` is set."""
        while not stop.is_set():
            if self.dialect == "sqlite":
                if stop.wait(self.interval):
                    return False
                version = self._data_version()
                self.checks += 1
                if version != self._version:
                    self._version = version
                    self.told_wakes += 1
                    return True
                continue
            if self.dialect == "postgresql":
                self.checks += 1
                if self._heard(min(self.interval * 2, self.fallback)):
                    self._last_wake = time.monotonic()
                    self.told_wakes += 1
                    return True
            elif stop.wait(self.interval):
                return False
            if time.monotonic() - self._last_wake >= self.fallback:
                self._last_wake = time.monotonic()
                self.fallback_wakes += 1
                return True
        return False

    def _heard(self, timeout: float) -> bool:
        """A notification arrived within ``timeout`` seconds (all queued ones taken)."""
        heard = False
        for _ in self._raw.notifies(timeout=timeout, stop_after=1):
            heard = True
        if heard:
            for _ in self._raw.notifies(timeout=0):
                pass
        return heard

    def close(self) -> None:
        with contextlib.suppress(Exception):  # on the way out: nothing to tell anyone
            self._raw.close()
