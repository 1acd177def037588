"""The consent ledger: one append-only log of subscription changes and admin actions.

Writing goes through ``record``, called by the services inside the same
transaction as the change it explains. Reading is by id, so a poller that
remembers the last id it saw gets every later event, from any process.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from app.core import bulk, clock, ledger_chain
from app.core.event_names import (  # noqa: F401  (the ledger's names, as before)
    ADMIN_ADDED,
    ADMIN_REMOVED,
    ADMIN_ROLE_CHANGED,
    ADMIN_SESSION_ENDED,
    ADMIN_SESSION_STARTED,
    CHANNEL_UNSUBSCRIBED,
    GROUP_ARCHIVED,
    GROUP_CREATED,
    GROUP_UNARCHIVED,
    GROUP_UPDATED,
    LANDING_PAGE_UPDATED,
    PROFILES_IMPORTED,
    SAMPLE_DATA_LOADED,
    SETTINGS_CHANGED,
    SOURCES,
    UNSUBSCRIBE_REASON,
)
from app.core.ledger_wakeups import notify_followers
from app.core.models import OTHER_NAMES, Event

# How many events recent_events reads per page when filtering by group.
GROUP_SCAN_PAGE = 2000


def record(
    session: Session,
    *,
    name: str,
    source: str,
    actor: str,
    properties: dict[str, Any],
    identity: str | None = None,
    profile_id: int | None = None,
    group_id: int | None = None,
    campaign_id: int | None = None,
    now: datetime | None = None,
) -> Event:
    """Append one event; the caller's transaction commits it with its change.

    Every event carries ``Actor`` among its properties (DESIGN.md, "Admins,
    roles and Actor"): the person who acted, as the ``actor`` column holds it;
    and its place in the hash chain (``ledger_chain``).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown event source {source!r}")
    if "Actor" not in properties:
        properties = {**properties, "Actor": actor}
    ts = now or clock.now()
    content = ledger_chain.event_content_hash(
        ts=ts,
        name=name,
        identity=identity,
        profile_id=profile_id,
        group_id=group_id,
        campaign_id=campaign_id,
        source=source,
        actor=actor,
        properties=properties,
    )
    # Linked to the chain's head, locked until this transaction ends.
    link = ledger_chain.link(ledger_chain.session_tail(session), content)
    event = Event(
        ts=ts,
        name=name,
        identity=identity,
        profile_id=profile_id,
        group_id=group_id,
        campaign_id=campaign_id,
        source=source,
        actor=actor,
        properties=properties,
        content_hash=content,
        chain_hash=link,
    )
    session.add(event)
    session.flush()
    ledger_chain.move_head(session.connection(), link)
    notify_followers(session)
    return event


@dataclass(frozen=True)
class NewEvent:
    """One event for ``append_many``: what ``record`` takes, as a value."""

    name: str
    source: str
    actor: str
    properties: dict[str, Any]
    identity: str | None = None
    profile_id: int | None = None
    group_id: int | None = None
    campaign_id: int | None = None


# The ledger row's columns as the bulk writers give them.
EVENT_KEYS = (
    "ts", "name", "identity", "profile_id", "group_id", "campaign_id", "source", "actor",
    "properties", "content_hash", "chain_hash",
)  # fmt: skip


def append_many(
    session: Session, events: Sequence[NewEvent], *, now: datetime | None = None
) -> list["EventRecord"]:
    """Append events in this order with one many-row write (a listener's batch): the
    same rows, ``Actor`` and chain links as ``record`` one at a time, without the ORM.
    Returns them as written, with their ids."""
    if not events:
        return []
    for event in events:
        if event.source not in SOURCES:
            raise ValueError(f"unknown event source {event.source!r}")
    ts = now or clock.now()
    writer = bulk.BulkWriter(session)
    to_ts = writer.processor(bulk.EVENT, "ts")
    to_json = writer.processor(bulk.EVENT, "properties")
    properties = [
        e.properties if "Actor" in e.properties else {**e.properties, "Actor": e.actor}
        for e in events
    ]
    contents = [
        ledger_chain.event_content_hash(
            ts=ts, name=e.name, identity=e.identity, profile_id=e.profile_id,
            group_id=e.group_id, campaign_id=e.campaign_id, source=e.source, actor=e.actor,
            properties=p,
        )
        for e, p in zip(events, properties, strict=True)
    ]  # fmt: skip
    # Linked to the chain's tail, held until this transaction ends: no other writer
    # appends meanwhile, so the ids after ``before`` are these events', in order.
    links = ledger_chain.chain(ledger_chain.session_tail(session), contents)
    before = latest_id(session)
    stamp = to_ts(ts)
    writer.insert(
        bulk.EVENT,
        EVENT_KEYS,
        [
            (stamp, e.name, e.identity, e.profile_id, e.group_id, e.campaign_id, e.source,
             e.actor, to_json(p), content, link)
            for e, p, content, link in zip(events, properties, contents, links, strict=True)
        ],
    )  # fmt: skip
    ledger_chain.move_head(session.connection(), links[-1])
    notify_followers(session)
    ids = [
        int(i)
        for i in session.connection()
        .execute(
            text("SELECT id FROM ledger_event WHERE id > :before ORDER BY id"),
            {"before": before},
        )
        .scalars()
    ]
    if len(ids) != len(events):  # the chain's lock keeps other writers out: never expected
        raise RuntimeError(f"wrote {len(events)} events but found {len(ids)} after id {before}")
    return [
        EventRecord(
            id=i, ts=ts, name=e.name, identity=e.identity, group_id=e.group_id,
            source=e.source, actor=e.actor, properties=p,
        )
        for i, e, p in zip(ids, events, properties, strict=True)
    ]  # fmt: skip


@dataclass(frozen=True)
class EventRecord:
    """An event as plain data, safe to hand from a worker thread to the UI."""

    id: int
    ts: datetime
    name: str
    identity: str | None
    group_id: int | None
    source: str
    actor: str
    properties: dict[str, Any]

    @property
    def group_name(self) -> str | None:
        """The group's name at the time of the event, if the event concerns one."""
        value = self.properties.get("Group")
        return value if isinstance(value, str) else None

    def to_json(self) -> dict[str, Any]:
        """The event's JSON shape (DESIGN.md §2): id, ts, name, identity, properties."""
        return {
            "id": self.id,
            "ts": self.ts.isoformat(),
            "name": self.name,
            "identity": self.identity,
            "properties": self.properties,
        }


def to_record(event: Event) -> EventRecord:
    assert event.id is not None
    return EventRecord(
        id=event.id,
        ts=event.ts,
        name=event.name,
        identity=event.identity,
        group_id=event.group_id,
        source=event.source,
        actor=event.actor,
        properties=dict(event.properties or {}),
    )


def latest_id(session: Session) -> int:
    """The id of the newest event (0 for an empty ledger)."""
    # max(): read from the end of the primary key (a plan that says so, too).
    value = session.exec(select(func.max(Event.id))).first()
    return int(value or 0)


# How many events one poll reads at most.
PAGE = 500


def events_after(session: Session, *, after_id: int, limit: int = PAGE) -> list[EventRecord]:
    """Events with an id above ``after_id``, oldest first."""
    rows = session.exec(
        select(Event).where(col(Event.id) > after_id).order_by(col(Event.id)).limit(limit)
    ).all()
    return [to_record(row) for row in rows]


def recent_events(
    session: Session,
    *,
    limit: int = 100,
    name: str | None = None,
    group: str | None = None,
    profile_id: int | None = None,
) -> list[EventRecord]:
    """The newest events (returned oldest first), optionally filtered."""
    query = select(Event)
    if name:
        query = query.where(col(Event.name) == name)
        if name != CHANNEL_UNSUBSCRIBED:  # the name index's condition, so it may be used
            query = query.where(text(OTHER_NAMES))
    if profile_id is not None:
        query = query.where(col(Event.profile_id) == profile_id)
    if not group:
        rows = session.exec(query.order_by(col(Event.id).desc()).limit(limit)).all()
        return [to_record(row) for row in reversed(rows)]
    # The group is matched on the name the event recorded (the name at the
    # time), which lives in the JSON properties: page back through the ledger
    # until enough events match, so busy other groups cannot hide this one's.
    wanted = group.casefold()
    found: list[EventRecord] = []
    before: int | None = None
    while len(found) < limit:
        page = query if before is None else query.where(col(Event.id) < before)
        rows = session.exec(page.order_by(col(Event.id).desc()).limit(GROUP_SCAN_PAGE)).all()
        if not rows:
            break
        for row in rows:
            record = to_record(row)
            if (record.group_name or "").casefold() == wanted:
                found.append(record)
                if len(found) == limit:
                    break
        before = rows[-1].id
    return list(reversed(found))


def profile_events(session: Session, *, profile_id: int, limit: int = 200) -> list[EventRecord]:
    """A profile's ledger history, newest first."""
    rows = session.exec(
        select(Event)
        .where(col(Event.profile_id) == profile_id)
        .order_by(col(Event.id).desc())
        .limit(limit)
    ).all()
    return [to_record(row) for row in rows]


# The words for an admin event in a summary, from its properties.
_ADMIN_WORDS = {
    ADMIN_ADDED: "added as {role}",
    ADMIN_REMOVED: "removed (was {role})",
    ADMIN_ROLE_CHANGED: "now {role} (was {previous})",
    ADMIN_SESSION_STARTED: "signed in as {role} from {client}",
    ADMIN_SESSION_ENDED: "signed out after {seconds} s (from {client})",
}


def summary(event: EventRecord) -> str:
    """A one-line plain-text account of an event (CLI and the console's log pane)."""
    props = event.properties
    if event.name == CHANNEL_UNSUBSCRIBED:
        what = f"group {props.get('Group')!r}" if props.get("Group") else "all email"
        old = props.get("Old State") or "never set"
        text = f"{event.identity}: {what} {old} → {props.get('New State')}"
        if props.get("Campaign ID"):
            text += f" (campaign {props['Campaign ID']})"
        if isinstance(props.get("Reason"), dict):  # erased (``erasure``)
            text += " — (reason erased)"
        elif props.get("Reason"):
            text += f" — {props['Reason']}"
        return text + f" [{event.source}]"
    if event.name == UNSUBSCRIBE_REASON:
        text = f"{event.identity}: left because {props.get('Reason')}"
        if props.get("Details"):
            text += f" — {props['Details']}"
        return text + f" (event {props.get('Change Event ID')}) [{event.source}]"
    if event.name == GROUP_UPDATED:
        changes = props.get("Changes") or {}
        parts = ", ".join(f"{k.lower()} {v[0]!r} → {v[1]!r}" for k, v in changes.items())
        if props.get("Affected"):  # a policy change: how many people's state it flipped
            parts += f" ({props['Affected']:,} people's state changed)"
        return f"group {props.get('Previous Name')!r}: {parts} by {event.actor} [{event.source}]"
    if event.name == LANDING_PAGE_UPDATED:
        changes = props.get("Changes") or {}
        parts = ", ".join(f"{k.lower()} {v[0]!r} → {v[1]!r}" for k, v in changes.items())
        return f"landing page: {parts} by {event.actor} [{event.source}]"
    if event.name == SETTINGS_CHANGED:
        changes = props.get("Changes") or {}
        parts = ", ".join(f"{k.lower()} {v[0]!r} → {v[1]!r}" for k, v in changes.items())
        return f"settings: {parts} by {event.actor} [{event.source}]"
    if props.get("Group"):
        return f"group {props['Group']!r} by {event.actor} [{event.source}]"
    if event.name in _ADMIN_WORDS:
        what = _ADMIN_WORDS[event.name].format(
            role=props.get("Role"),
            previous=props.get("Previous Role"),
            client=props.get("Client"),
            seconds=props.get("Seconds"),
        )
        return f"admin {props.get('Admin')!r} {what} by {event.actor} [{event.source}]"
    # Actor is said once, after "by".
    detail = ", ".join(f"{k}: {v}" for k, v in props.items() if k != "Actor")
    return f"{detail} by {event.actor} [{event.source}]"


class LedgerFollower:
    """Follows the ledger: each poll returns the events committed since the last, once each.

    Ids are handed out when a row is inserted, not when it commits: on
    PostgreSQL a transaction holding id 10 can commit after one holding id 11.
    A follower that only asked for ``id > last`` would then never see 10. So
    an id skipped over is remembered for ``gap_seconds`` and asked for again
    on each poll (a rolled-back insert leaves a gap that never fills).
    """

    def __init__(self, *, after_id: int, gap_seconds: float = 30.0) -> None:
        self.last = after_id
        self.gap_seconds = gap_seconds
        self._gaps: dict[int, float] = {}

    @property
    def settled(self) -> int:
        """The highest id below which every event has been seen (or given up on):
        ``last``, unless an id below it is still awaited."""
        return min(self._gaps, default=self.last + 1) - 1

    def skip_to(self, event_id: int) -> int:
        """Jump ahead (past a bulk write); returns how many ids were skipped."""
        skipped = max(0, event_id - self.last)
        self.last = max(self.last, event_id)
        self._gaps = {i: t for i, t in self._gaps.items() if i > self.last}
        return skipped

    def poll(self, session: Session, *, now: float | None = None) -> list[EventRecord]:
        """The newly visible events, in id order."""
        moment = time.monotonic() if now is None else now
        found: list[EventRecord] = []
        if self._gaps:
            rows = session.exec(select(Event).where(col(Event.id).in_(list(self._gaps)))).all()
            for row in rows:
                self._gaps.pop(row.id or 0, None)
                found.append(to_record(row))
            self._gaps = {i: t for i, t in self._gaps.items() if t > moment}
        fresh = events_after(session, after_id=self.last)
        expected = self.last + 1
        for event in fresh:
            for missing in range(expected, event.id):
                self._gaps[missing] = moment + self.gap_seconds
            expected = event.id + 1
        if fresh:
            self.last = fresh[-1].id
        found.extend(fresh)
        return sorted(found, key=lambda e: e.id)
