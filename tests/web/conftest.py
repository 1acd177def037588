"""Fixtures for the landing server tests: the real server (uvicorn, in a thread) on a free
loopback port over a real store (SQLite, and PostgreSQL where the test takes ``store``)."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from landing_world import LandingWorld, build_world
from web_client import LockedLog, Served

from app.core.store import Store
from app.core.tokens import load_keyring
from app.web import server as web_server
from app.web.serving import LandingServer


@contextmanager
def serving(world: LandingWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The landing server on 127.0.0.1 and a free port, over ``world``'s store."""
    # Re-read the keyring on every request, so a test can rotate or retire keys.
    monkeypatch.setattr(web_server.LinkKeys, "CHECK_SECONDS", 0.0)
    keyring = load_keyring()
    log = LockedLog()
    server = LandingServer(world.store, host="127.0.0.1", port=0, access_log=log).start()
    host, port = server.socket.getsockname()[:2]
    try:
        yield Served(server.url, host, port, world, keyring, log)
    finally:
        server.stop()


@pytest.fixture
def world(store: Store) -> LandingWorld:
    """The landing world on each backend."""
    return build_world(store)


@pytest.fixture
def served(world: LandingWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The server over the world, on SQLite and on PostgreSQL."""
    with serving(world, monkeypatch) as running:
        yield running


@pytest.fixture
def served_sqlite(sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The server over the world on SQLite only (for what does not depend on the backend)."""
    with serving(build_world(sqlite_store), monkeypatch) as running:
        yield running
