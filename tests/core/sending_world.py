"""What the sending tests share: a small store with known choices, the eligibility chain
worked out independently of ``app.core.eligibility`` (the reference), what arrived in a
Maildir, and an SMTP server (aiosmtpd) that keeps what it is sent."""

import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlmodel import col, select

from app.core import campaigns, groups, profiles, subscriptions
from app.core.models import (
    POLICY_OPT_IN,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Campaign,
    Delivery,
    Group,
    GroupState,
    Profile,
)
from app.core.store import Store

ACTOR = "tester"
BODY = "Hello {{ name }},\n\nNews of the week.\n\nUnsubscribe: {{ unsubscribe_url }}\n"


@dataclass
class World:
    """A store with groups and people whose choices the tests know."""

    store: Store
    groups: dict[str, int] = field(default_factory=dict)
    people: dict[str, int] = field(default_factory=dict)


def add_group(store: Store, name: str, policy: str = "opt-out") -> int:
    with store.write() as session:
        group = groups.create_group(session=session, name=name, policy=policy, actor=ACTOR)
        assert group.id is not None
        return group.id


def add_person(store: Store, identity: str, email: str | None = "") -> int:
    with store.write() as session:
        profile = profiles.create_profile(
            session=session,
            identity=identity,
            email=f"{identity}@example.com" if email == "" else email,
            name=identity.title(),
        )
        assert profile.id is not None
        return profile.id


def set_state(store: Store, identity: str, group_id: int | None, status: str) -> None:
    """Change one state the way the services do (with its ledger event), and commit."""
    with store.write() as session:
        profile = profiles.get_profile(session, identity)
        group = session.get(Group, group_id) if group_id else None
        subscriptions.set_state(
            session=session, profile=profile, group=group, status=status,
            source="landing_page", actor="recipient",
        )  # fmt: skip


def add_campaign(store: Store, name: str = "November news", **fields: Any) -> int:
    values: dict[str, Any] = {
        "subject": "November news",
        "from_address": "Example News <news@example.com>",
        "body": BODY,
    }
    values.update(fields)
    with store.write() as session:
        campaign = campaigns.create_campaign(session=session, name=name, actor=ACTOR, **values)
        assert campaign.id is not None
        return campaign.id


def shop(store: Store, people: int = 14) -> World:
    """Newsletter, Promotions (opt-out), Beta (opt-in); ``people`` profiles p01, p02, …

    p02 left Promotions, p03 left all email, p05 has no email address,
    p06's address cannot be mailed (non-ASCII local part), p07 joined Beta,
    p08 left Newsletter.
    """
    world = World(store)
    world.groups = {
        "newsletter": add_group(store, "Newsletter"),
        "promotions": add_group(store, "Promotions"),
        "beta": add_group(store, "Beta", POLICY_OPT_IN),
    }
    for n in range(1, people + 1):
        identity = f"p{n:02d}"
        email: str | None = ""
        if n == 5:
            email = None
        elif n == 6:
            email = "jörg@example.com"
        world.people[identity] = add_person(store, identity, email)
    set_state(store, "p02", world.groups["promotions"], UNSUBSCRIBED)
    set_state(store, "p03", None, UNSUBSCRIBED)
    set_state(store, "p07", world.groups["beta"], SUBSCRIBED)
    set_state(store, "p08", world.groups["newsletter"], UNSUBSCRIBED)
    return world


def reference_eligible(store: Store, campaign_id: int) -> set[int]:
    """Who may get the campaign now, by DESIGN.md's chain (all-profile audiences only),
    read from the store with plain queries; the sender's own check is not used."""
    with store.read() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.segment_id is None
        policies = {g.id: g.policy for g in session.exec(select(Group)).all()}
        stored = {
            (s.profile_id, s.group_id): s.state for s in session.exec(select(GroupState)).all()
        }
        people = session.exec(select(Profile)).all()

    def effective(pid: int, gid: int) -> str:
        state = stored.get((pid, gid))
        if state is not None:
            return state
        return SUBSCRIBED if policies[gid] != POLICY_OPT_IN else UNSUBSCRIBED

    eligible = set()
    for person in people:
        assert person.id is not None
        if any(effective(person.id, g) != SUBSCRIBED for g in campaign.only_subscribed_to):
            continue
        if person.all_email == UNSUBSCRIBED:
            continue
        if any(effective(person.id, g) != SUBSCRIBED for g in campaign.do_not_send_to):
            continue
        eligible.add(person.id)
    return eligible


def with_usable_email(store: Store, ids: set[int]) -> set[int]:
    """Those of ``ids`` whose address can be mailed (shop(): not p05, not p06)."""
    from app.core.mail import usable_address

    with store.read() as session:
        rows = session.exec(select(Profile)).all()
    return {p.id for p in rows if p.id in ids and usable_address(p.email)}  # type: ignore[misc]


def deliveries(store: Store, campaign_id: int) -> list[Delivery]:
    with store.read() as session:
        return list(
            session.exec(
                select(Delivery)
                .where(col(Delivery.campaign_id) == campaign_id)
                .order_by(col(Delivery.profile_id))
            ).all()
        )


def sent_to(store: Store, campaign_id: int) -> set[int]:
    return {d.profile_id for d in deliveries(store, campaign_id) if d.status == "sent"}


def status_of(store: Store, campaign_id: int) -> str:
    with store.read() as session:
        return campaigns.get_campaign_by_id(session, campaign_id).status


def maildir_messages(path: Path) -> list[EmailMessage]:
    """Every message in a Maildir (new/ and cur/), parsed."""
    found = []
    for folder in ("new", "cur"):
        for file in sorted((path / folder).glob("*")) if (path / folder).is_dir() else []:
            message = message_from_bytes(file.read_bytes(), policy=email_policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
    return found


def recipients_of(messages: list[EmailMessage]) -> Counter[str]:
    """How many messages went to each address."""
    return Counter(m["To"].addresses[0].addr_spec for m in messages)


def emails_of(store: Store, ids: set[int]) -> Counter[str]:
    with store.read() as session:
        rows = session.exec(select(Profile).where(col(Profile.id).in_(ids))).all()
    return Counter(p.email for p in rows if p.email)


def free_port() -> int:
    """A loopback port nothing listens on (as far as anyone can tell)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sink:
    """An aiosmtpd handler keeping what arrives; ``refuse`` maps an address to a reply."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refuse_rcpt: dict[str, str] = {}
        # After this many messages, answer every DATA with this reply (a server in trouble).
        self.fail_after: int | None = None
        self.fail_reply = "421 4.3.2 Service shutting down"
        self.lock = threading.Lock()

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook names)
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        with self.lock:
            if self.fail_after is not None and len(self.received) >= self.fail_after:
                return self.fail_reply
            self.received.append(
                (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
            )
        return "250 Message accepted"

    def messages(self) -> list[EmailMessage]:
        parsed = []
        for _sender, _rcpts, data in self.received:
            message = message_from_bytes(data, policy=email_policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed


class SmtpServer:
    """A real SMTP server on a loopback port, for the length of a test."""

    def __init__(self, port: int | None = None) -> None:
        self.sink = Sink()
        self.port = port or free_port()
        self.controller = Controller(
            self.sink, hostname="127.0.0.1", port=self.port, ready_timeout=10
        )

    def __enter__(self) -> "SmtpServer":
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
