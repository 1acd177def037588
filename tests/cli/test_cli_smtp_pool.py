"""``subgroups campaigns send NAME --smtp HOST:PORT --connections N`` against a real relay
(aiosmtpd, ``tests/smtp_relay.py``): every message once over N connections; a refused
recipient is reported and the send finishes; a deferred one pauses the send with exit 1
and one line, and the next run delivers it once; ``--connections`` alone is bad usage."""

from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

import pytest
from cli_runner import CliRunner
from smtp_relay import Relay
from test_cli_sending import BODY, status

from app.core import campaigns, profiles
from app.core.store import open_store

PEOPLE = 30


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Thirty people p1..p30 with an address each, and a draft 'Deals' for all of them."""
    path = str(tmp_path / "pool.db")
    store = open_store(path)
    with store.write() as session:
        for n in range(1, PEOPLE + 1):
            profiles.create_profile(
                session=session, identity=f"p{n}", email=f"p{n}@example.com", name=f"P {n}"
            )
        campaigns.create_campaign(
            session=session, name="Deals", actor="ada", subject="Deals",
            from_address="Shop <shop@example.com>", body=BODY,
        )  # fmt: skip
    store.dispose()
    return path


def arrived(relay: Relay) -> dict[str, str]:
    """Message-ID -> recipient, asserting none arrived twice."""
    found: dict[str, str] = {}
    for _sender, rcpts, data in relay.handler.received:
        message = message_from_bytes(data, policy=email_policy.default)
        assert str(message["Message-ID"]) not in found, "a message arrived twice"
        found[str(message["Message-ID"])] = rcpts[0]
    return found


def send(cli: CliRunner, db: str, relay: Relay, *more: str) -> tuple[int, str, str]:
    return cli("campaigns", "send", "Deals", "--smtp", relay.where, "--db", db, *more)


def test_a_send_over_eight_connections_delivers_each_message_once(cli: CliRunner, db: str) -> None:
    with Relay(delay_ms=10) as relay:
        code, out, err = send(cli, db, relay, "--connections", "8", "--batch-size", "10")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"Sent 30 messages to SMTP server {relay.where}."
    assert sorted(arrived(relay).values()) == sorted(f"p{n}@example.com" for n in range(1, 31))
    assert relay.handler.connections == 8  # opened once, kept across the three batches
    assert status(db) == campaigns.SENT


def test_a_refused_recipient_is_reported_and_the_send_finishes(cli: CliRunner, db: str) -> None:
    with Relay() as relay:
        relay.handler.refuse["p7@example.com"] = "550 5.1.1 No such user"
        code, out, _err = send(cli, db, relay, "--connections", "4")
    assert code == 0
    assert "1 message refused by the server (not retried)." in out.splitlines()
    assert len(arrived(relay)) == 29 and "p7@example.com" not in arrived(relay).values()
    assert status(db) == campaigns.SENT


def test_a_deferred_recipient_pauses_the_send_and_the_next_run_delivers_it_once(
    cli: CliRunner, db: str
) -> None:
    with Relay() as relay:
        relay.handler.defer["p7@example.com"] = 1_000
        code, out, err = send(cli, db, relay, "--connections", "4")
        assert code == 1 and out == ""
        assert err == (
            f"subgroups: SMTP server {relay.where} deferred 1 message (451 4.7.1 Try again "
            "later); running the send again retries it; the send is paused after 29 messages, "
            "run the send again to resume\n"
        )
        assert status(db) == campaigns.PAUSED
        assert relay.handler.rcpt_tries["p7@example.com"] == 4  # the first try and 3 more

        relay.handler.defer.clear()
        code, out, err = send(cli, db, relay, "--connections", "4")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"Sent 1 message to SMTP server {relay.where}."
    assert sorted(arrived(relay).values()) == sorted(f"p{n}@example.com" for n in range(1, 31))
    assert status(db) == campaigns.SENT


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "not-pipelined"])
def test_one_connection_by_default_with_or_without_pipelining(
    cli: CliRunner, db: str, pipelining: bool
) -> None:
    with Relay(pipelining=pipelining) as relay:
        code, _out, _err = send(cli, db, relay)
    assert code == 0 and len(arrived(relay)) == 30
    assert relay.handler.connections == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--connections", "4"], "subgroups: --connections goes with --smtp HOST:PORT"),
        (["--smtp", "127.0.0.1:25", "--connections", "0"], "'0' must be between 1 and 64"),
        (["--smtp", "127.0.0.1:25", "--connections", "65"], "'65' must be between 1 and 64"),
        (["--smtp", "127.0.0.1:25", "--connections", "many"], "'many' is not a whole number"),
    ],
)
def test_bad_connection_options_are_bad_usage_and_change_nothing(
    cli: CliRunner, db: str, argv: list[str], message: str
) -> None:
    code, out, err = cli("campaigns", "send", "Deals", *argv, "--db", db)
    assert code == 2 and out == "" and message in err
    assert status(db) == campaigns.DRAFT
