"""What the segment index asks the database beyond states: property matches and
address twins (profiles sharing one ``email_key``), as bitmaps; the profile of
each state-change event it replays."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyroaring import BitMap, FrozenBitMap
from sqlalchemy import func, select
from sqlmodel import Session, col

from app.core import ledger
from app.core.bitsets import Bits
from app.core.event_names import EMAIL_BOUNCED
from app.core.models import Event, Profile
from app.core.segment_rules import PROFILE_FIELDS, PropertyCondition


def _fold_case(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _lower_function(session: Session, values: Sequence[str]) -> Callable[[Any], Any]:
    """SQL ``lower``, or on SQLite, for non-ASCII values, Python's: SQLite's own
    ``lower`` folds ASCII letters only, so "ÜBER" would never equal "über"."""
    if session.get_bind().dialect.name != "sqlite" or all(v.isascii() for v in values):
        return func.lower
    driver = session.connection().connection.driver_connection
    driver.create_function("subgroups_lower", 1, _fold_case, deterministic=True)  # type: ignore[union-attr]
    return func.subgroups_lower


def property_bits(session: Session, condition: PropertyCondition, max_id: int) -> FrozenBitMap:
    """The profiles (up to ``max_id``) a positive property condition keeps."""
    values = [v.lower() for v in condition.values]
    lower = _lower_function(session, values)
    if condition.key in PROFILE_FIELDS:
        column = lower(func.coalesce(getattr(Profile, condition.key), ""))
        is_set = func.coalesce(getattr(Profile, condition.key), "") != ""
    else:
        value = Profile.__table__.c.properties[condition.key].as_string()  # type: ignore[attr-defined]
        column = lower(func.coalesce(value, ""))
        is_set = func.coalesce(value, "") != ""
    query = select(col(Profile.id)).where(col(Profile.id) <= max_id)
    if condition.op == "equals":
        query = query.where(column == values[0])
    elif condition.op == "one_of":
        query = query.where(column.in_(values))
    elif condition.op == "contains":
        escaped = values[0].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(column.like(f"%{escaped}%", escape="\\"))
    else:  # is_set
        query = query.where(is_set)
    return FrozenBitMap(session.execute(query).scalars())


@dataclass(frozen=True)
class AddressTwins:
    """Profiles that share an address (one ``email_key``) with another profile."""

    key_of: dict[int, str]  # profile id -> its key, for profiles with a twin
    members: dict[str, tuple[int, ...]]  # key -> its profiles' ids, ascending
    bits: FrozenBitMap  # every profile with a twin

    def spread(self, bits: Bits) -> BitMap:
        """``bits`` and every profile sharing an address with one of them."""
        hit = bits & self.bits
        more = BitMap(pid for one in hit for pid in self.members[self.key_of[one]])
        return BitMap(bits) | more

    def one_per_address(self, bits: Bits) -> BitMap:
        """``bits`` keeping, of profiles that share an address, the one with the lowest id."""
        seen: set[str] = set()
        later = BitMap()
        for pid in bits & self.bits:
            key = self.key_of[pid]
            if key in seen:
                later.add(pid)
            else:
                seen.add(key)
        return BitMap(bits) - later


def read_twins(session: Session) -> AddressTwins:
    """The profiles sharing an address (few, usually: the query reads only the
    ``email_key`` index)."""
    shared = (
        select(col(Profile.email_key))
        .where(col(Profile.email_key).is_not(None))
        .group_by(col(Profile.email_key))
        .having(func.count() > 1)
    )
    rows = session.execute(
        select(col(Profile.id), col(Profile.email_key))
        .where(col(Profile.email_key).in_(shared))
        .order_by(col(Profile.id))
    ).all()
    key_of = {int(pid): str(key) for pid, key in rows}
    members: dict[str, list[int]] = {}
    for pid, key in key_of.items():
        members.setdefault(key, []).append(pid)
    return AddressTwins(
        key_of, {key: tuple(ids) for key, ids in members.items()}, FrozenBitMap(key_of)
    )


def read_twins_among(session: Session, ids: Bits) -> AddressTwins | None:
    """``read_twins`` when the profiles with a twin are known to be ``ids`` (the index
    snapshot's part): only their rows are read. None when the rows no longer say so
    (an address changed: then ``read_twins``)."""
    key_of: dict[int, str] = {}
    wanted = list(ids)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.execute(
            select(col(Profile.id), col(Profile.email_key)).where(col(Profile.id).in_(chunk))
        ).all()
        key_of.update((int(pid), str(key)) for pid, key in rows if key is not None)
    members: dict[str, list[int]] = {}
    for pid in sorted(key_of):
        members.setdefault(key_of[pid], []).append(pid)
    if len(key_of) != len(wanted) or any(len(group) < 2 for group in members.values()):
        return None
    return AddressTwins(
        key_of, {key: tuple(group) for key, group in members.items()}, FrozenBitMap(key_of)
    )


class TwinsCache:
    """Who shares an address, read when first needed and kept until profiles change
    (``forget``). ``hint`` (the index snapshot's profiles with a twin, while no profile
    changed since) spares grouping every address (2 s at 10M profiles)."""

    def __init__(self) -> None:
        self.known: AddressTwins | None = None
        self.hint: FrozenBitMap | None = None

    def forget(self) -> None:
        self.known = self.hint = None

    def read(self, session: Session) -> AddressTwins:
        if self.known is None and self.hint is not None:
            self.known = read_twins_among(session, self.hint)
        if self.known is None:
            self.known = read_twins(session)
        return self.known


def bounced_profiles(session: Session, events: list[ledger.EventRecord]) -> list[int]:
    """The profiles that these events made undeliverable (``Email Bounced``, Deliverable false)."""
    wanted = [
        e for e in events if e.name == EMAIL_BOUNCED and e.properties.get("Deliverable") is False
    ]
    return [pid for _event, pid in _with_profiles(session, wanted)] if wanted else []


def state_change_profiles(
    session: Session, events: list[ledger.EventRecord]
) -> list[tuple[ledger.EventRecord, int]]:
    """The state-change events with the profile each one concerns (read from its row)."""
    return _with_profiles(session, [e for e in events if e.name == ledger.CHANNEL_UNSUBSCRIBED])


def _with_profiles(
    session: Session, wanted: list[ledger.EventRecord]
) -> list[tuple[ledger.EventRecord, int]]:
    """These events with the profile each one concerns (read from its row)."""
    profile_of: dict[int, int] = {}
    for start in range(0, len(wanted), 5000):
        ids = [e.id for e in wanted[start : start + 5000]]
        rows = session.execute(
            select(col(Event.id), col(Event.profile_id)).where(
                col(Event.id).in_(ids), col(Event.profile_id).is_not(None)
            )
        ).all()
        profile_of.update((int(event_id), int(pid)) for event_id, pid in rows)
    return [(e, profile_of[e.id]) for e in wanted if e.id in profile_of]
