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
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlmodel import Session, col, select

from app.core import clock, ledger
from app.core.errors import InvalidInput, RuleRefused
from app.core.models import STATES, SUBSCRIBED, UNSUBSCRIBED, Event, Group, GroupState, Profile


def clean_status(status: str) -> str:
    if status not in STATES:
        raise InvalidInput(f"Status {status!r} is not one of: {', '.join(STATES)}", field="status")
    return status


def clean_reason(reason: str | None) -> str | None:
    cleaned = (reason or "").strip()
    if len(cleaned) > 500:
        raise InvalidInput(f"Reason is {len(cleaned)} characters long; the most is 500", field="reason")
    return cleaned or None


def change_properties(
    *,
    group: Group | None,
    old: str | None,
    new: str,
    source: str,
    actor: str,
    campaign_id: int | None,
    reason: str | None,
) -> dict[str, Any]:
    """The properties of a ``Channel Unsubscribed`` event (DESIGN.md §1)."""
    return {
        "Channel": "Email",
        "Group": group.name if group else None,
        "Group ID": group.id if group else None,
        "Subscription Type": "Group" if group else "Channel",
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
            session.add(GroupState(profile_id=locked.id, group_id=group.id, state=status, updated_at=ts))
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
            group=group, old=old, new=status, source=source, actor=actor,
            campaign_id=campaign_id, reason=reason,
        ),
    )


@dataclass(frozen=True)
class StateChange:
    """One planned change for the bulk path; ``old`` is the stored state it replaces."""

    profile_id: int
    identity: str
    group: Group | None
    old: str | None
    new: str
    reason: str | None = None
    ts: datetime | None = None


def apply_changes(
    *,
    session: Session,
    changes: Iterable[StateChange],
    source: str,
    actor: str,
    campaign_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Write many state changes with their events in the caller's transaction.

    For seeding and imports: Core bulk inserts, the same rows and events as
    ``set_state`` would write one by one. The caller plans the changes from
    the states it read inside this same write transaction, so ``old`` is true.
    """
    ts_default = now or clock.now()
    new_states: list[dict[str, Any]] = []
    changed_states: list[dict[str, Any]] = []
    channel: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for change in changes:
        if change.old == change.new:
            continue
        if change.new not in (SUBSCRIBED, UNSUBSCRIBED):
            raise RuleRefused(f"Unknown state {change.new!r}")
        ts = change.ts or ts_default
        group = change.group
        if group is None:
            channel.append({"b_id": change.profile_id, "b_state": change.new})
        elif change.old is None:
            new_states.append(
                {"profile_id": change.profile_id, "group_id": group.id, "state": change.new, "updated_at": ts}
            )
        else:
            changed_states.append(
                {"b_profile": change.profile_id, "b_group": group.id, "b_state": change.new, "b_ts": ts}
            )
        events.append(
            {
                "ts": ts,
                "name": ledger.CHANNEL_UNSUBSCRIBED,
                "identity": change.identity,
                "profile_id": change.profile_id,
                "group_id": group.id if group else None,
                "campaign_id": campaign_id,
                "source": source,
                "actor": actor,
                "properties": change_properties(
                    group=group, old=change.old, new=change.new, source=source, actor=actor,
                    campaign_id=campaign_id, reason=change.reason,
                ),
            }
        )
    if new_states:
        session.execute(insert(GroupState.__table__), new_states)  # type: ignore[attr-defined]
    if changed_states:
        gs = GroupState.__table__  # type: ignore[attr-defined]
        session.execute(
            update(gs)
            .where(gs.c.profile_id == bindparam("b_profile"), gs.c.group_id == bindparam("b_group"))
            .values(state=bindparam("b_state"), updated_at=bindparam("b_ts")),
            changed_states,
        )
    if channel:
        pt = Profile.__table__  # type: ignore[attr-defined]
        session.execute(
            update(pt).where(pt.c.id == bindparam("b_id")).values(all_email=bindparam("b_state")),
            channel,
        )
    if events:
        session.execute(insert(Event.__table__), events)  # type: ignore[attr-defined]
    return len(events)


def stored_states(session: Session, profile_ids: Sequence[int]) -> dict[tuple[int, int], str]:
    """Stored states of these profiles, keyed by (profile id, group id)."""
    result: dict[tuple[int, int], str] = {}
    ids = list(profile_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in session.exec(select(GroupState).where(col(GroupState.profile_id).in_(chunk))).all():
            result[(row.profile_id, row.group_id)] = row.state
    return result
