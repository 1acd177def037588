"""Segments ("Find People"): count, list, describe, save, rename, duplicate, delete.

Counting goes through the store's ``SegmentIndex`` (bitmaps kept in step with
the ledger); saving writes the rule as JSON with a ledger event.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyroaring import BitMap
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.core import actors, clock, ledger, snapshot_writer
from app.core.bitsets import page as rank_page
from app.core.errors import InvalidInput, RuleRefused, UnknownGroup
from app.core.groups import GroupCounts, clean_name, find_group, name_key
from app.core.groups import group_counts as counted_in_sql
from app.core.models import (
    POLICY_OPT_IN,
    STATUS_ACTIVE,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Campaign,
    Group,
    GroupState,
    Profile,
    Segment,
)
from app.core.profiles import effective_state
from app.core.saved_objects import SavedKind
from app.core.segment_index import SegmentCount, SegmentIndex
from app.core.segment_rules import (
    GroupsCondition,
    PropertyCondition,
    SegmentRule,
    describe,
    rule_from_json,
)
from app.core.store import Store
from app.core.text_rules import refuse_controls

SEGMENT_SAVED = "Segment Saved"
SEGMENT_RENAMED = "Segment Renamed"
SEGMENT_DELETED = "Segment Deleted"


class UnknownSegment(RuleRefused):
    """No segment has this name."""


# The lifecycle saved segments share with campaigns: names, lookups, events.
KIND = SavedKind(
    model=Segment,
    noun="segment",
    label="Segment",
    list_command="subgroups segments list",
    unknown=UnknownSegment,
    id_field=None,
)


def index_for(store: Store) -> SegmentIndex:
    """The store's segment index (one per open store, built on first use)."""
    index = store.cache.get("segment_index")
    if index is None:
        index = store.cache["segment_index"] = SegmentIndex()
    return index


def refresh(
    store: Store,
    index: SegmentIndex,
    session: Session,
    *,
    cancelled: Callable[[], bool] | None = None,
) -> None:
    """Bring the index up to the store, and start a snapshot writer if that is worth it."""
    index.refresh(session, cancelled=cancelled)
    snapshot_writer.refresh_in_background(store, index)


def count(
    store: Store, rule: SegmentRule, *, cancelled: Callable[[], bool] | None = None
) -> SegmentCount:
    """The rule's total and per-condition counts, as the store stands now.

    ``cancelled`` can stop the index's first build (see SegmentIndex.build).
    """
    index = index_for(store)
    with store.read() as session:
        refresh(store, index, session, cancelled=cancelled)
        return index.count(rule, session, cancelled=cancelled)


def group_counts(
    store: Store, *, cancelled: Callable[[], bool] | None = None
) -> tuple[dict[int, GroupCounts], int]:
    """Each group's effective counts, as ``groups.group_counts`` gives them, and the
    ledger id they include (later events are not in them).

    From the segment index (its snapshot, then the ledger after it) rather than a
    pass over every stored state: milliseconds rather than seconds at 1M. While the
    index lacks a group's states (no snapshot of them yet), the SQL count instead.
    """
    index = index_for(store)
    with store.read() as session, index.locked():
        refresh(store, index, session, cancelled=cancelled)
        # The index's own position: another thread may have moved it past this session.
        follower = index._follower
        if follower is not None and not index.missing_groups():
            everyone = index.everyone
            total = len(everyone)
            counts: dict[int, GroupCounts] = {}
            for group_id, info in index.groups.items():
                state = SUBSCRIBED if info.policy == POLICY_OPT_IN else UNSUBSCRIBED
                n = everyone.intersection_cardinality(index.stored.get((group_id, state), BitMap()))
                counts[group_id] = (
                    GroupCounts(n, total - n) if state == SUBSCRIBED else GroupCounts(total - n, n)
                )
            return counts, follower.last
    with store.read() as session:
        if not store.is_sqlite:
            # One snapshot for the ledger id and the counts (SQLite's read is one already).
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        as_of = ledger.latest_id(session)
        return counted_in_sql(session), as_of


def group_names(session: Session) -> dict[int, str]:
    return {g.id: g.name for g in session.exec(select(Group)).all() if g.id is not None}


def sentence(session: Session, rule: SegmentRule) -> str:
    """The rule as a plain sentence with today's group names."""
    names = group_names(session)
    return describe(rule, lambda gid: names.get(gid, f"group #{gid}"))


def property_keys(session: Session, *, sample: int = 2000) -> list[str]:
    """Property names in use (from a sample of profiles), fields first, for hints."""
    keys: dict[str, None] = {}
    for props in session.execute(sa_select(col(Profile.properties)).limit(sample)).scalars():
        for key in props or {}:
            keys.setdefault(str(key), None)
    return ["identity", "email", "name", *sorted(keys)]


def resolve_groups(session: Session, names: Sequence[str]) -> tuple[int, ...]:
    """Active groups by name, for a new condition; archived or unknown names are refused."""
    ids: list[int] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        group = find_group(session, name)
        if group.status != STATUS_ACTIVE:
            raise RuleRefused(
                f"Group {group.name!r} is archived; segments choose from active groups "
                "(unarchive it first, or leave it out)",
                field="group",
            )
        assert group.id is not None
        ids.append(group.id)
    if not ids:
        raise InvalidInput("Name at least one group (comma-separated)", field="group")
    return tuple(dict.fromkeys(ids))


def check_rule_groups(session: Session, rule: SegmentRule) -> None:
    """Refuse a rule naming a group that does not exist."""
    known = group_names(session)
    for condition in rule.conditions:
        if isinstance(condition, GroupsCondition) and condition.group_ids:
            for gid in condition.group_ids:
                if gid not in known:
                    raise UnknownGroup(f"The segment names group id {gid}, which does not exist")


def check_rule_text(rule: SegmentRule) -> None:
    """Refuse a property condition whose name or values hold a control character."""
    for number, condition in enumerate(rule.conditions, start=1):
        if isinstance(condition, PropertyCondition):
            for text in (condition.key, *condition.values):
                refuse_controls(text, what=f"Segment condition #{number}:", field="conditions")


@dataclass(frozen=True)
class Member:
    """A member row for the preview: the person and their effective states."""

    identity: str
    email: str | None
    name: str
    all_email: str
    # (group name, effective state) for each active group.
    states: tuple[tuple[str, str], ...]


def members(
    store: Store,
    rule: SegmentRule,
    *,
    offset: int = 0,
    limit: int = 50,
    cancelled: Callable[[], bool] | None = None,
) -> list[Member]:
    """A page of the rule's members, by profile id."""
    index = index_for(store)
    with store.read() as session:
        refresh(store, index, session, cancelled=cancelled)
        bits = index.members(rule, session, cancelled=cancelled)
        page = rank_page(bits, offset=offset, limit=limit)  # by rank, not by walking
        if not page:
            return []
        profiles = {
            p.id: p
            for p in session.execute(sa_select(Profile).where(col(Profile.id).in_(page))).scalars()
        }
        groups = [
            g
            for g in session.exec(select(Group).order_by(col(Group.name_key))).all()
            if g.status == STATUS_ACTIVE
        ]
        stored = {
            (row.profile_id, row.group_id): row.state
            for row in session.exec(
                select(GroupState).where(col(GroupState.profile_id).in_(page))
            ).all()
        }
    result = []
    for pid in page:
        p = profiles.get(pid)
        if p is None:
            continue
        result.append(
            Member(
                identity=p.identity,
                email=p.email,
                name=p.name,
                all_email=p.all_email,
                states=tuple(
                    (g.name, effective_state(g.policy, stored.get((pid, g.id or 0))))
                    for g in groups
                ),
            )
        )
    return result


def member_identities(store: Store, rule: SegmentRule) -> list[str]:
    """Every member's identity, by profile id (for export)."""
    index = index_for(store)
    with store.read() as session:
        refresh(store, index, session)
        ids = list(index.members(rule, session))
        identities: list[str] = []
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            rows = session.execute(
                sa_select(col(Profile.id), col(Profile.identity)).where(col(Profile.id).in_(chunk))
            ).all()
            by_id = dict(rows)
            identities.extend(by_id[i] for i in chunk if i in by_id)
    return identities


# --- saved segments -------------------------------------------------------------


def list_segments(session: Session) -> list[Segment]:
    return list(session.exec(select(Segment).order_by(col(Segment.name_key))).all())


def get_segment(session: Session, name: str) -> Segment:
    """The saved segment with this name (case-insensitive)."""
    return KIND.by_name(session, name)


def segment_rule(segment: Segment) -> SegmentRule:
    return rule_from_json(segment.definition)


def _event(
    session: Session,
    name: str,
    segment: Segment,
    actor: str,
    source: str,
    ts: datetime,
    **extra: Any,
) -> None:
    KIND.record(session, name, segment, actor=actor, source=source, ts=ts, **extra)


def save_segment(
    *,
    session: Session,
    name: str,
    rule: SegmentRule,
    actor: str,
    source: str = "console",
    segment_id: int | None = None,
    now: datetime | None = None,
) -> Segment:
    """Save a new segment, or replace the rule (and name) of an existing one."""
    actors.require(session, actors.EDITOR, "saving a segment")
    cleaned = clean_name(name)
    check_rule_groups(session, rule)
    check_rule_text(rule)
    key = name_key(cleaned)
    KIND.check_name_free(session, key, except_id=segment_id)
    ts = now or clock.now()
    if segment_id is None:
        segment = Segment(
            name=cleaned,
            name_key=key,
            definition=rule.to_json(),
            created_at=ts,
            updated_at=ts,
            created_by=actor,
            updated_by=actor,
        )
    else:
        segment = KIND.by_id(session, segment_id)
        segment.name, segment.name_key, segment.definition = cleaned, key, rule.to_json()
        segment.updated_at, segment.updated_by = ts, actor
    session.add(segment)
    session.flush()
    _event(
        session,
        SEGMENT_SAVED,
        segment,
        actor,
        source,
        ts,
        Rule=sentence(session, rule),
        Definition=rule.to_json(),
    )
    return segment


def rename_segment(
    *,
    session: Session,
    segment_id: int,
    name: str,
    actor: str,
    source: str = "console",
    now: datetime | None = None,
) -> Segment:
    actors.require(session, actors.EDITOR, "renaming a segment")
    segment = KIND.by_id(session, segment_id)
    cleaned = clean_name(name)
    key = name_key(cleaned)
    KIND.check_name_free(session, key, except_id=segment_id)
    old = segment.name
    ts = now or clock.now()
    segment.name, segment.name_key, segment.updated_at, segment.updated_by = cleaned, key, ts, actor
    session.add(segment)
    session.flush()
    _event(session, SEGMENT_RENAMED, segment, actor, source, ts, **{"Previous Name": old})
    return segment


def duplicate_segment(
    *,
    session: Session,
    segment_id: int,
    actor: str,
    source: str = "console",
    now: datetime | None = None,
) -> Segment:
    """A copy named "Copy of X" (or "Copy 2 of X" …)."""
    actors.require(session, actors.EDITOR, "copying a segment")
    original = KIND.by_id(session, segment_id)
    return save_segment(
        session=session,
        name=KIND.copy_name(session, original.name, longest=64),
        rule=segment_rule(original),
        actor=actor,
        source=source,
        now=now,
    )


def delete_segment(
    *,
    session: Session,
    segment_id: int,
    actor: str,
    source: str = "console",
    now: datetime | None = None,
) -> str:
    """Delete a saved segment (not one a campaign uses); returns its name."""
    actors.require(session, actors.EDITOR, "deleting a segment")
    segment = KIND.by_id(session, segment_id)
    used = session.exec(select(Campaign).where(col(Campaign.segment_id) == segment_id)).first()
    if used is not None:
        raise RuleRefused(
            f"Segment {segment.name!r} is the audience of campaign {used.name!r}; it stays"
        )
    ts = now or clock.now()
    _event(session, SEGMENT_DELETED, segment, actor, source, ts, Definition=segment.definition)
    name = segment.name
    session.delete(segment)
    session.flush()
    return name
