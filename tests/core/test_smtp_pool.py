"""Sending through the SMTP pool (``app.core.smtp_pool``) to a real relay (aiosmtpd in the
test, ``tests/smtp_relay.py``): over several connections, pipelined or not, every message
arrives exactly once; a 5xx recipient is failed (a 5.1.x is a hard bounce) and the send goes
on; a 4xx is retried, and one refused for good is deferred: the send pauses and the next run
delivers it once; a message the relay accepted is never sent again after a crash."""

import _thread
import asyncio
from collections import Counter
from typing import Any

import pytest
from sending_world import (
    World,
    add_campaign,
    deliveries,
    emails_of,
    reference_eligible,
    sent_to,
    shop,
    status_of,
    with_usable_email,
)
from smtp_relay import Relay, RelayHandler

from app.core import bounces, campaigns, ledger, sending
from app.core.deliveries import CLAIMED, FAILED, SENT, UNKNOWN
from app.core.errors import InvalidInput
from app.core.event_names import EMAIL_BOUNCED
from app.core.outbox import OutboxUnavailable, OutgoingMessage
from app.core.smtp_pool import SmtpPool
from app.core.store import Store

QUICK = (0.01, 0.02, 0.04)  # the retry delays here: a test never waits the real 3.5 s


@pytest.fixture
def world(store: Store) -> World:
    return shop(store, people=20)


def pool(relay: Relay, connections: int = 4, **options: Any) -> SmtpPool:
    return SmtpPool(
        "127.0.0.1", relay.port, connections=connections, timeout=5, retry_delays=QUICK,
        **options,
    )  # fmt: skip


def send(store: Store, campaign_id: int, outbox: SmtpPool) -> sending.SendResult:
    return sending.send_campaign(
        store=store, campaign_id=campaign_id, outbox=outbox, actor="ada", batch_size=5
    )


def expected_of(world: World, campaign_id: int) -> set[int]:
    return with_usable_email(world.store, reference_eligible(world.store, campaign_id))


def assert_each_arrived_once(world: World, campaign_id: int, relay: Relay) -> None:
    """Every Message-ID the relay got arrived once, and they are the sent rows' ids."""
    ids = relay.handler.message_ids()
    assert set(ids.values()) == {1}
    sent_ids = {d.message_id for d in deliveries(world.store, campaign_id) if d.status == SENT}
    assert set(ids) == sent_ids


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "not-pipelined"])
def test_every_message_arrives_once_over_connections_kept_for_the_whole_send(
    world: World, pipelining: bool
) -> None:
    cid = add_campaign(world.store)
    expected = expected_of(world, cid)
    with Relay(delay_ms=5, pipelining=pipelining) as relay, pool(relay) as outbox:
        result = send(world.store, cid, outbox)
    assert result.finished and result.batches == 4 and result.sent == len(expected) == 17
    assert relay.handler.recipients() == emails_of(world.store, expected)
    assert_each_arrived_once(world, cid, relay)
    assert relay.handler.connections == 4  # four connections for four batches, not per batch
    assert outbox.pipelined is pipelining


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "not-pipelined"])
def test_a_refused_recipient_is_failed_and_bounced_and_the_others_are_sent(
    world: World, pipelining: bool
) -> None:
    cid = add_campaign(world.store)
    expected = expected_of(world, cid)
    p04, p09 = world.people["p04"], world.people["p09"]
    with Relay(pipelining=pipelining) as relay, pool(relay) as outbox:
        # A multi-line reply: read whole, or every later reply on the connection is off by one.
        relay.handler.refuse["p04@example.com"] = (
            "550-5.1.1 No such user here\r\n550 5.1.1 Check the address"
        )
        relay.handler.refuse["p09@example.com"] = "554 5.7.1 Message refused by policy"
        result = send(world.store, cid, outbox)
    assert result.finished and result.failed == 2 and result.sent == len(expected) - 2
    rows = {d.profile_id: d.status for d in deliveries(world.store, cid)}
    assert rows[p04] == FAILED and rows[p09] == FAILED
    assert relay.handler.recipients() == emails_of(world.store, expected - {p04, p09})
    assert_each_arrived_once(world, cid, relay)
    # 5.1.1 (no such address) is a hard bounce: that address is out of every campaign now.
    with world.store.read() as session:
        assert bounces.undeliverable_among(session, [p04, p09]) == {p04}
        [bounced] = ledger.recent_events(session, name=EMAIL_BOUNCED)
    assert bounced.identity == "p04" and bounced.properties["Status"] == "5.1.1"
    assert bounced.properties["Campaign ID"] == cid


def test_a_deferred_recipient_is_tried_again_and_delivered_once(world: World) -> None:
    cid = add_campaign(world.store)
    expected = expected_of(world, cid)
    with Relay() as relay, pool(relay) as outbox:
        relay.handler.defer["p04@example.com"] = 2  # 451 twice, then 250
        result = send(world.store, cid, outbox)
    assert result.finished and result.deferred == 0 and result.sent == len(expected)
    assert relay.handler.rcpt_tries["p04@example.com"] == 3
    assert relay.handler.recipients()["p04@example.com"] == 1
    assert_each_arrived_once(world, cid, relay)


def test_a_recipient_deferred_after_every_try_pauses_the_send_and_the_next_run_sends_it(
    world: World,
) -> None:
    store = world.store
    cid = add_campaign(store)
    expected = expected_of(world, cid)
    p04 = world.people["p04"]
    with Relay() as relay:
        relay.handler.defer["p04@example.com"] = 1_000
        with pool(relay) as outbox, pytest.raises(OutboxUnavailable) as stopped:
            send(store, cid, outbox)
        said = (
            f"SMTP server {relay.where} deferred 1 message (451 4.7.1 Try again later); "
            "running the send again retries it; the send is paused after "
        )
        assert str(stopped.value).startswith(said)
        assert relay.handler.rcpt_tries["p04@example.com"] == 1 + len(QUICK)
        assert status_of(store, cid) == campaigns.PAUSED
        assert p04 not in {d.profile_id for d in deliveries(store, cid)}  # its claim released
        if store.engine.dialect.name == "postgresql":
            # A shared send (PostgreSQL) pauses at the batch that had the deferral: that
            # batch goes back to todo for the next run, later batches wait for it.
            assert sent_to(store, cid) < expected - {p04}
        else:
            assert str(stopped.value).startswith(said + "16 messages")
            assert sent_to(store, cid) == expected - {p04}  # the others went on
        before = len(sent_to(store, cid))

        relay.handler.defer.clear()
        with pool(relay) as outbox:
            result = send(store, cid, outbox)
    assert result.finished and result.sent == len(expected) - before
    assert relay.handler.recipients() == emails_of(store, expected)  # p04 once, the rest once
    assert_each_arrived_once(world, cid, relay)


def test_a_connection_the_relay_drops_is_reconnected_and_nothing_is_lost(world: World) -> None:
    cid = add_campaign(world.store)
    expected = expected_of(world, cid)
    with Relay(pipelining=True) as relay, pool(relay, connections=2) as outbox:
        relay.handler.drop_after = 3  # after every third message a connection goes away
        result = send(world.store, cid, outbox)
    assert result.finished and result.sent == len(expected) and result.unknown == 0
    assert relay.handler.recipients() == emails_of(world.store, expected)
    assert_each_arrived_once(world, cid, relay)
    assert relay.handler.connections > 2


class InterruptingRelay(RelayHandler):
    """Raises ctrl+c in the sending process once the relay has accepted ``after`` messages,
    while other messages of the batch are still with other connections."""

    after = 6

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.received) == self.after:
            _thread.interrupt_main()
        await asyncio.sleep(0.05)  # the others are still in flight when it lands
        return reply


def test_a_message_the_relay_accepted_is_never_sent_again_after_an_interrupted_send(
    world: World,
) -> None:
    store = world.store
    cid = add_campaign(store)
    expected = expected_of(world, cid)
    with Relay(handler_class=InterruptingRelay) as relay:
        outbox = pool(relay)
        with pytest.raises(KeyboardInterrupt):
            sending.send_campaign(
                store=store, campaign_id=cid, outbox=outbox, actor="ada", batch_size=20
            )
        outbox.shutdown()  # the messages in flight finish first
        assert status_of(store, cid) == campaigns.PAUSED
        left_claimed = [d.profile_id for d in deliveries(store, cid) if d.status == CLAIMED]
        assert left_claimed  # in the relay's hands when ctrl+c came: their fate untold

        with pool(relay) as outbox:
            result = send(store, cid, outbox)
    assert result.finished and result.unknown == len(left_claimed)
    rows = deliveries(store, cid)
    unknown = {d.profile_id for d in rows if d.status == UNKNOWN}
    assert unknown == set(left_claimed)
    # Nobody got it twice; everybody else got it; the unknown ones are not sent again.
    arrived = relay.handler.recipients()
    assert set(arrived.values()) == {1}
    assert set(emails_of(store, sent_to(store, cid))) <= set(arrived)
    assert set(arrived) | set(emails_of(store, unknown)) == set(emails_of(store, expected))


def test_a_sender_address_the_relay_refuses_pauses_the_send(world: World) -> None:
    cid = add_campaign(world.store)

    class RefusesSender(RelayHandler):
        async def handle_MAIL(  # noqa: N802
            self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
        ) -> str:
            return "550 5.7.1 Sender not allowed"

    with (
        Relay(handler_class=RefusesSender) as relay,
        pool(relay) as outbox,
        pytest.raises(OutboxUnavailable) as stopped,
    ):
        send(world.store, cid, outbox)
    assert "refused the sender address: 550 5.7.1 Sender not allowed" in str(stopped.value)
    assert status_of(world.store, cid) == campaigns.PAUSED
    assert deliveries(world.store, cid) == []  # nothing was sent: every claim released


@pytest.mark.parametrize("connections", [0, 65])
def test_the_number_of_connections_is_1_to_64(connections: int) -> None:
    with pytest.raises(InvalidInput, match="--connections .*between 1 and 64"):
        SmtpPool("127.0.0.1", 25, connections=connections)


def test_one_message_on_its_own_goes_as_with_the_single_connection_outbox() -> None:
    message = OutgoingMessage(
        key="k1", message_id="<k1@example.com>", sender="news@example.com",
        recipient="ada@example.com", data=b"Message-ID: <k1@example.com>\r\n\r\n.leading dot\r\n",
    )  # fmt: skip
    with Relay() as relay, pool(relay, connections=2) as outbox:
        outbox.deliver(message)
    assert relay.handler.message_ids() == Counter({"<k1@example.com>": 1})
    assert relay.handler.received[0][2].endswith(b".leading dot\r\n")  # dot-stuffed and back


class ShutsDown(RelayHandler):
    """Answers 421 (closing the connection) at the end of DATA once it holds ``limit``
    messages, as a relay going down for maintenance does."""

    limit: int | None = 7

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        if self.limit is not None and len(self.received) >= self.limit:
            return "421 4.3.2 Service shutting down"
        return await super().handle_DATA(server, session, envelope)


def test_a_relay_that_keeps_closing_pauses_the_send_and_the_resume_mails_nobody_twice(
    world: World,
) -> None:
    store = world.store
    cid = add_campaign(store)
    expected = expected_of(world, cid)
    with Relay(handler_class=ShutsDown) as relay:
        with pool(relay) as outbox, pytest.raises(OutboxUnavailable) as stopped:
            send(store, cid, outbox)
        assert "421 4.3.2 Service shutting down" in str(stopped.value)
        assert status_of(store, cid) == campaigns.PAUSED
        assert len(sent_to(store, cid)) == 7 == len(relay.handler.received)

        relay.handler.limit = None  # type: ignore[attr-defined]
        with pool(relay) as outbox:
            result = send(store, cid, outbox)
    assert result.finished and result.sent_before == 7 and result.unknown == 0
    assert relay.handler.recipients() == emails_of(store, expected)
    assert_each_arrived_once(world, cid, relay)


def test_a_relay_that_takes_fewer_connections_gets_everything_over_those_it_takes(
    world: World,
) -> None:
    cid = add_campaign(world.store)
    expected = expected_of(world, cid)
    with Relay(delay_ms=2) as relay, pool(relay, connections=4) as outbox:
        relay.handler.max_connections = 1  # the other three are told 421 at EHLO
        result = send(world.store, cid, outbox)
    assert result.finished and result.sent == len(expected) and result.unknown == 0
    assert relay.handler.recipients() == emails_of(world.store, expected)
    assert_each_arrived_once(world, cid, relay)
    assert relay.handler.connections == 1
