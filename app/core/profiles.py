"""Profiles: finding them, and a profile's effective state per group with its origin."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from app.core import bounces, clock
from app.core.errors import InvalidInput, UnknownProfile
from app.core.ledger import CHANNEL_UNSUBSCRIBED, EventRecord, profile_events
from app.core.models import (
    POLICY_OPT_IN,
    STATUS_ACTIVE,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Event,
    Group,
    GroupState,
    Profile,
    email_key,
)
from app.core.text_rules import control_problem, refuse_controls

SEARCH_LIMIT = 200


def get_profile(session: Session, identity: str) -> Profile:
    """The profile with this identity."""
    cleaned = (identity or "").strip()
    profile = session.exec(select(Profile).where(col(Profile.identity) == cleaned)).first()
    if profile is None:
        raise UnknownProfile(f"No profile has identity {identity!r}", field="identity")
    return profile


def create_profile(
    *,
    session: Session,
    identity: str,
    email: str | None = None,
    name: str = "",
    properties: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Profile:
    """Add a profile (subscribed to email, no group state set)."""
    cleaned = (identity or "").strip()
    if not cleaned:
        raise InvalidInput("Identity is required", field="identity")
    refuse_controls(cleaned, what="Identity", field="identity")
    if email is not None:
        refuse_controls(email, what="Email", field="email")
    refuse_controls(name, what="Name", field="name")
    check_properties(properties or {})
    profile = Profile(
        identity=cleaned,
        email=email,
        email_key=email_key(email),
        name=name,
        properties=properties or {},
        created_at=now or clock.now(),
    )
    session.add(profile)
    session.flush()
    return profile


def check_properties(properties: dict[str, Any]) -> None:
    """Refuse a property name, or a text value, holding a control character."""
    for key, value in properties.items():
        problem = control_problem(str(key))
        if problem is not None:
            raise InvalidInput(f"A property name {problem}", field="properties")
        problem = control_problem(value) if isinstance(value, str) else None
        if problem is not None:
            raise InvalidInput(f"Property {key!r}: the value {problem}", field="properties")


def count_profiles(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Profile)).one())


def search_profiles(session: Session, query: str, *, limit: int = SEARCH_LIMIT) -> list[Profile]:
    """Profiles whose identity, email or name contains ``query`` (case-insensitive)."""
    text = (query or "").strip()
    statement = select(Profile)
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(
            or_(
                col(Profile.identity).ilike(pattern, escape="\\"),
                col(Profile.email).ilike(pattern, escape="\\"),
                col(Profile.name).ilike(pattern, escape="\\"),
            )
        )
    return list(session.exec(statement.order_by(col(Profile.identity)).limit(limit)).all())


@dataclass(frozen=True)
class GroupStateView:
    """One group as it stands for one profile, and where that state came from."""

    group_id: int
    group_name: str
    group_status: str
    policy: str
    stored: str | None
    effective: str
    # "policy default" or the source/time/actor/reason of the last change.
    origin: str
    changed_at: datetime | None
    reason: str | None


@dataclass(frozen=True)
class ProfileView:
    """A profile with its effective states and its ledger history."""

    id: int
    identity: str
    email: str | None
    name: str
    properties: dict[str, Any]
    all_email: str
    all_email_origin: str
    created_at: datetime
    groups: list[GroupStateView]
    history: list[EventRecord]
    # Identities of the other profiles with this address (one address is one recipient).
    same_address: tuple[str, ...] = ()
    # False once a bounce made the address undeliverable (under any profile of it).
    deliverable: bool = True

    def to_json(self) -> dict[str, Any]:
        """The profile's JSON shape (DESIGN.md §2)."""
        return {
            "identity": self.identity,
            "email": self.email,
            "name": self.name,
            "properties": self.properties,
            "all_email": self.all_email,
            "deliverable": self.deliverable,
            "created_at": self.created_at.isoformat(),
            "groups": [
                {
                    "id": g.group_id,
                    "name": g.group_name,
                    "status": g.group_status,
                    "stored": g.stored,
                    "effective": g.effective,
                    "origin": g.origin,
                }
                for g in self.groups
            ],
            "same_address": list(self.same_address),
        }


def same_address(session: Session, profile: Profile) -> tuple[str, ...]:
    """The identities of the other profiles whose address is this one's (by ``email_key``)."""
    if not profile.email_key:
        return ()
    return tuple(
        session.exec(
            select(Profile.identity)
            .where(col(Profile.email_key) == profile.email_key, col(Profile.id) != profile.id)
            .order_by(col(Profile.id))
        ).all()
    )


def same_address_ids(session: Session, profile: Profile) -> list[int]:
    """The ids of the other profiles whose address is this one's."""
    if not profile.email_key:
        return []
    return [
        int(i)
        for i in session.exec(
            select(Profile.id).where(
                col(Profile.email_key) == profile.email_key, col(Profile.id) != profile.id
            )
        ).all()
        if i is not None
    ]


def effective_state(policy: str, stored: str | None) -> str:
    """The stored state, else the group's default."""
    if stored is not None:
        return stored
    return UNSUBSCRIBED if policy == POLICY_OPT_IN else SUBSCRIBED


def _origin(event: Event | None) -> str:
    if event is None:
        return "set before the ledger began"
    when = event.ts.astimezone().strftime("%Y-%m-%d %H:%M")
    campaign = f", campaign {event.campaign_id}" if event.campaign_id else ""
    reason = (event.properties or {}).get("Reason")
    if isinstance(reason, str) and reason.startswith("suppressed:"):  # an erased address
        campaign += f"; {reason}"
    return f"{event.source} by {event.actor or 'unknown'}, {when}{campaign}"


def profile_view(session: Session, identity: str, *, history_limit: int = 200) -> ProfileView:
    """Everything the Profiles screen and ``profiles show`` tell about one person."""
    profile = get_profile(session, identity)
    assert profile.id is not None
    states = {
        row.group_id: row
        for row in session.exec(
            select(GroupState).where(col(GroupState.profile_id) == profile.id)
        ).all()
    }
    # The newest subscription event per group (and for the channel, group None).
    last_change: dict[int | None, Event] = {}
    # Read by person only and filtered here: with the event name in the query, a
    # planner may walk the name's index, which nearly every event shares.
    for event in session.exec(
        select(Event).where(col(Event.profile_id) == profile.id).order_by(col(Event.id).desc())
    ).all():
        if event.name == CHANNEL_UNSUBSCRIBED:
            last_change.setdefault(event.group_id, event)
    groups = list(
        session.exec(
            select(Group).order_by(col(Group.status) != STATUS_ACTIVE, col(Group.name_key))
        ).all()
    )
    views: list[GroupStateView] = []
    for group in groups:
        assert group.id is not None
        row = states.get(group.id)
        stored = row.state if row else None
        ev = last_change.get(group.id)
        views.append(
            GroupStateView(
                group_id=group.id,
                group_name=group.name,
                group_status=group.status,
                policy=group.policy,
                stored=stored,
                effective=effective_state(group.policy, stored),
                origin=f"{group.policy} policy default" if stored is None else _origin(ev),
                changed_at=ev.ts if (ev and stored is not None) else None,
                reason=(ev.properties or {}).get("Reason") if (ev and stored is not None) else None,
            )
        )
    channel_event = last_change.get(None)
    twins = same_address_ids(session, profile)
    return ProfileView(
        id=profile.id,
        identity=profile.identity,
        email=profile.email,
        name=profile.name,
        properties=dict(profile.properties or {}),
        all_email=profile.all_email,
        all_email_origin=_origin(channel_event) if channel_event else "never changed",
        created_at=profile.created_at,
        groups=views,
        history=profile_events(session, profile_id=profile.id, limit=history_limit),
        same_address=same_address(session, profile),
        deliverable=not bounces.undeliverable_among(session, [profile.id, *twins]),
    )
