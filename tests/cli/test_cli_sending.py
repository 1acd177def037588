"""``subgroups campaigns send``, as scripts use it: the summary on stdout, exit codes,
one-line errors, a paused send when the SMTP server is unreachable, and the default
outbox in the data directory."""

import socket
from pathlib import Path

import pytest
from cli_runner import CliRunner

from app import cli
from app.cli.sending import campaigns_send
from app.core import campaigns, groups, profiles, subscriptions
from app.core.outbox import default_outbox_dir
from app.core.store import open_store

BODY = "Hello {{ name }},\nDeals inside.\nLeave: {{ unsubscribe_url }}\n"


def test_the_cli_runs_this_send_command() -> None:
    assert cli.COMMANDS["campaigns_send"] is campaigns_send


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Eight people; p2 left Promotions, p3 has no address; a draft 'Deals' that skips
    people who left Promotions."""
    path = str(tmp_path / "send.db")
    store = open_store(path)
    with store.write() as session:
        promotions = groups.create_group(session=session, name="Promotions", actor="ada")
        people = [
            profiles.create_profile(
                session=session,
                identity=f"p{n}",
                email=None if n == 3 else f"p{n}@example.com",
                name=f"Person {n}",
            )
            for n in range(1, 9)
        ]
        subscriptions.set_state(
            session=session, profile=people[1], group=promotions, status="unsubscribed",
            source="cli", actor="ada",
        )  # fmt: skip
        campaigns.create_campaign(
            session=session, name="Deals", actor="ada", subject="Deals",
            from_address="Shop <shop@example.com>", body=BODY, do_not_send_to=[promotions.id or 0],
        )  # fmt: skip
    store.dispose()
    return path


def status(db: str) -> str:
    store = open_store(db)
    try:
        with store.read() as session:
            return campaigns.get_campaign(session, "Deals").status
    finally:
        store.dispose()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_send_to_an_outbox_prints_a_summary_and_refuses_a_second_send(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    outbox = tmp_path / "out"
    code, out, err = cli("campaigns", "send", "deals", "--outbox", str(outbox), "--db", db)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (
        f"Sent 6 messages to {outbox} (2 skipped: 1 not eligible at their batch's check, "
        "1 without a usable email address)."
    )
    assert lines[-1].startswith("Campaign 'Deals' is sent: 6 messages in all (")
    assert len(list((outbox / "new").iterdir())) == 6
    assert status(db) == campaigns.SENT

    code, out, err = cli("campaigns", "send", "Deals", "--outbox", str(outbox), "--db", db)
    assert code == 1 and out == ""
    assert err.startswith("subgroups: Campaign 'Deals' was already sent on ")
    assert err.count("\n") == 1
    assert len(list((outbox / "new").iterdir())) == 6


def test_the_default_outbox_is_in_the_data_directory(cli: CliRunner, db: str) -> None:
    code, out, _ = cli("campaigns", "send", "Deals", "--batch-size", "2", "--db", db)
    assert code == 0
    store = open_store(db)
    outbox = default_outbox_dir(store.store_id)
    store.dispose()
    assert outbox.parent == default_outbox_dir("x").parent  # outbox/<store id>/
    assert f"to {outbox} " in out
    assert len(list((outbox / "new").glob("c*"))) >= 6


def test_an_unreachable_smtp_server_pauses_the_send_with_one_line(cli: CliRunner, db: str) -> None:
    port = closed_port()
    code, out, err = cli("campaigns", "send", "Deals", "--smtp", f"127.0.0.1:{port}", "--db", db)
    assert code == 1 and out == ""
    assert err == (
        f"subgroups: SMTP server 127.0.0.1:{port} unreachable: Connection refused; the send is "
        "paused after 0 messages, run the send again to resume\n"
    )
    assert status(db) == campaigns.PAUSED


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--smtp", "mail.example.com:port"], "--smtp 'mail.example.com:port' is not HOST:PORT"),
        (["--starttls"], "--starttls goes with --smtp HOST:PORT"),
        (["--outbox", "x", "--smtp", "h:25"], "not allowed with argument"),
        (["--batch-size", "0"], "must be 1 or more"),
    ],
)
def test_bad_options_are_bad_usage_and_change_nothing(
    cli: CliRunner, db: str, argv: list[str], message: str
) -> None:
    code, _out, err = cli("campaigns", "send", "Deals", *argv, "--db", db)
    assert code == 2 and message in err
    assert status(db) == campaigns.DRAFT


def test_an_unknown_campaign_is_refused(cli: CliRunner, db: str) -> None:
    code, _out, err = cli("campaigns", "send", "Nope", "--db", db)
    assert code == 1 and "No campaign is named 'Nope'" in err


def _add_draft(db: str, name: str, **fields: object) -> None:
    store = open_store(db)
    try:
        with store.write() as session:
            values: dict[str, object] = {
                "subject": "Hi {{ name }}",
                "from_address": "shop@example.com",
                "body": BODY,
            }
            values.update(fields)
            campaigns.create_campaign(session=session, name=name, actor="ada", **values)  # type: ignore[arg-type]
    finally:
        store.dispose()


def _status_of(db: str, name: str) -> str:
    store = open_store(db)
    try:
        with store.read() as session:
            return campaigns.get_campaign(session, name).status
    finally:
        store.dispose()


def test_a_campaign_that_reaches_nobody_is_not_sent(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    """Issue 8, point 5: reach 0 is refused (exit 1, one line) and it stays a draft."""
    store = open_store(db)
    with store.write() as session:
        promotions = groups.find_group(session, "Promotions")
        for person in profiles.search_profiles(session, "p", limit=100):
            subscriptions.set_state(
                session=session, profile=person,
                group=promotions, status="unsubscribed", source="cli", actor="ada",
            )  # fmt: skip
    store.dispose()
    outbox = tmp_path / "out"

    code, out, err = cli("campaigns", "send", "Deals", "--outbox", str(outbox), "--db", db)

    assert (code, out) == (1, "")
    assert err == (
        "subgroups: Campaign 'Deals' reaches nobody (reach 0): change its audience or groups\n"
    )
    assert _status_of(db, "Deals") == campaigns.DRAFT
    assert not outbox.exists() or not any(outbox.rglob("c*"))


def test_the_untouched_placeholder_body_is_not_sent(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    """Issue 8, point 4: the wizard's placeholder line is never mailed."""
    from app.core.body_template import DEFAULT_BODY

    _add_draft(db, "Untouched", body=DEFAULT_BODY)
    outbox = tmp_path / "out"

    code, out, err = cli("campaigns", "send", "Untouched", "--outbox", str(outbox), "--db", db)

    assert code == 2 and out == "" and err.count("\n") == 1
    assert "'Write your message here.' (line 3): write the message" in err
    assert _status_of(db, "Untouched") == campaigns.DRAFT
    assert not outbox.exists() or not any(outbox.rglob("c*"))


def test_the_subject_is_filled_in_for_each_recipient(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    """Issue 8, point 4: ``Subject: Hi {{ name }}`` arrives as "Hi Person 1"."""
    from email import message_from_bytes
    from email import policy as email_policy

    _add_draft(db, "Hello")
    outbox = tmp_path / "out"
    code, _, err = cli("campaigns", "send", "Hello", "--outbox", str(outbox), "--db", db)
    assert (code, err) == (0, "")
    subjects = {
        str(message_from_bytes(path.read_bytes(), policy=email_policy.default)["Subject"])
        for path in (outbox / "new").iterdir()
    }
    assert "Hi Person 1" in subjects and len(subjects) == 7  # p3 has no address
    assert not any("{{" in subject for subject in subjects)
