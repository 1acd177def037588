"""Shared fixtures: real stores on a temporary SQLite file and, when a server
is reachable, on PostgreSQL (SUBGROUPS_TEST_PG_URL, set by .ci/run)."""

import os
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.core import clock
from app.core.store import Store, open_store

PG_ENV = "SUBGROUPS_TEST_PG_URL"
REPO_ROOT = Path(__file__).resolve().parent.parent


def _pg_url_or_reason() -> tuple[str | None, str]:
    url = os.environ.get(PG_ENV)
    if not url:
        return None, f"{PG_ENV} is not set: no PostgreSQL server to test against (.ci/run starts one)"
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to reach it: skip and say why
        return None, f"PostgreSQL at {PG_ENV} is not reachable: {exc.__class__.__name__}: {exc}"
    return url, ""


PG_URL, PG_SKIP_REASON = _pg_url_or_reason()


def reset_pg_schema(url: str) -> None:
    """Drop and recreate the public schema: each PostgreSQL test starts empty."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def fixed_clock() -> Iterator[datetime]:
    """Freeze the services' clock at a known instant that ticks a second per read."""
    start = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
    ticks = iter(range(10**9))
    clock.set_clock(lambda: start + timedelta(seconds=next(ticks)))
    yield start
    clock.set_clock(None)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    """A path for a fresh SQLite store."""
    return tmp_path / "store.db"


@pytest.fixture
def sqlite_store(sqlite_db: Path) -> Iterator[Store]:
    store = open_store(sqlite_db)
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty store on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    if PG_URL is None:
        pytest.skip(PG_SKIP_REASON)
    reset_pg_schema(PG_URL)
    return PG_URL


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, empty store, on SQLite and on PostgreSQL."""
    opened = open_store(store_url)
    yield opened
    opened.dispose()


@pytest.fixture
def pg_url() -> str:
    """The PostgreSQL test server's URL, its public schema emptied; skips when there is none."""
    if PG_URL is None:
        pytest.skip(PG_SKIP_REASON)
    reset_pg_schema(PG_URL)
    return PG_URL


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """The environment for a child ``python`` that imports this checkout's ``app``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.pop("SUBGROUPS_DB", None)
    return env


@pytest.fixture(scope="session")
def python() -> str:
    """The interpreter running the tests, for child processes."""
    return sys.executable
