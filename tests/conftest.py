"""Shared fixtures: real stores on a temporary SQLite file and, when a server
is reachable, on PostgreSQL (SUBGROUPS_TEST_PG_URL, set by .ci/run)."""

import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from app.core import clock
from app.core.store import Store, open_store

PG_ENV = "SUBGROUPS_TEST_PG_URL"
REPO_ROOT = Path(__file__).resolve().parent.parent


def _pg_url_or_reason() -> tuple[str | None, str]:
    url = os.environ.get(PG_ENV)
    if not url:
        return (
            None,
            f"{PG_ENV} is not set: no PostgreSQL server to test against (.ci/run starts one)",
        )
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to reach it: skip and say why
        return None, f"PostgreSQL at {PG_ENV} is not reachable: {exc.__class__.__name__}: {exc}"
    return url, ""


PG_URL, PG_SKIP_REASON = _pg_url_or_reason()

# Nothing a test runs (the console, the CLI in a child process, the sender's
# default outbox, the link keyring) may write into the real user's data
# directory: point XDG at a directory of this run's own.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="subgroups-test-xdg-")

# Each test run keeps its stores in a schema of its own, so two runs against
# one server (two developers, a run beside the CI's) never empty each other's.
PG_SCHEMA = f"subgroups_test_{os.getpid()}"


def _schema_of(url: str) -> str:
    options = make_url(url).query.get("options", "")
    for option in options if isinstance(options, tuple) else (options,):
        if option.startswith("-csearch_path="):
            return option.removeprefix("-csearch_path=").split(",")[0]
    return "public"


def pg_store_url(url: str, schema: str = PG_SCHEMA) -> str:
    """``url`` with its search_path set to ``schema``: where a PostgreSQL test store lives."""
    with_path = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return with_path.render_as_string(hide_password=False)


def reset_pg_schema(url: str) -> None:
    """Drop and recreate the URL's schema (public unless it names one): each test starts empty."""
    schema = _schema_of(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop this run's PostgreSQL schema."""
    if PG_URL is None:
        return
    engine = create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE'))
    except Exception:  # the server went away: nothing left to tidy
        pass
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def link_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test signs links with a keyring of its own (``SUBGROUPS_SECRET_FILE``)."""
    path = tmp_path / "keys" / "link-keys.json"
    monkeypatch.setenv("SUBGROUPS_SECRET_FILE", str(path))
    return path


@pytest.fixture
def fixed_clock() -> Iterator[datetime]:
    """Freeze the services' clock at a known instant that ticks a second per read."""
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
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
    url = pg_store_url(PG_URL)
    reset_pg_schema(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open, empty store, on SQLite and on PostgreSQL."""
    opened = open_store(store_url)
    yield opened
    opened.dispose()


@pytest.fixture
def pg_url() -> str:
    """A PostgreSQL store URL (this run's schema, emptied); skips when there is no server."""
    if PG_URL is None:
        pytest.skip(PG_SKIP_REASON)
    url = pg_store_url(PG_URL)
    reset_pg_schema(url)
    return url


@pytest.fixture(scope="session")
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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line on the PostgreSQL half: ran, or skipped and why."""
    skipped = terminalreporter.stats.get("skipped", [])
    pg_skips = [r for r in skipped if "postgres" in getattr(r, "keywords", {})]
    if pg_skips and not PG_URL:
        terminalreporter.write_line(f"PostgreSQL: {len(pg_skips)} tests skipped: {PG_SKIP_REASON}")
    elif PG_URL:
        terminalreporter.write_line(f"PostgreSQL: tests ran against {PG_ENV}")
        # Tests that do not apply to PostgreSQL skip themselves, each saying why.
        reasons = sorted({str(r.longrepr[2]) for r in pg_skips if isinstance(r.longrepr, tuple)})
        for reason in reasons:
            terminalreporter.write_line(f"PostgreSQL: skipped by design: {reason}")
