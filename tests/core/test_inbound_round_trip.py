"""The whole loop: a campaign sent (with the store's inbound domain set) into a
Maildir, and what comes back about those very messages. The listener takes the
mailto address of one message's List-Unsubscribe, a bounce to another's
Return-Path, and a complaint quoting a third message whole; the next campaign
is not sent to the address that bounced."""

import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from inbound_mail import dsn, send
from sending_world import World, add_campaign, maildir_messages, sent_to, shop

from app.core import profiles, sending, settings
from app.core.inbound import InboundDomain
from app.core.outbox import MaildirOutbox
from app.core.store import Store
from app.core.tokens import load_keyring, store_binding
from app.inbound.server import InboundServer

DOMAIN = "in.example.com"


@pytest.fixture
def world(store: Store) -> World:
    made = shop(store)
    with store.write() as session:
        settings.set_setting(session=session, key="inbound-domain", value=DOMAIN, actor="t")
    return made


@pytest.fixture
def listener(world: World) -> Iterator[InboundServer]:
    with world.store.read() as session:
        binding = store_binding(session)
    server = InboundServer(
        world.store, InboundDomain(DOMAIN, load_keyring(), binding), host="127.0.0.1", port=0
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def arf_quoting(message: EmailMessage) -> bytes:
    """A feedback report (RFC 5965 appendix B's form) quoting our message whole."""
    quoted = message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head = (
        b"From: <abusedesk@example.com>\r\nTo: <fbl@in.example.com>\r\nSubject: FW: news\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report;\r\n"
        b' boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nAn abuse report.\r\n'
        b"--b1\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
        b"User-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n\r\n"
        b"--b1\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
    )
    return head + quoted + b"\r\n--b1--\r\n"


def test_what_comes_back_about_our_own_messages(
    world: World, listener: InboundServer, tmp_path: Path
) -> None:
    promotions = world.groups["promotions"]
    first = add_campaign(world.store, "November news", do_not_send_to=[promotions])
    outbox = MaildirOutbox(tmp_path / "outbox")
    sending.send_campaign(store=world.store, campaign_id=first, outbox=outbox, actor="t")
    by_person = {
        str(m["To"]).split("<")[-1].strip(">").split("@")[0]: m
        for m in maildir_messages(tmp_path / "outbox")
    }
    leaves, bounces_back, complains = by_person["p01"], by_person["p04"], by_person["p09"]

    mailto = re.search(r"<mailto:([^>]+)>", str(leaves["List-Unsubscribe"]))
    assert mailto is not None
    send(listener.port, mailto.group(1))
    send(listener.port, str(bounces_back["Return-Path"]).strip("<>"), dsn())
    send(listener.port, f"fbl@{DOMAIN}", arf_quoting(complains))

    with world.store.read() as session:
        p01 = profiles.profile_view(session, "p01")
        p04 = profiles.profile_view(session, "p04")
        p09 = profiles.profile_view(session, "p09")
    left = next(g for g in p01.groups if g.group_id == promotions)
    assert left.stored == "unsubscribed" and left.origin.startswith("mailto by recipient")
    assert p01.all_email == "subscribed"
    assert p04.deliverable is False and p04.all_email == "subscribed"
    assert p09.all_email == "unsubscribed" and p09.all_email_origin.startswith("complaint")

    second = add_campaign(world.store, "December news")
    sending.send_campaign(
        store=world.store, campaign_id=second, outbox=MaildirOutbox(tmp_path / "two"), actor="t"
    )
    got = sent_to(world.store, second)
    assert world.people["p04"] not in got and world.people["p09"] not in got
    assert world.people["p01"] in got  # it left one group, not all email
