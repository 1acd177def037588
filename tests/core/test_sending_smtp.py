"""Sending through a real SMTP server (aiosmtpd, started inside the test on a loopback
port): what arrives parses with the headers of DESIGN.md §1; an unreachable or failing
server pauses the send with a clear message, and a resume mails nobody twice."""

from collections import Counter
from pathlib import Path

import pytest
from sending_world import (
    SmtpServer,
    World,
    add_campaign,
    deliveries,
    emails_of,
    free_port,
    recipients_of,
    reference_eligible,
    sent_to,
    shop,
    status_of,
    with_usable_email,
)

from app.core import campaigns, ledger, sending, tokens
from app.core.deliveries import CLAIMED, FAILED, UNKNOWN
from app.core.errors import InvalidInput
from app.core.outbox import OutboxUnavailable, OutgoingMessage
from app.core.smtp_outbox import SmtpOutbox, parse_host_port
from app.core.store import Store


@pytest.fixture
def world(store: Store) -> World:
    return shop(store)


def send(
    store: Store, campaign_id: int, outbox: SmtpOutbox, **options: object
) -> sending.SendResult:
    return sending.send_campaign(
        store=store, campaign_id=campaign_id, outbox=outbox, actor="ada", batch_size=3,
        **options,  # type: ignore[arg-type]
    )  # fmt: skip


def smtp(port: int) -> SmtpOutbox:
    return SmtpOutbox("127.0.0.1", port, timeout=5)


def test_messages_arrive_at_a_real_smtp_server_with_the_headers(world: World) -> None:
    store = world.store
    groups = [world.groups["promotions"], world.groups["newsletter"]]
    cid = add_campaign(store, do_not_send_to=groups)
    expected = with_usable_email(store, reference_eligible(store, cid))
    with SmtpServer() as server:
        result = send(store, cid, smtp(server.port))
        received = list(server.sink.received)
    assert result.finished and result.sent == len(expected) == 9
    assert result.outbox == f"SMTP server 127.0.0.1:{server.port}"
    # Envelope: from the campaign's address, one recipient each, matching To.
    assert {sender for sender, _r, _d in received} == {"news@example.com"}
    assert Counter(r for _s, rcpts, _d in received for r in rcpts) == emails_of(store, expected)
    messages = server.sink.messages()
    assert recipients_of(messages) == emails_of(store, expected)
    ring = tokens.load_keyring()
    by_address = {d.profile_id: d for d in deliveries(store, cid)}
    for (_sender, rcpts, _data), message in zip(received, messages, strict=True):
        assert message["To"].addresses[0].addr_spec == rcpts[0]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_all("List-Id") == [
            "Promotions <promotions.g2.list-id.example.com>",
            "Newsletter <newsletter.g1.list-id.example.com>",
        ]
        url = message["List-Unsubscribe"].strip()[1:-1]
        said = ring.verify(url.rsplit("/", 1)[1], store=tokens.StoreBinding(store.store_id))
        assert said.campaign_id == cid
        assert by_address[said.profile_id].message_id == message["Message-ID"]
        body = message.get_content()
        assert url in body and url.replace("/u/", "/p/") in body
        assert message["Date"] is not None and message["Subject"] == "November news"


def test_an_unreachable_server_pauses_the_send_and_a_later_resume_sends_each_once(
    world: World,
) -> None:
    store = world.store
    cid = add_campaign(store)
    port = free_port()  # nothing listens there
    with pytest.raises(OutboxUnavailable) as stopped:
        send(store, cid, smtp(port))
    assert str(stopped.value) == (
        f"SMTP server 127.0.0.1:{port} unreachable: Connection refused; the send is paused "
        "after 0 messages, run the send again to resume"
    )
    assert status_of(store, cid) == campaigns.PAUSED
    assert deliveries(store, cid) == []  # nothing claimed stays behind
    with store.read() as session:
        [paused] = ledger.recent_events(session, name=campaigns.CAMPAIGN_PAUSED)
    assert paused.properties["Reason"] == (
        f"SMTP server 127.0.0.1:{port} unreachable: Connection refused"
    )

    with SmtpServer(port) as server:
        result = send(store, cid, smtp(port))
        messages = server.sink.messages()
    expected = with_usable_email(store, reference_eligible(store, cid))
    assert result.finished and sent_to(store, cid) == expected
    assert recipients_of(messages) == emails_of(store, expected)


def test_a_server_that_gives_out_midway_pauses_and_the_resume_mails_nobody_twice(
    world: World,
) -> None:
    store = world.store
    cid = add_campaign(store)
    expected = with_usable_email(store, reference_eligible(store, cid))
    with SmtpServer() as server:
        server.sink.fail_after = 4  # the fifth message is deferred: 421 shutting down
        with pytest.raises(OutboxUnavailable, match="deferred the message to .*421"):
            send(store, cid, smtp(server.port))
        assert status_of(store, cid) == campaigns.PAUSED
        assert len(sent_to(store, cid)) == 4 == len(server.sink.received)
        assert len(deliveries(store, cid)) == 4  # the deferred one and its batch are unclaimed

        server.sink.fail_after = None
        result = send(store, cid, smtp(server.port))
        messages = server.sink.messages()
    assert result.finished and result.sent_before == 4
    assert recipients_of(messages) == emails_of(store, expected)  # once each


def test_a_refused_recipient_is_recorded_failed_and_not_retried(world: World) -> None:
    store = world.store
    cid = add_campaign(store)
    with SmtpServer() as server:
        server.sink.refuse_rcpt["p04@example.com"] = "550 5.1.1 No such user"
        result = send(store, cid, smtp(server.port))
    assert result.finished and result.failed == 1
    failed = [d.profile_id for d in deliveries(store, cid) if d.status == FAILED]
    assert failed == [world.people["p04"]]
    with store.read() as session:
        [done] = ledger.recent_events(session, name=campaigns.CAMPAIGN_SENT)
    assert done.properties["Failed"] == 1


class CrashAfterHandover(SmtpOutbox):
    """The process fails right after the server took the third message, before it is recorded."""

    handed = 0

    def deliver(self, message: OutgoingMessage) -> None:
        super().deliver(message)
        self.handed += 1
        if self.handed == 3:
            raise KeyboardInterrupt


def test_a_message_whose_fate_is_unknown_is_never_sent_again(world: World) -> None:
    store = world.store
    cid = add_campaign(store)
    expected = with_usable_email(store, reference_eligible(store, cid))
    with SmtpServer() as server:
        with pytest.raises(KeyboardInterrupt):
            send(store, cid, CrashAfterHandover("127.0.0.1", server.port, timeout=5))
        assert status_of(store, cid) == campaigns.PAUSED
        assert [d.status for d in deliveries(store, cid)].count(CLAIMED) == 1

        result = send(store, cid, smtp(server.port))
        messages = server.sink.messages()
    assert result.unknown == 1 and result.finished
    assert recipients_of(messages) == emails_of(store, expected)  # the unknown one: once
    assert [d.status for d in deliveries(store, cid)].count(UNKNOWN) == 1


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("mail.example.com:587", ("mail.example.com", 587)),
        ("mail.example.com", ("mail.example.com", 25)),
        ("[::1]:2525", ("::1", 2525)),
    ],
)
def test_host_and_port(text: str, where: tuple[str, int]) -> None:
    assert parse_host_port(text) == where


@pytest.mark.parametrize("text", ["", "host:port", "host:0", "host:70000", "a b:25"])
def test_a_malformed_host_and_port_is_bad_input(text: str) -> None:
    with pytest.raises(InvalidInput, match="--smtp"):
        parse_host_port(text)


def test_credentials_are_not_sent_unencrypted_to_another_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SUBGROUPS_SMTP_USER", "ada")
    monkeypatch.setenv("SUBGROUPS_SMTP_PASSWORD", "secret")
    with pytest.raises(InvalidInput, match="add --starttls"):
        SmtpOutbox.from_env("mail.example.com", 587)
    assert SmtpOutbox.from_env("mail.example.com", 587, starttls=True).username == "ada"
    monkeypatch.delenv("SUBGROUPS_SMTP_PASSWORD")
    with pytest.raises(InvalidInput, match="SUBGROUPS_SMTP_PASSWORD is not"):
        SmtpOutbox.from_env("127.0.0.1", 2525)
