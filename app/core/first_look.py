"""A first look at an SQLite store, before the data layer is loaded.

The console paints its frame, then needs a second or so to import SQLAlchemy,
SQLModel and the models and to open the store. What the Groups header shows
(``N / 50 active``) is one small count: read here with the standard library's
``sqlite3``, read-only, so the number is on screen while the rest loads. The
real store replaces it once open.

Only an answer that the real open would give too: nothing for a database URL
(PostgreSQL), a store that does not exist yet (nothing is created), one at
another schema version (the open upgrades it first, or refuses it), one that is
busy or unreadable. Then the console simply waits for the real open.
"""

import os
import sqlite3
from pathlib import Path

from app.core.places import db_text
from app.core.schema_version import LATEST_VERSION

# A reader waits this long at most for a lock (WAL readers rarely wait at all).
BUSY_TIMEOUT_SECONDS = 0.1
SQLITE_HEADER = b"SQLite format 3\x00"


def sqlite_path(db: str | os.PathLike[str] | None) -> Path | None:
    """The SQLite file ``--db`` names (a path, or an ``sqlite:///`` URL); None for any
    other database, an in-memory one, or a path with no store file yet."""
    text = db_text(db)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
        if not text or "?" in text:
            return None  # an in-memory database, or options the real open interprets
    elif "://" in text or text == ":memory:":
        return None
    path = Path(text).expanduser().absolute()
    try:
        with path.open("rb") as fh:
            if fh.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                return None  # missing, empty or not SQLite: the real open says what
    except OSError:
        return None
    return path


def active_groups(db: str | os.PathLike[str] | None) -> int | None:
    """How many groups are active in the store ``--db`` names, or None when that
    cannot be read at once and exactly as the opened store would count them."""
    path = sqlite_path(db)
    if path is None:
        return None
    try:
        # Read-only: nothing is created or changed (a missing file stays missing).
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
    except sqlite3.Error:
        return None
    try:
        # One read transaction: the version and the count agree.
        conn.execute("BEGIN")
        version = conn.execute(
            "SELECT value FROM schema_meta WHERE key = 'schema_version'"
        ).fetchone()
        if version is None or str(version[0]).strip() != str(LATEST_VERSION):
            return None  # the real open upgrades it (or refuses it) first
        (count,) = conn.execute(
            "SELECT count(*) FROM subscription_group WHERE status = 'active'"
        ).fetchone()
        return int(count)
    except sqlite3.Error:
        return None  # busy, not a subgroups store, unreadable
    finally:
        conn.close()
