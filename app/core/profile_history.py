"""A person's states as of a moment, and the events that set them (issue 12, ask 4).

Read from the ledger alone, by person (its ``(profile_id, id)`` index): a
profile starts subscribed to email with no group state set (as every writer
creates it), and each ``Channel Unsubscribed`` event up to the moment sets
one state to its ``New State``. The answer is the same whatever happened
after the moment. Effective states apply each group's policy of today.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, or_, select

from app.core import ledger, profiles
from app.core.errors import InvalidInput
from app.core.event_names import CHANNEL_UNSUBSCRIBED
from app.core.ledger import EventRecord
from app.core.models import SUBSCRIBED, Event, Group

AS_OF_FORM = (
    "an ISO time such as 2026-12-05T13:00:00 or 2026-12-05 "
    "(local time, unless it ends in Z or +HH:MM)"
)


def parse_as_of(value: str) -> datetime:
    """A moment from the command line: ISO 8601, local time unless it names its offset.

    A date alone means the end of that day. ``InvalidInput`` (exit 2) names the value
    and the expected form.
    """
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--as-of {value!r} is not a time: give {AS_OF_FORM}", field="as_of"
        ) from None
    if len(text) == 10:  # a date: the whole of that day
        moment = moment.replace(hour=23, minute=59, second=59, microsecond=999999)
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class StateAsOf:
    """One state as of the moment: stored (None: never set), effective, the event that set it."""

    group_id: int | None
    group_name: str | None
    stored: str | None
    effective: str
    event: EventRecord | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.group_id,
            "name": self.group_name,
            "stored": self.stored,
            "effective": self.effective,
            "event_id": self.event.id if self.event else None,
        }


@dataclass(frozen=True)
class ProfileHistory:
    """A person as of a moment: whether the profile existed, its states, and the events so far."""

    identity: str
    as_of: datetime
    existed: bool
    all_email: StateAsOf
    groups: list[StateAsOf]
    events: list[EventRecord]

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "as_of": self.as_of.isoformat(),
            "existed": self.existed,
            "all_email": self.all_email.stored,
            "all_email_event_id": self.all_email.event.id if self.all_email.event else None,
            "groups": [g.to_json() for g in self.groups],
            "events": [e.to_json() for e in self.events],
        }


def profile_history(
    session: Session,
    identity: str,
    *,
    as_of: datetime | None = None,
    until_event: int | None = None,
) -> ProfileHistory:
    """The person's states as of ``as_of`` (default: now), or just after their event
    ``until_event`` (the console steps through them), and the events up to then,
    oldest first. Groups made after the moment are left out; archived ones are kept."""
    profile = profiles.get_profile(session, identity)
    assert profile.id is not None
    query = select(Event).where(col(Event.profile_id) == profile.id)
    if until_event is not None:
        query = query.where(col(Event.id) <= until_event)
    else:
        query = query.where(col(Event.ts) <= (as_of or datetime.now(UTC)))
    events = [ledger.to_record(row) for row in session.exec(query.order_by(col(Event.id))).all()]
    if until_event is not None:
        moment = events[-1].ts if events else profile.created_at
    else:
        moment = as_of or datetime.now(UTC)
    last: dict[int | None, EventRecord] = {}
    for event in events:
        if event.name == CHANNEL_UNSUBSCRIBED:
            last[event.group_id] = event
    channel = last.get(None)
    all_email = channel.properties.get("New State") if channel else SUBSCRIBED
    # Groups that existed then (seeded events may be older than their group's row).
    group_rows = session.exec(
        select(Group)
        .where(or_(col(Group.created_at) <= moment, col(Group.id).in_([g for g in last if g])))
        .order_by(col(Group.name_key))
    ).all()
    states = []
    for group in group_rows:
        assert group.id is not None
        setter = last.get(group.id)
        stored = setter.properties.get("New State") if setter else None
        states.append(
            StateAsOf(
                group_id=group.id,
                group_name=setter.group_name if setter and setter.group_name else group.name,
                stored=stored,
                effective=profiles.effective_state(group.policy, stored),
                event=setter,
            )
        )
    return ProfileHistory(
        identity=profile.identity,
        as_of=moment,
        existed=profile.created_at <= moment or bool(events),
        all_email=StateAsOf(None, None, str(all_email), str(all_email), channel),
        groups=states,
        events=events,
    )
