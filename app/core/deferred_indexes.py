"""Plain indexes held off while a seed writes millions of rows, and built once at its end.

Each row a seed inserts also goes into every index of its table, and the
indexes on addresses, ledger names and people grow in random order: past a
few million rows most of a seed's time is spent there. ``deferred`` drops
the plain (non-unique) indexes of the profile, state and ledger tables, lets
the seed write, then builds them again in one sorted pass each.

A store must never be left without its indexes silently. Before dropping
them, ``deferred`` writes a mark into ``schema_meta`` naming the process that
holds them back (host and pid), in the same transaction as the drops. The
mark goes away in the transaction that builds the last index. A store opened
with the mark in place (``migrations.upgrade`` calls ``restore``):

- while that process still runs (same host, pid alive): refused, with a
  message saying which process is seeding it;
- otherwise (the seed was killed, the machine restarted): the indexes are
  built there and then, and the store opens as usual.

Unique indexes stay: they enforce rules (one identity per profile) and their
keys arrive in order anyway. Only SQLite is concerned; on PostgreSQL the
seed's COPY keeps its indexes.
"""

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, Index, Table, text

from app.core import models
from app.core.errors import StoreUnavailable

MARK_KEY = "indexes_deferred"
BUILD_CACHE_KIB = 256 * 1024  # page cache while the indexes are built (sorting)
_TABLES: tuple[Table, ...] = (
    models.Profile.__table__,  # type: ignore[attr-defined]
    models.GroupState.__table__,  # type: ignore[attr-defined]
    models.Event.__table__,  # type: ignore[attr-defined]
)


def plain_indexes() -> list[Index]:
    """The non-unique indexes a seed may hold back, as the models declare them."""
    found: list[Index] = []
    for table in _TABLES:
        found += sorted((ix for ix in table.indexes if not ix.unique), key=lambda ix: str(ix.name))
    return found


def holder() -> str:
    """This process as the mark names it: ``host pid``."""
    return f"{socket.gethostname()} {os.getpid()}"


def _mark(conn: Connection) -> str | None:
    found = conn.execute(
        text("SELECT value FROM schema_meta WHERE key = :k"), {"k": MARK_KEY}
    ).scalar()
    return None if found is None else str(found)


def _alive(mark: str) -> int | None:
    """The pid of the mark's process when it runs on this host, else None."""
    host, _, pid_text = mark.rpartition(" ")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return None  # this process: a seed of ours that stopped half-way
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # someone else's process, alive
    return pid


def build(conn: Connection) -> int:
    """Build the held-back indexes that are missing and drop the mark; how many were built."""
    missing = [ix for ix in plain_indexes() if not _exists(conn, str(ix.name))]
    with _sorting_cache(conn):
        for index in missing:
            index.create(conn, checkfirst=True)
    conn.execute(text("DELETE FROM schema_meta WHERE key = :k"), {"k": MARK_KEY})
    return len(missing)


@contextmanager
def _sorting_cache(conn: Connection) -> Iterator[None]:
    """A page cache big enough to sort an index in few passes; the old size given back."""
    if conn.dialect.name != "sqlite":
        yield
        return
    cache = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    conn.exec_driver_sql(f"PRAGMA cache_size = -{BUILD_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {cache}")


def _exists(conn: Connection, name: str) -> bool:
    if conn.dialect.name != "sqlite":
        return True  # never deferred there
    found = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
    ).scalar()
    return found is not None


def restore(conn: Connection, *, name: str) -> int:
    """On opening: build indexes a stopped seed held back; refuse while the seed runs.

    Returns how many indexes were built (0 when the store has no mark).
    """
    mark = _mark(conn)
    if mark is None:
        return 0
    pid = _alive(mark)
    if pid is not None:
        raise StoreUnavailable(
            f"--db {name} is being seeded by process {pid}, which builds its indexes when "
            "it finishes; open it then (if that process is stopped, the next open builds them)"
        )
    return build(conn)


@contextmanager
def deferred(engine: Engine, *, on_build: Callable[[], None] | None = None) -> Iterator[None]:
    """Drop the plain indexes of the bulk tables for the block, and build them after it.

    ``on_build`` is called before the build starts (it takes minutes at 10M
    rows: a seed says so). If the block is interrupted (ctrl+c, a kill) the
    mark stays and the next open builds them; after an ordinary error they
    are built at once.
    """
    if engine.dialect.name != "sqlite":
        yield
        return
    immediate = engine.execution_options(sqlite_begin="IMMEDIATE")
    with immediate.begin() as conn:
        conn.execute(
            text("INSERT INTO schema_meta (key, value) VALUES (:k, :v)"),
            {"k": MARK_KEY, "v": holder()},
        )
        for index in plain_indexes():
            conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{index.name}"')
    try:
        yield
    except Exception:
        with immediate.begin() as conn:
            build(conn)
        raise
    if on_build is not None:
        on_build()
    # One transaction per index: the write-ahead log holds one index at a time.
    for index in plain_indexes():
        with immediate.begin() as conn, _sorting_cache(conn):
            index.create(conn, checkfirst=True)
    with immediate.begin() as conn:
        build(conn)  # nothing left to build: drops the mark
