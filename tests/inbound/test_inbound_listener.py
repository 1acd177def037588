"""``subgroups inbound``'s listener, for real: an aiosmtpd server on a free port fed
by smtplib, with mailto unsubscribes, RFC 3464 bounces and RFC 5965 complaints
(tests/inbound_mail.py), and what each one refuses with 550 and leaves alone."""

import json
import smtplib
from collections.abc import Iterator

import pytest
from inbound_mail import DOMAIN, SOFT_DSN, altered, arf, binding, dsn, send, token_for
from landing_world import LandingWorld, build_world, ledger_size, stored_states
from sqlmodel import col, select

from app.core import campaigns, eligibility, profiles
from app.core.event_names import EMAIL_BOUNCED
from app.core.inbound import InboundDomain
from app.core.models import Event
from app.core.store import Store
from app.core.tokens import load_keyring
from app.inbound.server import InboundServer


@pytest.fixture
def world(store: Store) -> LandingWorld:
    return build_world(store)


@pytest.fixture
def listener(world: LandingWorld) -> Iterator[InboundServer]:
    domain = InboundDomain(DOMAIN, load_keyring(), binding(world.store))
    server = InboundServer(world.store, domain, host="127.0.0.1", port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def events_named(store: Store, name: str, profile_id: int) -> list[Event]:
    with store.read() as session:
        query = select(Event).where(col(Event.name) == name, col(Event.profile_id) == profile_id)
        return list(session.exec(query.order_by(col(Event.id))).all())


def profile_json(store: Store, identity: str) -> dict[str, object]:
    with store.read() as session:
        data = profiles.profile_view(session, identity).to_json()
    return json.loads(json.dumps(data))


def test_mailto_unsubscribes_as_the_campaign_rule_says(
    world: LandingWorld, listener: InboundServer
) -> None:
    """Mail to unsubscribe+T@D leaves the campaign's groups; Source mailto, its Campaign ID."""
    token = token_for(world.store, world.ann, world.campaign_groups)
    send(listener.port, f"unsubscribe+{token}@{DOMAIN}")
    states = stored_states(world.store, world.ann)
    assert states[world.newsletter] == "unsubscribed" and states[world.old] == "unsubscribed"
    assert states[None] == "subscribed"
    changes = events_named(world.store, "Channel Unsubscribed", world.ann)
    assert {e.source for e in changes} == {"mailto"}
    assert {e.campaign_id for e in changes} == {world.campaign_groups}
    assert {e.properties["Campaign ID"] for e in changes} == {world.campaign_groups}


def test_mailto_without_campaign_groups_leaves_all_email(
    world: LandingWorld, listener: InboundServer
) -> None:
    token = token_for(world.store, world.bob, world.campaign_none)
    # The domain is compared case-insensitively, as mail systems do.
    send(listener.port, f"unsubscribe+{token}@{DOMAIN.upper()}")
    assert stored_states(world.store, world.bob)[None] == "unsubscribed"


@pytest.mark.parametrize(
    "address",
    [
        "unsubscribe+{altered}@{domain}",
        "bounces+{altered}@{domain}",
        "unsubscribe+{token}@elsewhere.example.com",
        "hello@{domain}",
        "unsubscribe@{domain}",
        "unsubscribe+{other_store}@{domain}",
    ],
)
def test_forged_or_unknown_addresses_are_refused_at_rcpt(
    world: LandingWorld, listener: InboundServer, address: str, tmp_path: object
) -> None:
    """A forged or altered token, another domain, a mailbox we do not have: 550, nothing changed."""
    token = token_for(world.store, world.ann, world.campaign_none)
    other = load_keyring().sign(
        world.ann, None, store=type(binding(world.store))("another-store-id")
    )
    rcpt = address.format(altered=altered(token), token=token, domain=DOMAIN, other_store=other)
    before = ledger_size(world.store)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(listener.port, rcpt)
    ((code, _text),) = refused.value.recipients.values()
    assert code == 550
    assert ledger_size(world.store) == before
    assert stored_states(world.store, world.ann)[None] == "subscribed"


def test_a_hard_bounce_makes_the_address_undeliverable(
    world: LandingWorld, listener: InboundServer
) -> None:
    """A 5.x.x DSN: an Email Bounced event, deliverable false, and the reach drops her."""
    with world.store.read() as session:
        campaign = campaigns.get_campaign_by_id(session, world.campaign_none)
    before = eligibility.reach(world.store, campaign)
    token = token_for(world.store, world.ann, world.campaign_none)
    send(listener.port, f"bounces+{token}@{DOMAIN}", dsn())
    (event,) = events_named(world.store, EMAIL_BOUNCED, world.ann)
    assert event.source == "bounce" and event.campaign_id == world.campaign_none
    assert event.properties["Bounce Type"] == "hard"
    assert event.properties["Status"] == "5.0.0"
    assert "not a registered gateway user" in event.properties["Diagnostic"]
    assert event.properties["Deliverable"] is False
    assert profile_json(world.store, "ann")["deliverable"] is False
    assert profile_json(world.store, "bob")["deliverable"] is True
    after = eligibility.reach(world.store, campaign)
    step = next(s for s in after.steps if s.key == eligibility.UNDELIVERABLE)
    assert step.label == "Minus undeliverable addresses" and step.dropped == 1
    assert after.reach == before.reach - 1
    with world.store.read() as session:
        assert eligibility.eligible_now(session, campaign, [world.ann, world.bob]) == {world.bob}


def test_three_soft_bounces_in_a_row_make_it_undeliverable(
    world: LandingWorld, listener: InboundServer
) -> None:
    """4.x.x bounces are counted; the same message reported twice counts once; the third
    message's bounce makes the address undeliverable."""
    with world.store.write() as session:
        third = campaigns.create_campaign(session=session, name="Third", actor="tester")
    token = token_for(world.store, world.ann, world.campaign_none)
    send(listener.port, f"bounces+{token}@{DOMAIN}", SOFT_DSN)
    send(listener.port, f"bounces+{token}@{DOMAIN}", SOFT_DSN)  # the same message again
    token = token_for(world.store, world.ann, world.campaign_groups)
    send(listener.port, f"bounces+{token}@{DOMAIN}", SOFT_DSN)
    assert profile_json(world.store, "ann")["deliverable"] is True
    counts = [
        e.properties["Soft Bounces"] for e in events_named(world.store, EMAIL_BOUNCED, world.ann)
    ]
    assert counts == [1, 1, 2]
    token = token_for(world.store, world.ann, third.id)
    send(listener.port, f"bounces+{token}@{DOMAIN}", SOFT_DSN)
    last = events_named(world.store, EMAIL_BOUNCED, world.ann)[-1]
    assert last.properties["Bounce Type"] == "soft" and last.properties["Status"] == "4.0.0"
    assert last.properties["Soft Bounces"] == 3 and last.properties["Deliverable"] is False
    assert profile_json(world.store, "ann")["deliverable"] is False


def test_a_complaint_unsubscribes_from_all_email(
    world: LandingWorld, listener: InboundServer
) -> None:
    """An ARF report to fbl@D quoting our message: all email, Source complaint."""
    token = token_for(world.store, world.ann, world.campaign_groups)
    send(listener.port, f"fbl@{DOMAIN}", arf(token))
    assert stored_states(world.store, world.ann)[None] == "unsubscribed"
    (event,) = events_named(world.store, "Channel Unsubscribed", world.ann)
    assert event.source == "complaint" and event.group_id is None
    assert event.campaign_id == world.campaign_groups


@pytest.mark.parametrize(
    "case",
    ["forged arf", "plain text to bounces", "delivered dsn", "arf without token", "broken mime"],
)
def test_bad_reports_are_refused_at_data(
    world: LandingWorld, listener: InboundServer, case: str
) -> None:
    token = token_for(world.store, world.ann, world.campaign_none)
    rcpt, content = {
        "forged arf": (f"fbl@{DOMAIN}", arf(altered(token))),
        "plain text to bounces": (
            f"bounces+{token}@{DOMAIN}",
            b"Subject: out of office\r\n\r\nAway.\r\n",
        ),
        "delivered dsn": (f"bounces+{token}@{DOMAIN}", dsn(status="2.0.0", action="delivered")),
        "arf without token": (f"fbl@{DOMAIN}", arf("x").replace(b"/u/x", b"/about")),
        "broken mime": (
            f"bounces+{token}@{DOMAIN}",
            b'Content-Type: multipart/report; report-type=delivery-status; boundary="x"\r\n'
            b"\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\n\xff\xfe\x00 ?\r\n",
        ),
    }[case]
    before = ledger_size(world.store)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(listener.port, rcpt, content)
    assert refused.value.smtp_code == 550
    assert ledger_size(world.store) == before
    assert stored_states(world.store, world.ann)[None] == "subscribed"
    assert profile_json(world.store, "ann")["deliverable"] is True


def test_one_refused_message_leaves_the_others_of_its_session(
    world: LandingWorld, listener: InboundServer
) -> None:
    """Several messages on one connection: the bad one gets 550, the good ones are kept."""
    ann = token_for(world.store, world.ann, world.campaign_none)
    bob = token_for(world.store, world.bob, world.campaign_none)
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=20) as client:
        client.sendmail("x@example.net", [f"unsubscribe+{ann}@{DOMAIN}"], b"Subject: u\r\n\r\n")
        with pytest.raises(smtplib.SMTPDataError):
            client.sendmail("x@example.net", [f"bounces+{bob}@{DOMAIN}"], b"Subject: hi\r\n\r\n")
        client.sendmail("x@example.net", [f"fbl@{DOMAIN}"], arf(bob))
    assert stored_states(world.store, world.ann)[None] == "unsubscribed"
    assert stored_states(world.store, world.bob)[None] == "unsubscribed"
    assert events_named(world.store, EMAIL_BOUNCED, world.bob) == []


def test_a_rotated_key_is_taken_and_a_retired_one_refused_without_a_restart(
    world: LandingWorld, listener: InboundServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process rotates the link keys: mail about a message signed with the new
    key is taken; once the old key is retired, mail about the old one is refused."""
    monkeypatch.setattr(InboundDomain, "CHECK_SECONDS", 0.0)
    old = token_for(world.store, world.bob, world.campaign_none)
    ring = load_keyring()
    ring.rotate()
    new = token_for(world.store, world.ann, world.campaign_none)
    send(listener.port, f"unsubscribe+{new}@{DOMAIN}")
    assert stored_states(world.store, world.ann)[None] == "unsubscribed"
    ring.retire(1)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(listener.port, f"unsubscribe+{old}@{DOMAIN}")
    assert stored_states(world.store, world.bob)[None] == "subscribed"


def test_bounces_arriving_together_are_each_kept_once(
    world: LandingWorld, listener: InboundServer
) -> None:
    """Twelve hard bounces from six connections at once (the writer takes them in
    batches) and a report that does not parse among them: every 250 is one Email Bounced
    event, the bad one gets 550, and both addresses end undeliverable."""
    from concurrent.futures import ThreadPoolExecutor

    ann = token_for(world.store, world.ann, world.campaign_none)
    bob = token_for(world.store, world.bob, world.campaign_groups)
    messages = [(f"bounces+{ann if n % 2 else bob}@{DOMAIN}", dsn()) for n in range(12)]
    messages.insert(5, (f"bounces+{ann}@{DOMAIN}", b"Subject: out of office\r\n\r\nAway.\r\n"))

    def deliver(message: tuple[str, bytes]) -> int:
        try:
            send(listener.port, *message)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code
        return 250

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(deliver, messages))
    assert codes.count(250) == 12 and codes[5] == 550
    assert len(events_named(world.store, EMAIL_BOUNCED, world.ann)) == 6
    assert len(events_named(world.store, EMAIL_BOUNCED, world.bob)) == 6
    assert profile_json(world.store, "ann")["deliverable"] is False
    assert profile_json(world.store, "bob")["deliverable"] is False
