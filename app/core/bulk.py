"""Bulk reads and writes through the database driver, for paths that move 100k rows.

At that scale the ORM's and SQLAlchemy's per-row work costs more than the
database's own (``bench/bench_import.py``, ``seed_synthetic``), so the bulk
paths hand rows straight to the driver: ``executemany`` of a statement
compiled once on SQLite; ``COPY`` for new rows on PostgreSQL, where
psycopg's executemany costs some 40 µs of Python a row. Values are converted
as the columns' types convert them (``BulkWriter.processor``), so a row
written here reads back exactly like one the ORM wrote; values that repeat
(timestamps, JSON properties) are converted once.

Nothing here knows a rule of the product: state changes and their ledger
events are written by ``subscriptions.apply_changes``, on top of this.
"""

import gc
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import JSON, Table, TypeDecorator, insert
from sqlmodel import Session

from app.core.models import Event, GroupState, Profile, email_key, json_text

PROFILE: Table = Profile.__table__  # type: ignore[attr-defined]
GROUP_STATE: Table = GroupState.__table__  # type: ignore[attr-defined]
EVENT: Table = Event.__table__  # type: ignore[attr-defined]

CHUNK = 5_000  # rows per driver call where the caller does not choose
IN_CHUNK = 2_000  # values per IN (...) on SQLite
SQLITE_CACHE_KIB = 64 * 1024  # the page cache while a bulk write runs
SERIALISED_PROPERTIES = 100_000  # distinct profile properties kept serialised

_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Hold off the cyclic garbage collector during bulk work (re-entrant, thread-safe).

    Bulk work keeps millions of small tuples alive; the collector's repeated
    passes over them cost more than reading a whole CSV file (a third of an
    import's time at 200k rows). They hold no reference cycles, so nothing is
    missed; other threads' cycles are collected once the last pause ends.
    Usable as a decorator too.
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


@contextmanager
def large_page_cache(session: Session) -> Iterator[None]:
    """On SQLite, a page cache big enough for indexes that grow in random order (emails).

    A third less CPU for 200k profile inserts. The connection's own size is
    given back afterwards, as the connection returns to the pool.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    cache = int(connection.exec_driver_sql("PRAGMA cache_size").scalar_one())
    connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {cache}")


def chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``values`` in slices of at most ``size``."""
    for begin in range(0, len(values), size):
        yield values[begin : begin + size]


# --- reading --------------------------------------------------------------------


def fetch(session: Session, sql: str, params: Sequence[Any] = ()) -> list[Any]:
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


def select_where_in(
    session: Session, sql: str, values: Sequence[Any], *, lock: bool = False
) -> list[Any]:
    """The rows of ``sql`` (which ends in ``WHERE column``) whose column is one of ``values``.

    ``lock`` (PostgreSQL) keeps the rows locked until commit, so
    ``set_state`` in another session waits for the bulk work rather than
    changing a state under its plan (on SQLite the write transaction's lock
    does that already).
    """
    rows: list[Any] = []
    if session.get_bind().dialect.name == "postgresql":
        statement = sql + " = ANY(?)" + (" FOR UPDATE" if lock else "")
        for chunk in chunks(values, 20 * IN_CHUNK):
            rows += fetch(session, statement, [list(chunk)])
        return rows
    for chunk in chunks(values, IN_CHUNK):
        rows += fetch(session, f"{sql} IN ({', '.join(['?'] * len(chunk))})", chunk)
    return rows


# --- writing --------------------------------------------------------------------


class BulkWriter:
    """Bulk writes in the session's transaction, as fast as the driver allows.

    SQLite: statements compiled once per call and run with executemany.
    PostgreSQL: new rows go in with COPY; updates with executemany. Values
    are handed over ready for the driver, converted once by ``processor``.
    The session's pending ORM changes are flushed first, as
    ``session.execute`` would.
    """

    def __init__(self, session: Session) -> None:
        session.flush()
        self.session = session
        self.dialect = session.get_bind().dialect
        self.copy = self.dialect.name == "postgresql"

    def processor(self, table: Table, column: str) -> Callable[[Any], Any]:
        """How a value of this column goes to the driver (as SQLAlchemy would send it)."""
        kind = table.c[column].type
        if self.copy:  # COPY takes plain values, and JSON as its text (as the engine writes it)
            if isinstance(kind, JSON):
                return json_text
            if isinstance(kind, TypeDecorator):
                dialect = self.dialect
                return lambda value: kind.process_bind_param(value, dialect)
            return _as_is
        convert = kind.dialect_impl(self.dialect).bind_processor(self.dialect)
        return convert or _as_is

    def insert(self, table: Table, keys: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows of driver-ready values, given in ``keys`` order."""
        if not rows:
            return
        if not self.copy:
            self.run(_insert_of(table), keys, rows)
            return
        quote = self.dialect.identifier_preparer.quote
        sql = f"COPY {quote(table.name)} ({', '.join(map(quote, keys))}) FROM STDIN"
        cursor = self.session.connection().connection.cursor()
        try:
            with cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()

    def run(self, statement: Any, keys: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Execute ``statement`` for each row of driver-ready values, given in ``keys`` order."""
        if not rows:
            return
        compiled = _compiled(statement, self.dialect, keys)
        params: Sequence[Any] = rows
        if not compiled.positional:
            params = [dict(zip(keys, row, strict=True)) for row in rows]
        elif list(compiled.positiontup) != list(keys):
            where = [list(keys).index(key) for key in compiled.positiontup]
            params = [tuple(row[i] for i in where) for row in rows]
        self.session.connection().exec_driver_sql(compiled.string, params)


def _as_is(value: Any) -> Any:
    return value


# Compiling a statement costs more than running it for a few rows (the landing
# server's one-click batches write a handful each): each statement is compiled
# once per kind of database and set of keys. The statements are the module's
# own constants and one INSERT per table, so the cache stays small.
_INSERTS: dict[str, Any] = {}
_COMPILED: dict[tuple[int, str, str, str, tuple[str, ...]], tuple[Any, Any]] = {}
_COMPILED_MAX = 256


def _insert_of(table: Table) -> Any:
    statement = _INSERTS.get(table.name)
    if statement is None or statement.table is not table:
        statement = _INSERTS[table.name] = insert(table)
    return statement


def _compiled(statement: Any, dialect: Any, keys: Sequence[str]) -> Any:
    key = (id(statement), dialect.name, dialect.driver, dialect.paramstyle, tuple(keys))
    found = _COMPILED.get(key)
    # The statement is kept in the entry, so its id cannot be reused while cached.
    if found is not None and found[0] is statement:
        return found[1]
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if len(_COMPILED) < _COMPILED_MAX:
        _COMPILED[key] = (statement, compiled)
    return compiled


class NewProfileRow(NamedTuple):
    """A profile for ``insert_profiles``: its columns, in the order they are written."""

    identity: str
    email: str | None
    name: str
    properties: dict[str, Any]
    all_email: str
    created_at: datetime


# A NewProfileRow's fields as a plain tuple, in its order (a third of the cost to make).
NewProfileTuple = tuple[str, str | None, str, dict[str, Any], str, datetime]
# The columns written: the row's, with the email key (computed here) after the email.
_PROFILE_KEYS = ("identity", "email", "email_key", *NewProfileRow._fields[2:])


def insert_profiles(
    *,
    session: Session,
    profiles: Sequence[NewProfileRow | NewProfileTuple],
    chunk_size: int = CHUNK,
    after_chunk: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Insert new profiles in the session's transaction; their ids, by identity.

    Written ``chunk_size`` at a time; ``after_chunk`` is told how many after
    each chunk (and may raise to stop, the transaction then rolls back).
    Properties that repeat (country and plan) are serialised once. An
    identity that exists already raises ``IntegrityError``.
    """
    if not profiles:
        return {}
    writer = BulkWriter(session)
    to_json = writer.processor(PROFILE, "properties")
    to_ts = writer.processor(PROFILE, "created_at")
    before = fetch(session, "SELECT COALESCE(MAX(id), 0) FROM profile")[0][0]
    serialised: dict[tuple[tuple[str, Any], ...], Any] = {}
    last: datetime | None = None
    created: Any = None
    for chunk in chunks(profiles, chunk_size):
        rows = []
        for identity, email, name, properties, all_email, created_at in chunk:
            try:
                key: Any = tuple(properties.items())
                stored = serialised.get(key)
            except TypeError:  # a value that cannot be a key (a list): not kept
                key, stored = None, None
            if stored is None:
                stored = to_json(properties)
                if key is not None and len(serialised) < SERIALISED_PROPERTIES:
                    serialised[key] = stored
            if created_at is not last:  # often one instant for all
                last, created = created_at, to_ts(created_at)
            rows.append((identity, email, email_key(email), name, stored, all_email, created))
        writer.insert(PROFILE, _PROFILE_KEYS, rows)
        if after_chunk is not None:
            after_chunk(len(chunk))
    # The new ids: above the old maximum (other writers' rows have other identities).
    return dict(fetch(session, "SELECT identity, id FROM profile WHERE id > ?", [before]))
