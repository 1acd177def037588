"""Why one person gets a campaign or not: each step of the eligibility chain for them.

``explain`` evaluates every step of the chain (``app.core.eligibility``) for one
profile and says which step keeps or drops them, with when and where they left
(from the ledger), and, for profiles sharing an address, whose opt-out or
message covers them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyroaring import BitMap
from sqlmodel import Session, col, select

from app.core import bounces, ledger, profiles, segments
from app.core.campaigns import ALL_PROFILES, audience_name
from app.core.eligibility import (
    ADDRESS,
    ALL_EMAIL,
    AUDIENCE,
    DO_NOT_SEND,
    ONE_PER_ADDRESS,
    ONLY,
    UNDELIVERABLE,
    CampaignLike,
    audience_bits,
    eligible_now,
)
from app.core.models import (
    POLICY_OPT_IN,
    STATUS_ARCHIVED,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Delivery,
    Event,
    Group,
    GroupState,
    Profile,
)
from app.core.store import Store


@dataclass(frozen=True)
class ExplainStep:
    """One step for one person: passed (True), dropped them (False), or not reached (None)."""

    key: str
    label: str
    passed: bool | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"step": self.key, "label": self.label, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class Explanation:
    """Why a person gets a campaign or not."""

    identity: str
    eligible: bool
    reason: str
    steps: tuple[ExplainStep, ...]
    delivered_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "eligible": self.eligible,
            "reason": self.reason,
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "steps": [step.to_json() for step in self.steps],
        }


def _last_change(session: Session, profile_id: int, group_id: int | None) -> str:
    """' on 2026-11-20 via landing_page (campaign 3)' for the latest change, or ''."""
    # By person only (newest first), the name and group checked here: a filter
    # on the name lets a planner walk the name's index, shared by nearly every event.
    query = select(Event).where(col(Event.profile_id) == profile_id).order_by(col(Event.id).desc())
    event = next(
        (
            e
            for e in session.exec(query).all()
            if e.name == ledger.CHANNEL_UNSUBSCRIBED and e.group_id == group_id
        ),
        None,
    )
    if event is None:
        return ""
    via = f" via {event.source}"
    if event.campaign_id:
        via += f" (campaign #{event.campaign_id})"
    reason = (event.properties or {}).get("Reason")
    if isinstance(reason, str) and reason.startswith("suppressed:"):  # an erased address
        via += f" ({reason})"
    return f" on {event.ts:%Y-%m-%d}{via}"


def _group_states(
    session: Session, profile_id: int, group_ids: Sequence[int]
) -> list[tuple[Group, str, str | None]]:
    """(group, effective state, stored state) for each group id that exists."""
    result = []
    for group_id in group_ids:
        group = session.get(Group, group_id)
        if group is None:
            continue
        row = session.get(GroupState, (profile_id, group_id))
        stored = row.state if row else None
        result.append((group, profiles.effective_state(group.policy, stored), stored))
    return result


def _why_not_subscribed(session: Session, profile_id: int, group: Group, stored: str | None) -> str:
    assert group.id is not None
    if stored is None and group.policy == POLICY_OPT_IN:
        return f"{group.name} is opt-in and they never subscribed"
    return f"left {group.name}{_last_change(session, profile_id, group.id)}"


def _twins(session: Session, profile: Profile) -> list[Profile]:
    """The other profiles with this profile's address, by id."""
    if not profile.email_key:
        return []
    return list(
        session.exec(
            select(Profile)
            .where(col(Profile.email_key) == profile.email_key, col(Profile.id) != profile.id)
            .order_by(col(Profile.id))
        ).all()
    )


def _twin_all_email(session: Session, twins: Sequence[Profile]) -> str | None:
    """Why the address is out of all email because of a twin, or None."""
    for twin in twins:
        if twin.all_email == UNSUBSCRIBED:
            assert twin.id is not None
            return (
                f"the address {twin.email_key} opted out of all email under profile "
                f"{twin.identity}{_last_change(session, twin.id, None)}"
            )
    return None


def _twin_left(session: Session, twins: Sequence[Profile], group_ids: Sequence[int]) -> list[str]:
    """Why the address is out of "do not send to" groups because of a twin."""
    reasons = []
    for twin in twins:
        assert twin.id is not None
        for group, effective, stored in _group_states(session, twin.id, group_ids):
            if effective == SUBSCRIBED:
                continue
            assert group.id is not None
            if stored is None and group.policy == POLICY_OPT_IN:
                what = f"never joined {group.name} (opt-in)"
            else:
                what = f"left {group.name}"
            reasons.append(
                f"the address {twin.email_key} {what} under profile {twin.identity}"
                f"{_last_change(session, twin.id, group.id)}"
            )
    return reasons


def _first_of_address(
    session: Session, campaign: CampaignLike, twins: Sequence[Profile], pid: int, audience: BitMap
) -> Profile | None:
    """The twin that gets the campaign instead of ``pid``: the one already sent it, or an
    eligible one of the audience with a lower id (the send claims by id), or None."""
    if not twins:
        return None
    by_id = {t.id: t for t in twins}
    if campaign.id is not None:
        claimed = session.execute(
            select(Delivery.profile_id).where(
                col(Delivery.campaign_id) == campaign.id,
                col(Delivery.profile_id).in_(list(by_id)),
            )
        ).scalars()
        for twin_id in claimed:
            return by_id[twin_id]
    earlier = [t.id for t in twins if t.id is not None and t.id < pid and t.id in audience]
    if not earlier:
        return None
    first = min(eligible_now(session, campaign, earlier), default=None)
    return by_id[first] if first is not None else None


def _deliverable_step(session: Session, profile: Profile, twins: Sequence[Profile]) -> ExplainStep:
    """Whether the address bounced for good, under this profile or one sharing it."""
    label = "Deliverable address"
    for person in (profile, *twins):
        assert person.id is not None
        row = bounces.bounce_of(session, person.id)
        if row is None or not row.undeliverable:
            continue
        since = row.undeliverable_since or row.last_bounce_at
        why = "it bounced" if row.soft_bounces < bounces.SOFT_BOUNCE_LIMIT else "soft bounces"
        under = "" if person.id == profile.id else f" under profile {person.identity}"
        return ExplainStep(
            UNDELIVERABLE,
            label,
            False,
            f"the address is undeliverable{under}: {why} on {since:%Y-%m-%d}",
        )
    return ExplainStep(UNDELIVERABLE, label, True, "no bounce has made it undeliverable")


def explain(store: Store, campaign: CampaignLike, identity: str) -> Explanation:
    """Each step of the chain for this person, and the verdict."""
    index = segments.index_for(store)
    with store.read() as session:
        profile = profiles.get_profile(session, identity)
        assert profile.id is not None
        pid = profile.id
        segments.refresh(store, index, session)
        with index.locked():
            in_audience = audience_bits(index, session, campaign)
        steps: list[ExplainStep] = []
        twins = _twins(session, profile)
        audience = audience_name(session, campaign)  # type: ignore[arg-type]
        if audience == ALL_PROFILES:
            steps.append(ExplainStep(AUDIENCE, "Audience", True, "the audience is all profiles"))
        elif pid in in_audience:
            steps.append(ExplainStep(AUDIENCE, "Audience", True, f"in segment {audience}"))
        else:
            steps.append(ExplainStep(AUDIENCE, "Audience", False, f"not in segment {audience}"))

        only = _group_states(session, pid, campaign.only_subscribed_to)
        missing = [(g, s) for g, eff, s in only if eff != SUBSCRIBED]
        if not campaign.only_subscribed_to:
            steps.append(
                ExplainStep(ONLY, "Only subscribed to all of", True, "no such groups chosen")
            )
        elif missing:
            detail = "; ".join(_why_not_subscribed(session, pid, g, s) for g, s in missing)
            steps.append(ExplainStep(ONLY, "Only subscribed to all of", False, detail))
        else:
            names = ", ".join(g.name for g, _e, _s in only)
            steps.append(
                ExplainStep(ONLY, "Only subscribed to all of", True, f"subscribed to {names}")
            )

        twin_out = _twin_all_email(session, twins)
        if profile.all_email == UNSUBSCRIBED:
            detail = "unsubscribed from all email" + _last_change(session, pid, None)
            steps.append(ExplainStep(ALL_EMAIL, "All email", False, detail))
        elif twin_out is not None:
            steps.append(ExplainStep(ALL_EMAIL, "All email", False, twin_out))
        else:
            steps.append(ExplainStep(ALL_EMAIL, "All email", True, "subscribed to email"))

        steps.append(_deliverable_step(session, profile, twins))

        blocked = _group_states(session, pid, campaign.do_not_send_to)
        left = [(g, s) for g, eff, s in blocked if eff != SUBSCRIBED]
        twins_left = _twin_left(session, twins, campaign.do_not_send_to)
        if not campaign.do_not_send_to:
            steps.append(ExplainStep(DO_NOT_SEND, "Do not send to", True, "no such groups chosen"))
        elif left:
            detail = "; ".join(
                _why_not_subscribed(session, pid, g, s)
                + (" (archived group, still enforced)" if g.status == STATUS_ARCHIVED else "")
                for g, s in left
            )
            steps.append(ExplainStep(DO_NOT_SEND, "Do not send to", False, detail))
        elif twins_left:
            steps.append(ExplainStep(DO_NOT_SEND, "Do not send to", False, "; ".join(twins_left)))
        else:
            names = ", ".join(g.name for g, _e, _s in blocked)
            steps.append(
                ExplainStep(DO_NOT_SEND, "Do not send to", True, f"still subscribed to {names}")
            )

        if profile.email:
            steps.append(ExplainStep(ADDRESS, "Email address", True, profile.email))
        else:
            steps.append(
                ExplainStep(ADDRESS, "Email address", False, "the profile has no email address")
            )
        if twins:
            first = _first_of_address(session, campaign, twins, pid, in_audience)
            if first is None:
                also = ", ".join(t.identity for t in twins)
                detail = f"gets it for the address {profile.email_key} (also under {also})"
                steps.append(ExplainStep(ONE_PER_ADDRESS, "One message per address", True, detail))
            else:
                detail = f"the address {profile.email_key} gets it under profile {first.identity}"
                steps.append(ExplainStep(ONE_PER_ADDRESS, "One message per address", False, detail))

        delivered_at = None
        if campaign.id is not None:
            delivery = session.exec(
                select(Delivery).where(
                    col(Delivery.campaign_id) == campaign.id, col(Delivery.profile_id) == pid
                )
            ).first()
            if delivery is not None and delivery.status == "sent":
                delivered_at = delivery.sent_at

    failed = next((step for step in steps if step.passed is False), None)
    if failed is None:
        reason = "gets it: " + "; ".join(s.detail for s in steps[:4])
    else:
        reason = f"left out at '{failed.label}': {failed.detail}"
    if delivered_at is not None:
        reason += f" (sent on {delivered_at:%Y-%m-%d %H:%M} UTC)"
    return Explanation(identity, failed is None, reason, tuple(steps), delivered_at)
