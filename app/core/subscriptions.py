"""Subscription state changes: the only code that writes a state.

Every change of a stored state (a group, or the whole email channel) writes
one ``Channel Unsubscribed`` event in the same transaction (a resubscribe is
the same event with ``Resubscribed: true``). ``Old State`` and ``New State``
are stored states: ``null`` means never set, so the current state is always
the ``New State`` of the latest event.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, update
from sqlmodel import Session, col, select

from app.core import actors, bulk, clock, groups, ledger, ledger_wakeups, profiles
from app.core import ledger_chain as chain
from app.core.errors import InvalidInput, RuleRefused, UnknownProfile
from app.core.ledger import EventRecord
from app.core.models import STATES, SUBSCRIBED, UNSUBSCRIBED, Event, Group, GroupState, Profile
from app.core.text_rules import refuse_controls


def clean_status(status: str) -> str:
    if status not in STATES:
        raise InvalidInput(f"Status {status!r} is not one of: {', '.join(STATES)}", field="status")
    return status


def clean_reason(reason: str | None) -> str | None:
    cleaned = (reason or "").strip()
    if len(cleaned) > 500:
        raise InvalidInput(
            f"Reason is {len(cleaned)} characters long; the most is 500", field="reason"
        )
    refuse_controls(cleaned, what="Reason", field="reason")
    return cleaned or None


def change_properties(
    *,
    group_id: int | None,
    group_name: str | None,
    old: str | None,
    new: str,
    source: str,
    actor: str,
    campaign_id: int | None,
    reason: str | None,
) -> dict[str, Any]:
    """The properties of a ``Channel Unsubscribed`` event (DESIGN.md §1).

    ``group_id`` None: the change is of all email (the channel).
    """
    return {
        "Channel": "Email",
        "Group": group_name if group_id is not None else None,
        "Group ID": group_id,
        "Subscription Type": "Group" if group_id is not None else "Channel",
        "Resubscribed": new == SUBSCRIBED,
        "Old State": old,
        "New State": new,
        "Source": source,
        "Campaign ID": campaign_id,
        "Actor": actor,
        "Reason": reason,
    }


def set_state(
    *,
    session: Session,
    profile: Profile,
    group: Group | None,
    status: str,
    source: str,
    actor: str,
    reason: str | None = None,
    campaign_id: int | None = None,
    now: datetime | None = None,
) -> Event | None:
    """Set a profile's state for a group (or for all email when ``group`` is None).

    Returns the ledger event, or None when the stored state already is
    ``status`` (nothing changes, nothing is written). Archived groups can be
    changed too: their opt-outs stay enforced, so they must stay correctable.
    """
    actors.require_if_admin_source(session, source, actors.EDITOR, "changing a subscription")
    status = clean_status(status)
    reason = clean_reason(reason)
    assert profile.id is not None
    # Lock the profile row so two writers of one profile cannot both see the
    # same old state (PostgreSQL; SQLite's write lock already serialises).
    # populate_existing: a profile this session loaded before the lock keeps
    # its stale state in the identity map otherwise.
    locked = session.exec(
        select(Profile)
        .where(col(Profile.id) == profile.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    ts = now or clock.now()
    if group is None:
        old: str | None = locked.all_email
        if old == status:
            return None
        locked.all_email = status
        session.add(locked)
    else:
        assert group.id is not None
        row = session.get(GroupState, (locked.id, group.id), populate_existing=True)
        old = row.state if row else None
        if old == status:
            return None
        if row is None:
            session.add(
                GroupState(profile_id=profile.id, group_id=group.id, state=status, updated_at=ts)
            )
        else:
            row.state, row.updated_at = status, ts
            session.add(row)
    session.flush()
    return ledger.record(
        session,
        name=ledger.CHANNEL_UNSUBSCRIBED,
        source=source,
        actor=actor,
        identity=locked.identity,
        profile_id=locked.id,
        group_id=group.id if group else None,
        campaign_id=campaign_id,
        now=ts,
        properties=change_properties(
            group_id=group.id if group else None,
            group_name=group.name if group else None,
            old=old,
            new=status,
            source=source,
            actor=actor,
            campaign_id=campaign_id,
            reason=reason,
        ),
    )


@dataclass(frozen=True)
class StateSet:
    """What ``set_state_for`` did, as plain data (safe to hand between threads)."""

    profile_id: int
    identity: str
    # None: the change was of all email.
    group_id: int | None
    group_name: str | None
    status: str
    # The ``Channel Unsubscribed`` event written, or None when the state already was ``status``.
    event: EventRecord | None

    @property
    def changed(self) -> bool:
        return self.event is not None

    @property
    def target(self) -> str:
        """What changed, as messages name it: ``all email`` or ``group 'Name'``."""
        return "all email" if self.group_id is None else f"group {self.group_name!r}"


def _find_profile(session: Session, identity: str | None, profile_id: int | None) -> Profile:
    if (identity is None) == (profile_id is None):
        raise InvalidInput(
            "Give either an identity or a profile id (one of them)", field="identity"
        )
    if identity is not None:
        return profiles.get_profile(session, identity)
    found = session.get(Profile, profile_id)
    if found is None:
        raise UnknownProfile(f"No profile has id {profile_id}", field="identity")
    return found


def _find_group(
    session: Session, name: str | None, group_id: int | None, all_email: bool
) -> Group | None:
    if sum((name is not None, group_id is not None, all_email)) != 1:
        raise InvalidInput(
            "Give either a group or all email (one of: a group name, a group id, all email)",
            field="group",
        )
    if name is not None:
        return groups.find_group(session, name)
    if group_id is not None:
        try:
            return groups.get_group(session, group_id)
        except RuleRefused as exc:
            exc.field = "group"
            raise
    return None


def set_state_for(
    *,
    session: Session,
    status: str,
    source: str,
    actor: str,
    identity: str | None = None,
    profile_id: int | None = None,
    group: str | None = None,
    group_id: int | None = None,
    all_email: bool = False,
    reason: str | None = None,
    campaign_id: int | None = None,
    now: datetime | None = None,
) -> StateSet:
    """Set one person's state for one group, or for all email: the whole transaction.

    The person is named by ``identity`` or ``profile_id`` (one of them); the
    target by a group name (``group``, case-insensitive, archived groups
    included), a ``group_id``, or ``all_email=True`` (one of them). The rules
    are ``set_state``'s, and its ``Channel Unsubscribed`` event is written in
    the caller's write session. Refused, with nothing written: a person or
    group not found (``UnknownProfile``, ``UnknownGroup``), an unknown status,
    a bad reason, or not exactly one of each (``InvalidInput``).
    """
    status = clean_status(status)
    reason = clean_reason(reason)
    profile = _find_profile(session, identity, profile_id)
    target = _find_group(session, group, group_id, all_email)
    assert profile.id is not None
    event = set_state(
        session=session,
        profile=profile,
        group=target,
        status=status,
        source=source,
        actor=actor,
        reason=reason,
        campaign_id=campaign_id,
        now=now,
    )
    return StateSet(
        profile_id=profile.id,
        identity=profile.identity,
        group_id=target.id if target else None,
        group_name=target.name if target else None,
        status=status,
        event=ledger.to_record(event) if event is not None else None,
    )


class StateChange(NamedTuple):
    """One planned change for the bulk path; ``old`` is the stored state it replaces.

    A named tuple, so ``apply_changes`` reads it and a plain tuple of the same
    fields in the same order (``StateChangeTuple``) alike.
    """

    profile_id: int
    identity: str
    # The group's id and its name (for the event); both None for a change of all email.
    group_id: int | None
    group_name: str | None
    old: str | None
    new: str
    reason: str | None = None
    ts: datetime | None = None


# A StateChange's fields as a plain tuple, in its order: what a bulk path makes by the
# hundred thousand (a third of the cost of a named tuple).
StateChangeTuple = tuple[
    int, str, int | None, str | None, str | None, str, str | None, datetime | None
]

_STATE_KEYS = ("profile_id", "group_id", "state", "updated_at")
_STATE_UPDATE = (
    update(bulk.GROUP_STATE)
    .where(
        bulk.GROUP_STATE.c.profile_id == bindparam("b_profile"),
        bulk.GROUP_STATE.c.group_id == bindparam("b_group"),
    )
    .values(state=bindparam("b_state"), updated_at=bindparam("b_ts"))
)
_STATE_UPDATE_KEYS = ("b_state", "b_ts", "b_profile", "b_group")
_CHANNEL_UPDATE = (
    update(bulk.PROFILE)
    .where(bulk.PROFILE.c.id == bindparam("b_id"))
    .values(all_email=bindparam("b_state"))
)
_CHANNEL_UPDATE_KEYS = ("b_state", "b_id")
_WRITABLE = frozenset((SUBSCRIBED, UNSUBSCRIBED))


@bulk.paused_gc()
def apply_changes(
    *,
    session: Session,
    changes: Iterable[StateChange | StateChangeTuple],
    source: str,
    actor: str,
    campaign_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Write many state changes with their events in the caller's transaction.

    The bulk path (seeding, imports): the same rows and events as
    ``set_state`` would write one by one, written through ``bulk.BulkWriter``;
    a change to the state it replaces is skipped. The caller plans the
    changes from the states it read inside this same write transaction, so
    ``old`` is true. Each change is a ``StateChange`` or a plain tuple of its
    fields. Events are written in the order given, timed ``ts`` (or ``now``);
    returns how many.
    """
    actors.require_if_admin_source(session, source, actors.EDITOR, "changing subscriptions")
    ts_default = now or clock.now()
    writer = bulk.BulkWriter(session)
    to_ts = writer.processor(bulk.EVENT, "ts")  # the same type as group_state.updated_at
    to_json = writer.processor(bulk.EVENT, "properties")
    stamp_default = to_ts(ts_default)
    name = ledger.CHANNEL_UNSUBSCRIBED
    # The content hash's forms of what every event of this call shares.
    shared = (chain.text_form(name), chain.text_form(source), chain.text_form(actor))
    ts_forms = chain.FormCache(chain.ts_form)
    # (group id, group name, old, new, reason) -> whether all email, serialised
    # properties, their form in the content hash: a few dozen distinct values
    # for a million events.
    seen: dict[
        tuple[int | None, str | None, str | None, str, str | None],
        tuple[bool, Any, chain.ContentParts],
    ] = {}
    # A person's changes come together: their identity's digest is made once for them.
    last_identity: str | None = None
    identity_text = chain.identity_form(None)
    ts_text_default = chain.ts_form(ts_default)
    contents: list[bytes] = []
    add_content = contents.append
    new_states: list[tuple[Any, ...]] = []
    changed_states: list[tuple[Any, ...]] = []
    channel: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    add_event = events.append
    for profile_id, identity, group_id, group_name, old, new, reason, ts in changes:
        if old == new:
            continue
        key = (group_id, group_name, old, new, reason)
        found = seen.get(key)
        if found is None:
            if new not in _WRITABLE:
                raise RuleRefused(f"Unknown state {new!r}")
            properties = change_properties(
                group_id=group_id, group_name=group_name, old=old, new=new, source=source,
                actor=actor, campaign_id=campaign_id, reason=reason,
            )  # fmt: skip
            parts = chain.ContentParts(
                name=shared[0], group_id=group_id, campaign_id=campaign_id, source=shared[1],
                actor=shared[2], properties=chain.properties_form(properties),
            )  # fmt: skip
            found = seen[key] = (group_id is None, to_json(properties), parts)
        all_email, serialised, parts = found
        stamp = stamp_default if ts is None else to_ts(ts)
        if all_email:
            channel.append((new, profile_id))
        elif old is None:
            new_states.append((profile_id, group_id, new, stamp))
        else:
            changed_states.append((new, stamp, profile_id, group_id))
        add_event(
            (stamp, name, identity, profile_id, group_id, campaign_id, source, actor, serialised)
        )
        if identity != last_identity or last_identity is None:
            identity_text, last_identity = chain.identity_form(identity), identity
        add_content(
            parts.digest(identity_text, profile_id, ts_text_default if ts is None else ts_forms(ts))
        )
    writer.insert(bulk.GROUP_STATE, _STATE_KEYS, new_states)
    writer.run(_STATE_UPDATE, _STATE_UPDATE_KEYS, changed_states)
    writer.run(_CHANNEL_UPDATE, _CHANNEL_UPDATE_KEYS, channel)
    if events:
        # Linked to the chain's tail, held (PostgreSQL) until this transaction ends.
        links = chain.chain(chain.session_tail(session), contents)
        writer.insert(
            bulk.EVENT,
            ledger.EVENT_KEYS,
            [(*e, c, h) for e, c, h in zip(events, contents, links, strict=True)],
        )
        chain.move_head(session.connection(), links[-1])
    if events:
        ledger_wakeups.notify_followers(session)
    return len(events)


def stored_states(session: Session, profile_ids: Sequence[int]) -> dict[tuple[int, int], str]:
    """Stored states of these profiles, keyed by (profile id, group id)."""
    result: dict[tuple[int, int], str] = {}
    ids = list(profile_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in session.exec(
            select(GroupState).where(col(GroupState.profile_id).in_(chunk))
        ).all():
            result[(row.profile_id, row.group_id)] = row.state
    return result
