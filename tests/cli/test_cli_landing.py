"""``subgroups landing``: serving the page from the command line, and printing a person's links."""

import http.client
import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cli_runner import CliRunner
from landing_world import LandingWorld, build_world

from app.core.store import open_store
from app.core.tokens import StoreBinding, load_keyring, store_binding


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "landing.db")


def binding_of(db: str) -> StoreBinding:
    store = open_store(db)
    try:
        with store.read() as session:
            return store_binding(session)
    finally:
        store.dispose()


@pytest.fixture
def world(db: str) -> LandingWorld:
    store = open_store(db)
    try:
        return build_world(store)
    finally:
        store.dispose()


def test_link_prints_signed_links_naming_the_person_and_campaign(
    cli: CliRunner, db: str, world: LandingWorld
) -> None:
    code, out, err = cli("landing", "--link", "ann", "--campaign", "spring sale", "--db", db)
    assert code == 0, err
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    preferences, unsubscribe = lines["Preferences"].strip(), lines["Unsubscribe"].strip()
    assert preferences.startswith("http://127.0.0.1:8080/p/")
    assert unsubscribe.startswith("http://127.0.0.1:8080/u/")
    token = preferences.rsplit("/", 1)[1]
    said = load_keyring().verify(token, store=binding_of(db))
    assert (said.profile_id, said.campaign_id) == (world.ann, world.campaign_groups)
    assert "curl -d List-Unsubscribe=One-Click" in lines["One-click"]


@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["--link", "nobody"], 1, "No profile has identity 'nobody'"),
        (["--link", "ann", "--campaign", "No such"], 1, "No campaign is named"),
        (["--campaign", "Spring sale"], 2, "--campaign goes with --link"),
        (["--port", "70000"], 2, "not a port number"),
    ],
)
def test_landing_refusals_are_one_line(
    cli: CliRunner, db: str, world: LandingWorld, argv: list[str], code: int, says: str
) -> None:
    got, out, err = cli("landing", *argv, "--db", db)
    assert got == code and says in err
    assert "Traceback" not in err


def test_landing_serves_until_interrupted(
    db: str, world: LandingWorld, python: str, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """The real command: it says where it serves and where the log goes, serves, stops on ctrl+c."""
    log = tmp_path / "access.log"
    env = {**subprocess_env, "SUBGROUPS_SECRET_FILE": os.environ["SUBGROUPS_SECRET_FILE"]}
    proc = subprocess.Popen(
        [python, "-m", "app", "landing", "--port", "0", "--db", db, "--access-log", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(f"Serving the landing page of {db} on http://127.0.0.1:")
        url = urlsplit(first.rsplit(" on ", 1)[1].strip())
        assert f"Access log: {log}" in proc.stdout.readline() + proc.stdout.readline()
        token = load_keyring().sign(world.ann, world.campaign_none, store=binding_of(db))
        conn = http.client.HTTPConnection(str(url.hostname), url.port, timeout=10)
        conn.request(
            "POST",
            f"/u/{token}",
            body="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert '"POST /u/' in log.read_text() and token not in log.read_text()
    store = open_store(db)
    try:
        with store.read() as session:
            from app.core.models import Profile

            profile = session.get(Profile, world.ann)
            assert profile is not None and profile.all_email == "unsubscribed"
    finally:
        store.dispose()


def test_a_port_in_use_is_refused_with_one_line(
    cli: CliRunner, db: str, world: LandingWorld
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = cli("landing", "--port", str(port), "--db", db)
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err
