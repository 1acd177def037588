"""Who receives a campaign: the eligibility chain, its reach breakdown, and the explainer.

The chain (DESIGN.md §1, "Email campaigns"), in this order:
1. the audience: the campaign's saved segment, or all profiles;
2. only people effectively subscribed to all of the "only subscribed to"
   groups, if any;
3. minus people unsubscribed from all email;
4. minus people effectively unsubscribed from any "do not send to" group,
   archived groups included (their opt-outs stay enforced);
5. one message per address.

One address is one recipient (``Profile.email_key``: the address stripped and
lower-cased). Steps 3 and 4 act on addresses: an opt-out under any profile of
an address keeps every profile with that address out. Step 5 keeps, of the
profiles left that share an address, the one with the lowest id (the one a
send, going through the audience in id order, claims first); the reach shows
it only when it drops someone. Step 2 stays per profile.

``reach`` counts each step with the segment index (bitsets: fast at 1M
profiles). ``eligible_now`` is the sender's authoritative check of steps 2-4
for one batch, read straight from the store. ``explain`` says, for one
person, which step keeps or drops them and why.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session, col, select

from app.core import ledger, profiles, segments
from app.core.bitsets import iter_ids
from app.core.campaigns import ALL_PROFILES, audience_name, group_names
from app.core.errors import RuleRefused
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
    Segment,
)
from app.core.segment_index import SegmentIndex
from app.core.store import Store

AUDIENCE, ONLY, ALL_EMAIL, DO_NOT_SEND, ADDRESS, ONE_PER_ADDRESS = (
    "audience",
    "only_subscribed_to",
    "all_email",
    "do_not_send_to",
    "address",
    "one_per_address",
)
# SQLite allows 999 bound parameters in old builds: batches are read in chunks.
_CHUNK = 900


class CampaignLike(Protocol):
    """What the chain reads of a campaign (a saved one or the wizard's draft)."""

    id: int | None
    segment_id: int | None
    do_not_send_to: list[int]
    only_subscribed_to: list[int]


@dataclass(frozen=True)
class ReachStep:
    """One step of the chain: how many are left after it, and how many it dropped."""

    key: str
    label: str
    count: int
    dropped: int

    def to_json(self) -> dict[str, Any]:
        return {"step": self.key, "label": self.label, "count": self.count, "dropped": self.dropped}


@dataclass(frozen=True)
class Reach:
    """The reach breakdown: every step's count, and the reach (the last one)."""

    steps: tuple[ReachStep, ...]
    reach: int
    profiles: int

    def to_json(self) -> dict[str, Any]:
        return {
            "reach": self.reach,
            "profiles": self.profiles,
            "steps": [step.to_json() for step in self.steps],
        }


def _names(session: Session, ids: Iterable[int]) -> str:
    return ", ".join(group_names(session, ids))


def _audience_bits(index: SegmentIndex, session: Session, campaign: CampaignLike) -> int:
    if campaign.segment_id is None:
        return index.everyone
    segment = session.get(Segment, campaign.segment_id)
    if segment is None:
        raise RuleRefused(
            f"The campaign's audience segment (id {campaign.segment_id}) was deleted; "
            "choose another audience",
            field="segment",
        )
    return index.members(segments.segment_rule(segment), session)


def _chain(
    index: SegmentIndex, session: Session, campaign: CampaignLike
) -> list[tuple[str, str, int]]:
    """(key, label, bits after the step) for steps 1-5; the caller holds the index lock."""
    index.load_groups(session, [*campaign.only_subscribed_to, *campaign.do_not_send_to])
    bits = _audience_bits(index, session, campaign)
    audience = audience_name(session, campaign)  # type: ignore[arg-type]
    label = "All profiles" if audience == ALL_PROFILES else f"In segment {audience}"
    steps = [(AUDIENCE, label, bits)]
    if campaign.only_subscribed_to:
        for group_id in campaign.only_subscribed_to:
            bits &= index.subscribed(group_id)
        label = f"Subscribed to all of {_names(session, campaign.only_subscribed_to)}"
    else:
        label = "Only subscribed to all of: no groups chosen"
    steps.append((ONLY, label, bits))
    bits &= ~index.spread_to_twins(index.email_unsubscribed, session)
    steps.append((ALL_EMAIL, "Minus people unsubscribed from all email", bits))
    for group_id in campaign.do_not_send_to:
        left = index.everyone & ~index.subscribed(group_id)
        bits &= ~index.spread_to_twins(left, session)
    label = (
        f"Minus people who left {_names(session, campaign.do_not_send_to)}"
        if campaign.do_not_send_to
        else "Do not send to: no groups chosen"
    )
    steps.append((DO_NOT_SEND, label, bits))
    once = index.one_per_address(bits, session)
    if once != bits:
        steps.append((ONE_PER_ADDRESS, "One message per address (profiles sharing one)", once))
    return steps


def reach(store: Store, campaign: CampaignLike) -> Reach:
    """Each step's count, as the store stands now."""
    index = segments.index_for(store)
    with store.read() as session:
        index.refresh(session)
        with index.locked():
            chain = _chain(index, session, campaign)
            total = index.profile_count
    result: list[ReachStep] = []
    previous = total
    for key, label, bits in chain:
        count = bits.bit_count()
        result.append(ReachStep(key, label, count, previous - count))
        previous = count
    return Reach(tuple(result), previous, total)


def audience_ids(store: Store, campaign: CampaignLike) -> list[int]:
    """The audience's profile ids, ascending (step 1 only: the sender checks the rest per batch)."""
    index = segments.index_for(store)
    with store.read() as session:
        index.refresh(session)
        with index.locked():
            bits = _audience_bits(index, session, campaign)
    return list(iter_ids(bits))


def eligible_now(session: Session, campaign: CampaignLike, profile_ids: Sequence[int]) -> set[int]:
    """The ids of ``profile_ids`` that pass steps 2-4, read from the store in this session.

    Steps 3 and 4 look at every profile sharing an address with one of these
    (found through ``email_key``). Step 5 is the sender's: its claims are unique
    per address.
    """
    group_ids = sorted({*campaign.only_subscribed_to, *campaign.do_not_send_to})
    policies = (
        {
            g.id: g.policy
            for g in session.exec(select(Group).where(col(Group.id).in_(group_ids))).all()
        }
        if group_ids
        else {}
    )
    blocking = set(campaign.do_not_send_to)
    eligible: set[int] = set()
    for start in range(0, len(profile_ids), _CHUNK):
        chunk = list(profile_ids[start : start + _CHUNK])
        people: dict[int, tuple[str | None, str]] = {
            int(pid): (key, all_email)
            for pid, key, all_email in session.execute(
                select(Profile.id, Profile.email_key, Profile.all_email).where(
                    col(Profile.id).in_(chunk)
                )
            ).all()
        }
        keys = sorted({key for key, _ in people.values() if key})
        twins: dict[int, tuple[str | None, str]] = {}
        for keys_chunk in range(0, len(keys), _CHUNK):
            twins.update(
                (int(pid), (key, all_email))
                for pid, key, all_email in session.execute(
                    select(Profile.id, Profile.email_key, Profile.all_email).where(
                        col(Profile.email_key).in_(keys[keys_chunk : keys_chunk + _CHUNK])
                    )
                ).all()
                if pid not in people
            )
        everyone = {**people, **twins}
        stored: dict[tuple[int, int], str] = {}
        if group_ids:
            # By profile only (the primary key's lead column): a filter on the
            # group too lets SQLite pick the (group, state) index and scan
            # whole groups, 20x slower at 1M profiles. A profile has few states.
            wanted = set(group_ids)
            ids = sorted(everyone)
            for ids_start in range(0, len(ids), _CHUNK):
                rows = session.execute(
                    select(GroupState.profile_id, GroupState.group_id, GroupState.state).where(
                        col(GroupState.profile_id).in_(ids[ids_start : ids_start + _CHUNK])
                    )
                ).all()
                stored.update(((int(p), int(g)), st) for p, g, st in rows if g in wanted)

        def subscribed(
            profile_id: int, group_id: int, stored: dict[tuple[int, int], str] = stored
        ) -> bool:
            state = profiles.effective_state(
                policies.get(group_id, POLICY_OPT_IN), stored.get((profile_id, group_id))
            )
            return state == SUBSCRIBED

        # Addresses kept out by an opt-out under any of their profiles (steps 3 and 4).
        out = {
            key
            for pid, (key, all_email) in everyone.items()
            if key and (all_email == UNSUBSCRIBED or any(not subscribed(pid, g) for g in blocking))
        }
        for profile_id, (key, all_email) in people.items():
            if all_email == UNSUBSCRIBED or (key and key in out):
                continue
            if all(subscribed(profile_id, g) for g in group_ids):
                eligible.add(profile_id)
    return eligible


# --- the explainer ---------------------------------------------------------------------


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
    session: Session, campaign: CampaignLike, twins: Sequence[Profile], pid: int, audience: int
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
    earlier = [t.id for t in twins if t.id is not None and t.id < pid and (audience >> t.id) & 1]
    if not earlier:
        return None
    first = min(eligible_now(session, campaign, earlier), default=None)
    return by_id[first] if first is not None else None


def explain(store: Store, campaign: CampaignLike, identity: str) -> Explanation:
    """Each step of the chain for this person, and the verdict."""
    index = segments.index_for(store)
    with store.read() as session:
        profile = profiles.get_profile(session, identity)
        assert profile.id is not None
        pid = profile.id
        index.refresh(session)
        with index.locked():
            audience_bits = _audience_bits(index, session, campaign)
        steps: list[ExplainStep] = []
        twins = _twins(session, profile)
        audience = audience_name(session, campaign)  # type: ignore[arg-type]
        if audience == ALL_PROFILES:
            steps.append(ExplainStep(AUDIENCE, "Audience", True, "the audience is all profiles"))
        elif (audience_bits >> pid) & 1:
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
            first = _first_of_address(session, campaign, twins, pid, audience_bits)
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
