"""The consent ledger: one append-only log of subscription changes and admin actions.

Writing goes through ``record``, called by the services inside the same
transaction as the change it explains. Reading is by id, so a poller that
remembers the last id it saw gets every later event, from any process.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from app.core import clock
from app.core.models import Event

CHANNEL_UNSUBSCRIBED = "Channel Unsubscribed"
GROUP_CREATED = "Group Created"
GROUP_UPDATED = "Group Updated"
GROUP_ARCHIVED = "Group Archived"
GROUP_UNARCHIVED = "Group Unarchived"
SAMPLE_DATA_LOADED = "Sample Data Loaded"

SOURCES = ("landing_page", "one_click", "console", "cli", "import", "simulator")


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
    """Append one event; the caller's transaction commits it with its change."""
    if source not in SOURCES:
        raise ValueError(f"unknown event source {source!r}")
    event = Event(
        ts=now or clock.now(),
        name=name,
        identity=identity,
        profile_id=profile_id,
        group_id=group_id,
        campaign_id=campaign_id,
        source=source,
        actor=actor,
        properties=properties,
    )
    session.add(event)
    session.flush()
    return event


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
    value = session.exec(select(Event.id).order_by(col(Event.id).desc()).limit(1)).first()
    return int(value or 0)


def events_after(session: Session, *, after_id: int, limit: int = 500) -> list[EventRecord]:
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
    if profile_id is not None:
        query = query.where(col(Event.profile_id) == profile_id)
    rows = list(session.exec(query.order_by(col(Event.id).desc()).limit(limit if not group else limit * 20)).all())
    records = [to_record(row) for row in rows]
    if group:
        wanted = group.casefold()
        records = [r for r in records if (r.group_name or "").casefold() == wanted][:limit]
    return list(reversed(records))


def profile_events(session: Session, *, profile_id: int, limit: int = 200) -> list[EventRecord]:
    """A profile's ledger history, newest first."""
    rows = session.exec(
        select(Event)
        .where(col(Event.profile_id) == profile_id)
        .order_by(col(Event.id).desc())
        .limit(limit)
    ).all()
    return [to_record(row) for row in rows]
