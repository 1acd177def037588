"""``subgroups landing --workers N``: N processes on one socket, one writer at a time,
every acknowledged one-click kept after kill -9 of the parent (the workers die with it)."""

import http.client
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlmodel import col, select

from app.core import campaigns
from app.core.ledger import CHANNEL_UNSUBSCRIBED
from app.core.models import SUBSCRIBED, UNSUBSCRIBED, Event, Profile
from app.core.store import open_store
from app.core.synthetic import seed_synthetic
from app.core.tokens import load_keyring, store_binding

BODY = "List-Unsubscribe=One-Click"
HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


class Served:
    """A ``subgroups landing --workers N`` process, its URL and its workers' pids."""

    def __init__(self, proc: "subprocess.Popen[str]", url: str, lines: list[str]) -> None:
        self.proc = proc
        self.url = urlsplit(url)
        self.lines = lines

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def post(self, path: str, *, timeout: float = 20) -> int:
        conn = http.client.HTTPConnection(str(self.url.hostname), self.url.port, timeout=timeout)
        try:
            conn.request("POST", path, body=BODY, headers=HEADERS)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()


def one_click_store(target: Path | str, people: int) -> None:
    """Synthetic people in the store at ``target`` (a file or a URL) and a campaign that
    names no group (its one-click link: all email)."""
    store = open_store(target)
    try:
        seed_synthetic(store=store, profiles=people, groups=3, states_per_profile=2, actor="test")
        with store.write() as session:
            campaigns.create_campaign(session=session, name="Big news", actor="test")
    finally:
        store.dispose()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store of 300 synthetic people and a campaign that names no group (one-click: all email)."""
    path = tmp_path / "workers.db"
    one_click_store(path, 300)
    return path


def links(db: Path | str) -> dict[int, str]:
    """The one-click path of every person still subscribed to all email, by profile id."""
    store = open_store(db)
    try:
        with store.read() as session:
            binding = store_binding(session)
            campaign = campaigns.get_campaign(session, "Big news")
            ids = session.exec(select(Profile.id).where(col(Profile.all_email) == SUBSCRIBED)).all()
    finally:
        store.dispose()
    ring = load_keyring()
    return {i: f"/u/{ring.sign(i, campaign.id, store=binding)}" for i in ids if i is not None}


@pytest.fixture
def serve(
    db: Path, python: str, subprocess_env: dict[str, str]
) -> Iterator[Callable[[int], Served]]:
    """Start ``subgroups landing --workers N`` on the store; killed at the end if still up."""
    started: list[subprocess.Popen[str]] = []

    def start(workers: int) -> Served:
        env = {**subprocess_env, "SUBGROUPS_SECRET_FILE": os.environ["SUBGROUPS_SECRET_FILE"]}
        proc = subprocess.Popen(
            [python, "-m", "app", "landing", "--port", "0", "--db", str(db)]
            + ["--workers", str(workers), "--access-log", os.devnull],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            # Started with SIGINT ignored, as test runners' workers may start it: ctrl+c
            # (SIGINT) must stop it all the same.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        started.append(proc)
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(5)]
        assert lines[0].startswith(f"Serving the landing page of {db} on http://127.0.0.1:")
        served = Served(proc, lines[0].rsplit(" on ", 1)[1].strip(), lines)
        deadline = time.monotonic() + 30
        while len(served.workers()) < workers:  # all forked (they may still be starting)
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        return served

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_each_of_n_workers_answers_on_the_shared_socket(
    serve: Callable[[int], Served], db: Path
) -> None:
    served = serve(3)
    assert f"Workers: 3 processes; writes one at a time under {db}-landing-lock." in served.lines
    workers = served.workers()
    assert len(workers) == 3
    paths = iter(links(db).items())
    answered: list[int] = []
    for alone in workers:
        # Only ``alone`` can accept: the others are stopped while it answers.
        others = [pid for pid in workers if pid != alone]
        for pid in others:
            os.kill(pid, signal.SIGSTOP)
        try:
            profile_id, path = next(paths)
            assert served.post(path) == 200
            answered.append(profile_id)
        finally:
            for pid in others:
                os.kill(pid, signal.SIGCONT)
    served.proc.send_signal(signal.SIGINT)
    served.proc.wait(timeout=30)
    assert served.proc.returncode == 0
    store = open_store(db)
    try:
        with store.read() as session:
            states = session.exec(
                select(Profile.all_email).where(col(Profile.id).in_(answered))
            ).all()
    finally:
        store.dispose()
    assert states == [UNSUBSCRIBED] * 3


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped by init) is gone for our purpose.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split(") ", 1)[1][:1] != "Z"


def test_kill_9_of_the_parent_keeps_every_acknowledged_one_click(
    serve: Callable[[int], Served], db: Path
) -> None:
    served = serve(2)
    workers = served.workers()
    todo = list(links(db).items())
    acknowledged: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            with lock:
                if not todo:
                    return
                profile_id, path = todo.pop()
            try:
                status = served.post(path, timeout=5)
            except (OSError, http.client.HTTPException):
                continue  # in flight at the kill: not acknowledged
            if status == 200:
                with lock:
                    acknowledged.append(profile_id)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 40:
        assert time.monotonic() < deadline, "no one-click was acknowledged"
        time.sleep(0.01)
    served.proc.send_signal(signal.SIGKILL)
    served.proc.wait()
    stop.set()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived its parent"
        time.sleep(0.05)

    store = open_store(db)
    try:
        with store.read() as session:
            left = set(
                session.exec(
                    select(Profile.id).where(
                        col(Profile.id).in_(acknowledged),
                        col(Profile.all_email) == UNSUBSCRIBED,
                    )
                ).all()
            )
            in_ledger = set(
                session.exec(
                    select(Event.profile_id).where(
                        col(Event.name) == CHANNEL_UNSUBSCRIBED,
                        col(Event.source) == "one_click",
                        col(Event.profile_id).in_(acknowledged),
                    )
                ).all()
            )
    finally:
        store.dispose()
    assert left == set(acknowledged)
    assert in_ledger == set(acknowledged)
