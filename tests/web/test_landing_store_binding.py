"""Links are bound to their store (issue 8, point 6): two stores sharing one data
directory and one keyring never accept each other's links, against the real server."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from landing_world import LandingWorld, build_world, ledger_size, stored_states
from test_landing_refusals import ONE_CLICK, assert_refused
from web_client import LockedLog, Served

from app.__main__ import main
from app.core.store import open_store
from app.core.tokens import load_keyring
from app.web.serving import LandingServer


@contextmanager
def serving_world(world: LandingWorld) -> Iterator[Served]:
    """The real landing server over ``world``'s store, on a free loopback port."""
    log = LockedLog()
    server = LandingServer(world.store, host="127.0.0.1", port=0, access_log=log).start()
    host, port = server.socket.getsockname()[:2]
    try:
        yield Served(server.url, host, port, world, load_keyring(), log)
    finally:
        server.stop()


def _link(capsys: pytest.CaptureFixture[str], db: Path, identity: str) -> str:
    """The one-click link ``subgroups landing --link`` prints for the person of that store."""
    assert main(["landing", "--link", identity, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    return lines["Unsubscribe"].strip().split("/", 3)[3]  # "u/<token>"


def test_a_link_of_store_a_is_refused_by_store_b_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One data directory, one keyring (the test run's), two stores whose people share ids.
    store_a = open_store(tmp_path / "a.db")
    store_b = open_store(tmp_path / "b.db")
    try:
        world_a, world_b = build_world(store_a), build_world(store_b)
        assert world_a.ann == world_b.ann
        path = "/" + _link(capsys, tmp_path / "a.db", "ann")

        with serving_world(world_b) as served_b:
            before = (ledger_size(store_b), stored_states(store_b, world_b.ann))
            for method, body in (("POST", ONE_CLICK), ("GET", None)):
                headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
                answer = served_b.request(method, path, body, headers)
                assert_refused(answer, 400, "not valid")
                assert "nothing was changed" in answer.body
            assert (ledger_size(store_b), stored_states(store_b, world_b.ann)) == before

        # The same link works on the store it was issued for.
        with serving_world(world_a) as served_a:
            answer = served_a.post(path, ONE_CLICK)
            assert answer.status == 200, answer.body
    finally:
        store_a.dispose()
        store_b.dispose()
