"""Engines and sessions: where the store lives and how to talk to it.

``--db`` (or ``SUBGROUPS_DB``) is either a path, meaning an SQLite file, or a
SQLAlchemy URL. Nothing opens a database at import time: ``open_store`` does,
checks that the place is usable, and brings the schema up to date.

SQLite runs in WAL mode with a busy timeout so several consoles, the CLI and
the landing server share one file. Write sessions begin ``IMMEDIATE`` on
SQLite, so a rule checked inside one (the 50-active limit) holds until commit;
on PostgreSQL the services take explicit locks instead.
"""

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session

from app.core.errors import StoreUnavailable
from app.core.migrations import STORE_ID_KEY, upgrade
from app.core.models import json_text
from app.core.places import db_text

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 15_000


def resolve_db_url(db: str | os.PathLike[str] | None) -> str:
    """Turn a --db value (path or URL; None: environment, then default) into a URL."""
    text = db_text(db)
    if "://" in text:
        try:
            make_url(text)
        except ArgumentError as exc:
            raise StoreUnavailable(f"--db {text!r} is not a database URL: {exc}") from exc
        return text
    if text == ":memory:":
        return "sqlite://"
    return "sqlite:///" + str(Path(text).expanduser().absolute())


def _one_line(error: object) -> str:
    """A driver's message on one line (psycopg adds hints on lines of their own)."""
    return " ".join(str(error).split())


def _check_sqlite_path(path: Path, *, create: bool = True) -> None:
    """Refuse, with a message saying why, a path that cannot hold an SQLite store.

    Without ``create``, a path with no file is refused before anything (the
    file or its folders) is made: a mistyped --db must not become a store.
    """
    if path.is_dir():
        raise StoreUnavailable(
            f"--db {path} is a directory; give a file path such as {path}/subgroups.db"
        )
    if path.exists():
        if not path.is_file():
            raise StoreUnavailable(f"--db {path} is not a regular file; give a file path")
        if not os.access(path, os.R_OK | os.W_OK):
            raise StoreUnavailable(f"--db {path}: no permission to read and write this file")
        if path.stat().st_size == 0 and not create:
            raise StoreUnavailable(f"no store at {path}")
        if path.stat().st_size > 0:
            with path.open("rb") as fh:
                header = fh.read(len(SQLITE_HEADER))
            if header != SQLITE_HEADER:
                raise StoreUnavailable(
                    f"--db {path} is not an SQLite database (it holds something else); "
                    "give a new path or an existing subgroups store"
                )
            _check_not_foreign(path)
        return
    if not create:
        raise StoreUnavailable(f"no store at {path}")
    parent = path.parent
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"--db {path}: cannot create folder {parent}: {exc.strerror}"
            ) from exc
    if not parent.is_dir():
        raise StoreUnavailable(f"--db {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreUnavailable(f"--db {path}: no permission to create a file in {parent}")


def _check_not_foreign(path: Path) -> None:
    """Refuse another application's SQLite database before touching it.

    Opening it the usual way would switch it to WAL mode for good; this
    looks read-only. (migrations.upgrade makes the same check for URLs.)
    """
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            tables = {row[0] for row in rows}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"--db {path}: cannot open: {exc}") from exc
    if tables and "schema_meta" not in tables:
        raise StoreUnavailable(
            f"--db {path} is a database but not a subgroups store "
            f"(it has tables such as {sorted(tables)[0]!r}); give a new path"
        )


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (the pysqlite recipe in
    # the SQLAlchemy docs), so a write session can ask for BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA synchronous = NORMAL")
    # Persistent once set; a no-op answer of "memory" for in-memory stores.
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for a URL, with SQLite set up for several processes (WAL, busy timeout).

    Without ``create``, a missing SQLite file is refused ("no store at PATH").
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ":memory:"
        memory = database == ":memory:"
        if not memory:
            _check_sqlite_path(Path(database), create=create)
        kwargs: dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            "json_serializer": json_text,
        }
        if memory:
            from sqlalchemy.pool import StaticPool

            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        if not memory:
            try:
                with engine.connect() as conn:
                    mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                    if str(mode).lower() != "wal":
                        raise StoreUnavailable(
                            f"--db {database}: could not switch the file to WAL mode"
                        )
            except OperationalError as exc:
                why = _one_line(exc.orig)
                raise StoreUnavailable(f"--db {database}: cannot open: {why}") from exc
        return engine
    try:
        return create_engine(url, pool_pre_ping=True, json_serializer=json_text)
    except (ArgumentError, ModuleNotFoundError, ImportError) as exc:
        raise StoreUnavailable(f"--db {url}: cannot use this database URL: {exc}") from exc


@dataclass
class Store:
    """An open store: the engine plus the two kinds of session the services use."""

    engine: Engine
    url: str
    # Per-store in-memory state services keep between calls (the segment index).
    cache: dict[str, Any] = field(default_factory=dict, repr=False)
    # True when open_store made this store's schema just now (a new store).
    created: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def display_name(self) -> str:
        """The store as a user would name it: a file path, or the URL without password."""
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            return parsed.database or ":memory:"
        return parsed.render_as_string(hide_password=True)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; rolled back at the end."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose work commits at the end, or rolls back on error.

        On SQLite it begins IMMEDIATE: it holds the file's write lock from its
        first statement, so what it reads stays true until it commits.
        """
        bind = self.engine
        if self.is_sqlite:
            bind = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        with Session(bind, expire_on_commit=False) as session:
            session.info["write"] = True
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @property
    def store_id(self) -> str:
        """The store's own random id (read once): links and the default outbox are bound to it."""
        found = self.cache.get(STORE_ID_KEY)
        if found is None:
            with self.engine.connect() as conn:
                found = read_store_id(conn)
            self.cache[STORE_ID_KEY] = found
        return str(found)

    def dispose(self) -> None:
        self.engine.dispose()


def read_store_id(conn: Connection | Session) -> str:
    """The store id kept in ``schema_meta`` (made with the store, or by migration 6)."""
    found = conn.execute(
        text("SELECT value FROM schema_meta WHERE key = :k"), {"k": STORE_ID_KEY}
    ).scalar()
    if not found:
        raise StoreUnavailable("the store has no store id: open it with subgroups to upgrade it")
    return str(found)


def open_store(
    db: str | os.PathLike[str] | None = None, *, migrate: bool = True, create: bool = True
) -> Store:
    """Open the store named by --db, schema brought up to date.

    With ``create`` (the default) a missing store is made (``Store.created``
    says so); without it, a missing SQLite file or a database without a
    subgroups schema is refused with "no store at ..." and nothing is made.
    """
    url = resolve_db_url(db)
    engine = make_engine(url, create=create)
    store = Store(engine=engine, url=url)
    if migrate:
        try:
            store.created = upgrade(engine, name=store.display_name, create=create).created
            store.cache[STORE_ID_KEY] = store.store_id
        except OperationalError as exc:
            engine.dispose()
            why = _one_line(exc.orig)
            raise StoreUnavailable(f"--db {store.display_name}: cannot open: {why}") from exc
        except BaseException:
            # A refused store (not ours, too new) must not stay open.
            engine.dispose()
            raise
    return store
