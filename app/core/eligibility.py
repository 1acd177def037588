"""Who receives a campaign: the eligibility chain, its reach breakdown, and the explainer.

The chain (DESIGN.md §1, "Email campaigns"), in this order:
1. the audience: the campaign's saved segment, or all profiles;
2. only people effectively subscribed to all of the "only subscribed to"
   groups, if any;
3. minus people unsubscribed from all email;
3b. minus undeliverable addresses (a hard bounce, or soft bounces in a row:
   ``app.core.bounces``);
4. minus people effectively unsubscribed from any "do not send to" group,
   archived groups included (their opt-outs stay enforced);
5. one message per address.

One address is one recipient (``Profile.email_key``: the address stripped and
lower-cased). Steps 3, 3b and 4 act on addresses: an opt-out under any profile of
an address keeps every profile with that address out. Step 5 keeps, of the
profiles left that share an address, the one with the lowest id (the one a
send, going through the audience in id order, claims first); the reach shows
it only when it drops someone. Step 2 stays per profile.

``reach`` counts each step with the segment index (roaring bitmaps: fast at 1M
profiles). ``eligible_now`` is the sender's authoritative check of steps 2-4
for one batch, read straight from the store. ``app.core.explainer`` says, for
one person, which step keeps or drops them and why.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pyroaring import BitMap
from sqlmodel import Session, col, select

from app.core import bounces, profiles, segments
from app.core.campaigns import ALL_PROFILES, audience_name, group_names
from app.core.errors import RuleRefused
from app.core.models import (
    POLICY_OPT_IN,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Group,
    GroupState,
    Profile,
    Segment,
)
from app.core.segment_index import SegmentIndex
from app.core.store import Store

AUDIENCE, ONLY, ALL_EMAIL, UNDELIVERABLE, DO_NOT_SEND, ADDRESS, ONE_PER_ADDRESS = (
    "audience",
    "only_subscribed_to",
    "all_email",
    "undeliverable",
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


def audience_bits(index: SegmentIndex, session: Session, campaign: CampaignLike) -> BitMap:
    """Step 1's profiles, as a bitmap of the caller's own."""
    if campaign.segment_id is None:
        return index.all_profiles()
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
) -> list[tuple[str, str, BitMap]]:
    """(key, label, bits after the step) for each step; the caller holds the index lock."""
    index.load_groups(session, [*campaign.only_subscribed_to, *campaign.do_not_send_to])
    bits = audience_bits(index, session, campaign)
    audience = audience_name(session, campaign)  # type: ignore[arg-type]
    label = "All profiles" if audience == ALL_PROFILES else f"In segment {audience}"
    steps = [(AUDIENCE, label, bits)]
    if campaign.only_subscribed_to:
        for group_id in campaign.only_subscribed_to:
            bits = bits & index.subscribed(group_id)
        label = f"Subscribed to all of {_names(session, campaign.only_subscribed_to)}"
    else:
        label = "Only subscribed to all of: no groups chosen"
    steps.append((ONLY, label, bits))
    twins = index.address_twins(session)  # an opt-out under one profile keeps its twins out
    bits = bits - twins.spread(index.email_unsubscribed)
    steps.append((ALL_EMAIL, "Minus people unsubscribed from all email", bits))
    bits = bits - twins.spread(index.undeliverable)
    steps.append((UNDELIVERABLE, "Minus undeliverable addresses", bits))
    for group_id in campaign.do_not_send_to:
        left = index.everyone - index.subscribed(group_id)
        bits = bits - twins.spread(left)
    label = (
        f"Minus people who left {_names(session, campaign.do_not_send_to)}"
        if campaign.do_not_send_to
        else "Do not send to: no groups chosen"
    )
    steps.append((DO_NOT_SEND, label, bits))
    once = twins.one_per_address(bits)
    if once != bits:
        steps.append((ONE_PER_ADDRESS, "One message per address (profiles sharing one)", once))
    return steps


def reach(store: Store, campaign: CampaignLike) -> Reach:
    """Each step's count, as the store stands now."""
    index = segments.index_for(store)
    with store.read() as session:
        segments.refresh(store, index, session)
        with index.locked():
            chain = _chain(index, session, campaign)
            total = index.profile_count
    result: list[ReachStep] = []
    previous = total
    for key, label, bits in chain:
        count = len(bits)
        result.append(ReachStep(key, label, count, previous - count))
        previous = count
    return Reach(tuple(result), previous, total)


def audience_ids(store: Store, campaign: CampaignLike) -> list[int]:
    """The audience's profile ids, ascending (step 1 only: the sender checks the rest per batch)."""
    index = segments.index_for(store)
    with store.read() as session:
        segments.refresh(store, index, session)
        with index.locked():
            bits = audience_bits(index, session, campaign)
    return list(bits)


def eligible_now(session: Session, campaign: CampaignLike, profile_ids: Sequence[int]) -> set[int]:
    """The ids of ``profile_ids`` that pass steps 2-4, read from the store in this session.

    Steps 3, 3b and 4 look at every profile sharing an address with one of these
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
        bounced = bounces.undeliverable_among(session, sorted(everyone))
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

        # Addresses kept out by an opt-out or a bounce under any of their profiles
        # (steps 3, 3b and 4).
        out = {
            key
            for pid, (key, all_email) in everyone.items()
            if key
            and (
                all_email == UNSUBSCRIBED
                or pid in bounced
                or any(not subscribed(pid, g) for g in blocking)
            )
        }
        for profile_id, (key, all_email) in people.items():
            if all_email == UNSUBSCRIBED or profile_id in bounced or (key and key in out):
                continue
            if all(subscribed(profile_id, g) for g in group_ids):
                eligible.add(profile_id)
    return eligible
