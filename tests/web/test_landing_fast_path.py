"""The usual one-click unsubscribe answered below Starlette (``app.web.fast_path``), and
each answer written to the socket in one go (``app.web.http_protocol``): the same answers,
the same rows and events, and everything unusual still answered by the app."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from landing_world import build_world, ledger_size, stored_states, subscription_events
from test_landing_refusals import ONE_CLICK, assert_refused
from web_client import LockedLog, Served

from app.core.store import Store
from app.core.tokens import load_keyring
from app.web import server as web_server
from app.web.fast_path import OneClickFastPath
from app.web.http_protocol import CoalescingTransport
from app.web.serving import LandingServer

MULTIPART = "multipart/form-data; boundary=XyZ"
MULTIPART_BODY = (
    '--XyZ\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
    "One-Click\r\n--XyZ--\r\n"
)


class CountingApp:
    """The Starlette app, counting the requests that reach it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await self.app(scope, receive, send)


@pytest.fixture
def counted(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Served, CountingApp]]:
    """The real server, with a count of the requests that reached Starlette."""
    monkeypatch.setattr(web_server.LinkKeys, "CHECK_SECONDS", 0.0)
    world = build_world(sqlite_store)
    log = LockedLog()
    server = LandingServer(world.store, host="127.0.0.1", port=0, access_log=log)
    fast = server.config.app.app  # inside the access log
    assert isinstance(fast, OneClickFastPath)
    counting = CountingApp(fast.app)
    fast.app = counting  # type: ignore[assignment]
    server.start()
    host, port = server.socket.getsockname()[:2]
    try:
        yield Served(server.url, host, port, world, load_keyring(), log), counting
    finally:
        server.stop()


def test_the_usual_one_click_skips_starlette_and_answers_as_the_route_does(
    counted: tuple[Served, CountingApp],
) -> None:
    served, starlette = counted
    w = served.world
    ann, bob = served.token(w.ann, w.campaign_groups), served.token(w.bob, w.campaign_groups)
    fast = served.post(f"/u/{ann}", ONE_CLICK)
    assert starlette.calls == 0  # answered below Starlette
    routed = served.post(f"/u/{bob}", MULTIPART_BODY, MULTIPART)
    assert starlette.calls == 1  # multipart: the route's answer
    assert fast.status == routed.status == 200
    same = {k: v for k, v in fast.headers.items() if k != "date"}
    assert same == {k: v for k, v in routed.headers.items() if k != "date"}
    assert fast.body.replace(ann, bob) == routed.body
    for person in (w.ann, w.bob):
        assert stored_states(served.store, person)[w.newsletter] == "unsubscribed"
        events = subscription_events(served.store, person)
        assert {(e.group_id, e.source, e.properties["Campaign ID"]) for e in events} == {
            (w.newsletter, "one_click", w.campaign_groups),
            (w.old, "one_click", w.campaign_groups),
        }
    lines = served.log.getvalue().splitlines()
    assert len(lines) == 2 and all('"POST /u/' in line and " 200 " in line for line in lines)
    assert ann not in served.log.getvalue()


def test_one_click_shaped_requests_it_cannot_take_get_the_apps_answer(
    counted: tuple[Served, CountingApp],
) -> None:
    """The body it read is handed on: the app refuses with its own message, nothing changes."""
    served, starlette = counted
    w = served.world
    good = served.token(w.ann, w.campaign_groups)
    before = (ledger_size(served.store), stored_states(served.store, w.ann))
    wrong_value = served.post(f"/u/{good}", "List-Unsubscribe=One-Clicx")  # the same length
    assert_refused(wrong_value, 400, "this is not a one-click unsubscribe")
    forged = served.post(f"/u/{good[:-2]}AA", ONE_CLICK)
    assert_refused(forged, 400, "nothing was changed")
    latin = served.post(f"/u/{good}", ONE_CLICK, "application/x-www-form-urlencoded; charset=koi8")
    assert_refused(latin, 415, "send UTF-8")
    assert starlette.calls == 3
    assert (ledger_size(served.store), stored_states(served.store, w.ann)) == before


def test_a_person_the_store_no_longer_has_gets_the_apps_404(
    counted: tuple[Served, CountingApp],
) -> None:
    served, starlette = counted
    answer = served.post(f"/u/{served.token(987654)}", ONE_CLICK)
    assert_refused(answer, 404, "no longer know")
    assert starlette.calls == 0


class RecordingTransport:
    """What a socket's transport was asked to write, and when it was closed."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_an_answers_head_and_body_go_to_the_socket_in_one_write() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes], bool, object]:
        recorded = RecordingTransport()
        transport = CoalescingTransport(recorded, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"ok")
        held = list(recorded.writes)  # nothing yet, within the turn
        await asyncio.sleep(0)
        transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        transport.close()  # what was kept is written before closing
        return held, recorded.writes, recorded.closed, transport.get_extra_info("peername")

    held, writes, closed, peer = asyncio.run(scenario())
    assert held == []
    assert writes == [
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
    ]
    assert closed and peer == ("127.0.0.1", 1)
