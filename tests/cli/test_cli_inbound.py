"""``subgroups inbound`` as a real process: what it refuses at start, and that a
message answered 250 survives a kill -9 of the listener right after."""

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from cli_runner import CliRunner
from inbound_mail import DOMAIN, dsn, send, token_for
from landing_world import LandingWorld, build_world

from app.core import profiles
from app.core.store import Store, open_store


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "inbound.db")


@pytest.fixture
def world(db: str) -> LandingWorld:
    store = open_store(db)
    try:
        return build_world(store)
    finally:
        store.dispose()


def _reopen(db: str) -> Store:
    return open_store(db, create=False)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "no inbound domain: give --domain D or run: subgroups settings set inbound-domain D"),
        (["--domain", "not a domain"], "--domain:"),
        (["--domain", DOMAIN, "--port", "70000"], "not a port number"),
    ],
)
def test_inbound_refusals_are_one_line(
    cli: CliRunner, db: str, world: LandingWorld, argv: list[str], says: str
) -> None:
    code, _out, err = cli("inbound", "--db", db, *argv)
    assert code == 2 and says in err and "Traceback" not in err


def test_a_port_in_use_is_refused_with_one_line(
    cli: CliRunner, db: str, world: LandingWorld
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = cli("inbound", "--db", db, "--domain", DOMAIN, "--port", str(port))
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err


def _start(
    python: str, env: dict[str, str], db: str, *extra: str
) -> "tuple[subprocess.Popen[str], int]":
    proc = subprocess.Popen(
        [python, "-m", "app", "inbound", "--db", db, "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith(f"Taking mail for {DOMAIN} on 127.0.0.1:"), first + proc.stderr.read()  # type: ignore[union-attr]
    port = int(first.split(" on 127.0.0.1:")[1].split()[0])
    return proc, port


def test_a_message_answered_250_survives_kill_9(
    db: str, world: LandingWorld, python: str, subprocess_env: dict[str, str]
) -> None:
    """Mail is answered 250 only once committed: killing the listener at once keeps it.

    The domain comes from the store's inbound-domain setting (no --domain).
    """
    code = subprocess.run(
        [python, "-m", "app", "settings", "set", "inbound-domain", DOMAIN, "--db", db],
        env=subprocess_env,
        capture_output=True,
        text=True,
    )
    assert code.returncode == 0, code.stderr
    env = {**subprocess_env, "SUBGROUPS_SECRET_FILE": os.environ["SUBGROUPS_SECRET_FILE"]}
    proc, port = _start(python, env, db)
    try:
        store = _reopen(db)
        try:
            unsubscribe = token_for(store, world.ann, world.campaign_none)
            bounce = token_for(store, world.bob, world.campaign_none)
        finally:
            store.dispose()
        send(port, f"unsubscribe+{unsubscribe}@{DOMAIN}")
        send(port, f"bounces+{bounce}@{DOMAIN}", dsn())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGKILL
    store = _reopen(db)
    try:
        with store.read() as session:
            assert profiles.profile_view(session, "ann").all_email == "unsubscribed"
            assert profiles.profile_view(session, "bob").deliverable is False
    finally:
        store.dispose()


def test_the_listener_stops_on_sigterm(
    db: str, world: LandingWorld, python: str, subprocess_env: dict[str, str]
) -> None:
    env = {**subprocess_env, "SUBGROUPS_SECRET_FILE": os.environ["SUBGROUPS_SECRET_FILE"]}
    proc, _port = _start(python, env, db, "--domain", DOMAIN)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Stopped." in out


def test_profiles_show_says_when_the_address_bounced(
    cli: CliRunner, db: str, world: LandingWorld
) -> None:
    from app.core import bounces

    store = open_store(db, create=False)
    try:
        with store.write() as session:
            bounces.record_bounce(
                session,
                profile_id=world.ann,
                campaign_id=None,
                bounce=bounces.Bounce("5.1.1", "failed", "smtp; 550 user unknown", ""),
            )
    finally:
        store.dispose()
    code, out, _ = cli("profiles", "show", "ann", "--db", db)
    assert code == 0 and "Deliverable: no (the address bounced" in out
    code, out, _ = cli("profiles", "show", "bob", "--db", db)
    assert code == 0 and "Deliverable" not in out
    code, out, _ = cli("profiles", "show", "ann", "--json", "--db", db)
    assert code == 0 and '"deliverable": false' in out


def test_a_missing_store_is_not_created(cli: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "store.db"
    code, _out, err = cli("inbound", "--db", str(missing), "--domain", DOMAIN)
    assert code == 2 and f"no store at {missing}" in err
    assert not missing.parent.exists()
