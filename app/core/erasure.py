"""Erasing a person while keeping their opt-out (issue 12, ask 5).

``erase_profile`` (owners only) removes the profile's email, name, properties
and identity, and keeps the address only as a keyed hash in the suppression
list (``suppression``): a later profile or import with that address starts
unsubscribed from all email. The profile row stays (its states keep being
enforced, its id keeps its history), named ``erased:<digest>`` from then on.

The person's ledger events keep their place in the hash chain: each one's
identity becomes ``erased:<sha256 of the identity>`` and a ``Reason`` it
carried becomes ``{"erased": "<sha256 of the reason>"}``, the very values its
content hash was computed over (``ledger_chain``), so ``events verify`` still
passes. The database's append-only guard allows exactly that change and no
other. A ``Profile Erased`` event records the erasure and holds no personal
data: the reason given, which fields went, and how many events were redacted.

Not reached: copies of sent messages in a Maildir outbox (files on disk).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from app.core import actors, clock, ledger, ledger_chain, profiles
from app.core.errors import InvalidInput, RuleRefused
from app.core.event_names import PROFILE_ERASED
from app.core.ledger import EventRecord
from app.core.models import UNSUBSCRIBED, AddressSuppression, Delivery, Event, Profile, email_key
from app.core.store import read_store_id
from app.core.subscriptions import StateChange, apply_changes, clean_reason
from app.core.suppression import SuppressionList, address_hash, install_secret

ERASED_FIELDS = ("identity", "email", "name", "properties")


@dataclass(frozen=True)
class Erased:
    """What ``erase_profile`` did, as plain data."""

    profile_id: int
    identity: str  # the profile's name from now on: erased:<digest>
    events_redacted: int
    addresses_suppressed: int
    event: EventRecord


def redacted_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """The properties with each personal value replaced by ``{"erased": digest}``."""
    values = dict(properties)
    for key in ledger_chain.PERSONAL_PROPERTIES:
        value = values.get(key)
        if isinstance(value, str):
            values[key] = {ledger_chain.ERASED_KEY: ledger_chain.digest(value)}
    return values


def erase_profile(
    *,
    session: Session,
    identity: str,
    reason: str | None,
    source: str,
    actor: str,
    now: datetime | None = None,
) -> Erased:
    """Erase one person (owners only): see the module's docstring.

    Refused with nothing changed: no reason (``InvalidInput``), an unknown
    identity (``UnknownProfile``), a profile erased already (``RuleRefused``).
    """
    actors.require(session, actors.OWNER, "erasing a profile")
    cleaned = clean_reason(reason)
    if not cleaned:
        raise InvalidInput("Give the reason for the erasure (--reason)", field="reason")
    profile = profiles.get_profile(session, identity)
    if ledger_chain.is_erased_identity(profile.identity):
        raise RuleRefused(f"{identity!r} is erased already")
    locked = session.exec(
        select(Profile)
        .where(col(Profile.id) == profile.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    assert locked.id is not None
    ts = now or clock.now()
    keys = {email_key(locked.email)}
    if "@" in locked.identity:  # an identity that is an address is suppressed too
        keys.add(email_key(locked.identity))
    secret = install_secret(create=True)
    assert secret is not None
    store_id = read_store_id(session)
    suppressed = 0
    for key in sorted(k for k in keys if k):
        hashed = address_hash(secret, store_id, key)
        if session.get(AddressSuppression, hashed) is None:
            session.add(AddressSuppression(address_hash=hashed, erased_at=ts, reason=cleaned))
            suppressed += 1
    session.flush()
    # Other profiles with the address (one address is one recipient) stay out too.
    twins = session.exec(
        select(Profile.id, Profile.identity, Profile.email).where(
            col(Profile.email_key).in_([k for k in keys if k]), col(Profile.id) != locked.id
        )
    ).all()
    keep_suppressed(
        session=session,
        people=[(int(pid or 0), ident, email) for pid, ident, email in twins],
        source=source,
        actor=actor,
        now=ts,
    )
    redacted = 0
    for event in session.exec(select(Event).where(col(Event.profile_id) == locked.id)).all():
        if event.identity is None or ledger_chain.is_erased_identity(event.identity):
            continue
        event.identity = ledger_chain.ERASED_IDENTITY + ledger_chain.digest(event.identity)
        event.properties = redacted_properties(dict(event.properties or {}))
        session.add(event)
        redacted += 1
    session.flush()
    session.execute(
        update(Delivery).where(col(Delivery.profile_id) == locked.id).values(address_key=None)
    )
    marker = ledger_chain.ERASED_IDENTITY + ledger_chain.digest(locked.identity)
    locked.identity, locked.email, locked.email_key = marker, None, None
    locked.name, locked.properties = "", {}
    session.add(locked)
    session.flush()
    event = ledger.record(
        session,
        name=PROFILE_ERASED,
        source=source,
        actor=actor,
        identity=marker,
        profile_id=locked.id,
        now=ts,
        properties={
            "Erasure Reason": cleaned,
            "Erased": list(ERASED_FIELDS),
            "Events Redacted": redacted,
            "Addresses Suppressed": suppressed,
        },
    )
    return Erased(
        profile_id=locked.id,
        identity=marker,
        events_redacted=redacted,
        addresses_suppressed=suppressed,
        event=ledger.to_record(event),
    )


def keep_suppressed(
    *,
    session: Session,
    people: Sequence[tuple[int, str, str | None]],
    source: str,
    actor: str,
    now: datetime | None = None,
) -> int:
    """Unsubscribe from all email each of ``people`` (profile id, identity, address) whose
    address is on the suppression list, with the reason "suppressed: erased on DATE";
    returns how many events that wrote. Called by imports for new and changed addresses."""
    listing = SuppressionList(session)
    if listing.empty or not people:
        return 0
    found = listing.lookup([email for _, _, email in people])
    hits = [(pid, identity, found[key]) for pid, identity, email in people
            if (key := email_key(email)) is not None and key in found]  # fmt: skip
    if not hits:
        return 0
    current = dict(
        session.exec(
            select(Profile.id, Profile.all_email).where(
                col(Profile.id).in_([pid for pid, _, _ in hits])
            )
        ).all()
    )
    changes = [
        StateChange(pid, identity, None, None, current[pid], UNSUBSCRIBED, why.words)
        for pid, identity, why in hits
        if current.get(pid) not in (None, UNSUBSCRIBED)
    ]
    return apply_changes(session=session, changes=changes, source=source, actor=actor, now=now)
