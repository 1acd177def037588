"""Several ``subgroups landing`` servers on one PostgreSQL store, as on several hosts behind
one proxy: every acknowledged one-click is kept, once, even when a server is killed mid-load.

Each server (and each worker of ``--workers 2``) has its own writer and group
commit; the database server keeps them from stepping on each other. The
"proxy" here is the client: it sends each request to the next server in turn,
and on a refused connection tries the next one, as a proxy does when a host
goes down.
"""

import http.client
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from sqlmodel import col, select
from test_cli_landing_workers import BODY, HEADERS, links, one_click_store

from app.core.ledger import CHANNEL_UNSUBSCRIBED
from app.core.models import UNSUBSCRIBED, Event, Profile
from app.core.store import open_store
from app.core.tokens import load_keyring

pytestmark = pytest.mark.postgres

PEOPLE = 400


class Server:
    """One ``subgroups landing`` process: a host behind the proxy."""

    def __init__(self, proc: "subprocess.Popen[str]", lines: list[str]) -> None:
        self.proc = proc
        self.lines = lines
        self.url = urlsplit(lines[0].rsplit(" on ", 1)[1].strip())

    def post(self, path: str) -> int:
        conn = http.client.HTTPConnection(str(self.url.hostname), self.url.port, timeout=10)
        try:
            conn.request("POST", path, body=BODY, headers=HEADERS)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()


@pytest.fixture
def pg_store(pg_url: str) -> str:
    """A PostgreSQL store of synthetic people; a campaign naming no group (one-click: all email)."""
    one_click_store(pg_url, PEOPLE)
    return pg_url


@pytest.fixture
def start_server(
    pg_store: str, python: str, subprocess_env: dict[str, str]
) -> Iterator[Callable[[int], Server]]:
    """Start ``subgroups landing --db URL --workers N``; every host shares the link keys file."""
    started: list[subprocess.Popen[str]] = []
    load_keyring()  # made once, here: the same secret on every host

    def start(workers: int) -> Server:
        env = {**subprocess_env, "SUBGROUPS_SECRET_FILE": os.environ["SUBGROUPS_SECRET_FILE"]}
        proc = subprocess.Popen(
            [python, "-m", "app", "landing", "--db", pg_store, "--port", "0"]
            + ["--workers", str(workers), "--access-log", os.devnull],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        started.append(proc)
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(4 if workers == 1 else 5)]
        assert lines[0].startswith("Serving the landing page of postgresql+psycopg://")
        assert "***" in lines[0]  # the password is not printed
        return Server(proc, lines)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def wait_until(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Wait for something to happen (a bound against a hang, not a timing)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_servers_behind_one_proxy_keep_every_acknowledged_one_click_through_a_kill_9(
    start_server: Callable[[int], Server], pg_store: str
) -> None:
    servers = [start_server(1), start_server(1), start_server(2)]
    assert "Workers: 2 processes; each writes its own batches to the database server." in (
        servers[2].lines
    )
    victim = servers[0]
    paths = list(links(pg_store).items())
    # A third of the people click twice, on two different hosts at once.
    todo = paths + paths[: len(paths) // 3]
    acknowledged: Counter[int] = Counter()
    served_by: Counter[int] = Counter()
    lock = threading.Lock()
    turn = iter(range(10**9))

    def client() -> None:
        while True:
            with lock:
                if not todo:
                    return
                profile_id, path = todo.pop()
                first = next(turn)
            for attempt in range(len(servers)):
                index = (first + attempt) % len(servers)
                try:
                    status = servers[index].post(path)
                except (OSError, http.client.HTTPException):
                    continue  # that host is down (or went down mid-request): the next one
                if 200 <= status < 300:
                    with lock:
                        acknowledged[profile_id] += 1
                        served_by[index] += 1
                break

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    wait_until(lambda: sum(acknowledged.values()) >= 60, "no one-click was acknowledged")
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a client hung"

    assert served_by[0] > 0 and served_by[1] > 0 and served_by[2] > 0  # every host took load
    assert len(acknowledged) > PEOPLE // 2  # the others carried on after the kill
    store = open_store(pg_store)
    try:
        with store.read() as session:
            events = Counter(
                session.exec(
                    select(Event.profile_id).where(
                        col(Event.name) == CHANNEL_UNSUBSCRIBED,
                        col(Event.source) == "one_click",
                    )
                ).all()
            )
            unsubscribed = set(
                session.exec(select(Profile.id).where(col(Profile.all_email) == UNSUBSCRIBED)).all()
            )
    finally:
        store.dispose()
    # Every acknowledged one-click is in the ledger, exactly once (twice-clicked people too).
    assert {pid: events[pid] for pid in acknowledged} == dict.fromkeys(acknowledged, 1)
    # The states match the ledger: unsubscribed exactly when the ledger says so.
    assert unsubscribed & {pid for pid, _ in paths} == set(events)
    assert set(acknowledged) <= unsubscribed
    assert max(events.values()) == 1
