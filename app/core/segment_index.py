"""The segment engine: the store's subscription states as bitsets, kept in step
with the ledger, so counts over a million profiles take milliseconds.

Profile ``id`` n is bit n of a Python ``int``. Per group we keep the stored
``subscribed`` and ``unsubscribed`` sets; the effective set follows from the
group's policy (opt-out: everyone but the unsubscribed; opt-in: only the
subscribed). AND, OR, NOT and ``int.bit_count`` on 125 KB integers run in
microseconds, which is what keeps the builder's counts live while toggling.

The index is built once (the warm-up) and then follows the ledger: every
state change is a ``Channel Unsubscribed`` event naming the profile, the
group and the new state, so ``refresh`` applies just those. New profiles are
picked up by id; property conditions are answered by the database and cached
until profiles change.
"""

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from app.core import ledger
from app.core.bitsets import bits_from_ids, iter_ids
from app.core.models import (
    POLICY_OPT_IN,
    STATUS_ACTIVE,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Event,
    Group,
    GroupState,
    Profile,
)
from app.core.segment_rules import (
    ALL,
    EXCLUDE,
    PROFILE_FIELDS,
    Condition,
    EmailCondition,
    GroupsCondition,
    PropertyCondition,
    SegmentRule,
)

# Beyond this many state changes in one refresh, rebuilding is faster.
REBUILD_AFTER = 50_000
# How long an id skipped over by newer profiles is looked for (see _add_profiles).
PROFILE_GAP_SECONDS = 30.0
PROFILES_CHANGED = (ledger.PROFILES_IMPORTED, ledger.SAMPLE_DATA_LOADED)


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


@dataclass(frozen=True)
class GroupInfo:
    id: int
    name: str
    policy: str
    status: str


@dataclass(frozen=True)
class SegmentCount:
    """The total and each condition's own count (each against all profiles)."""

    total: int
    clauses: tuple[int, ...]
    profiles: int


@dataclass(frozen=True)
class AddressTwins:
    """Profiles that share an address (one ``email_key``) with another profile."""

    key_of: dict[int, str]  # profile id -> its key, for profiles with a twin
    members: dict[str, tuple[int, ...]]  # key -> its profiles' ids, ascending
    bits: int  # every profile with a twin


class BuildCancelled(Exception):
    """The caller asked a build to stop (the console is quitting)."""


class SegmentIndex:
    """Bitsets of a store's profiles and states; thread-safe; follows the ledger."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.built = False
        self.everyone = 0
        self.max_id = 0
        self.profile_count = 0
        self.email_unsubscribed = 0
        self.stored: dict[tuple[int, str], int] = {}
        # Groups whose stored states have been read (see _load).
        self._loaded: set[int] = set()
        self.groups: dict[int, GroupInfo] = {}
        self._follower: ledger.LedgerFollower | None = None
        self._property_cache: dict[PropertyCondition, int] = {}
        # Read when first needed, until profiles change (see address_twins).
        self._twins: AddressTwins | None = None
        # Profile ids skipped over by newer ones: (first, last, look until).
        self._profile_gaps: list[tuple[int, int, float]] = []

    # --- building and following ----------------------------------------------

    def build(self, session: Session, *, cancelled: Callable[[], bool] | None = None) -> None:
        """Read every profile and the channel-wide state (the warm-up).

        A group's stored states are read the first time a rule needs that
        group (``_load``), so a count naming two groups reads two groups.
        ``cancelled`` is asked between reads: the console passes a flag set
        when it quits. The index changes only once the whole build is done.
        """
        with self._lock:
            follower = ledger.LedgerFollower(after_id=ledger.latest_id(session))
            max_id = int(session.execute(select(func.max(Profile.id))).scalar() or 0)
            size = max_id + 1
            everyone = bits_from_ids(session.execute(select(col(Profile.id))).scalars(), size)
            self._check(cancelled)
            unsub = session.execute(
                select(col(Profile.id)).where(col(Profile.all_email) == UNSUBSCRIBED)
            ).scalars()
            email_unsubscribed = bits_from_ids(unsub, size)
            groups = self._read_groups(session)
            self._check(cancelled)
            self.max_id, self.everyone, self.email_unsubscribed = (
                max_id,
                everyone,
                email_unsubscribed,
            )
            self.profile_count = everyone.bit_count()
            self.groups, self.stored = groups, {}
            self._loaded = set()
            self._property_cache.clear()
            self._twins = None
            self._profile_gaps = []
            self._follower = follower
            self.built = True

    @staticmethod
    def _check(cancelled: Callable[[], bool] | None) -> None:
        if cancelled is not None and cancelled():
            raise BuildCancelled("segment index build cancelled")

    def _load(
        self,
        session: Session,
        group_ids: Iterable[int],
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        """Read the stored states of the groups not read yet.

        Later changes reach a loaded group through the ledger (``_apply``);
        replaying an event the read already saw sets the same state again.
        """
        for group_id in group_ids:
            if group_id in self._loaded:
                continue
            for state in (SUBSCRIBED, UNSUBSCRIBED):
                self._check(cancelled)
                rows = session.execute(
                    select(col(GroupState.profile_id)).where(
                        col(GroupState.group_id) == group_id, col(GroupState.state) == state
                    )
                ).scalars()
                self.stored[(group_id, state)] = bits_from_ids(rows, self.max_id + 1)
            self._loaded.add(group_id)

    def load_groups(
        self,
        session: Session,
        group_ids: Iterable[int] | None = None,
        *,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        """Read the given groups' states now (all groups when None): a warm-up ahead of counting."""
        with self._lock:
            self._load(session, self.groups if group_ids is None else group_ids, cancelled)

    @staticmethod
    def _read_groups(session: Session) -> dict[int, GroupInfo]:
        return {
            g.id: GroupInfo(g.id, g.name, g.policy, g.status)
            for g in session.execute(select(Group)).scalars()
            if g.id is not None
        }

    def _load_groups(self, session: Session) -> None:
        self.groups = self._read_groups(session)

    def refresh(self, session: Session, *, cancelled: Callable[[], bool] | None = None) -> None:
        """Catch up with the store: build if never built, else apply new ledger events."""
        with self._lock:
            if not self.built or self._follower is None:
                self.build(session, cancelled=cancelled)
                return
            # A poll reads one page of the ledger; a big backlog is cheaper rebuilt than replayed.
            latest = ledger.latest_id(session)
            if latest - self._follower.last > REBUILD_AFTER:
                self.build(session, cancelled=cancelled)
                return
            events = self._follower.poll(session)
            while events and self._follower.last < latest:
                more = self._follower.poll(session)
                if not more:
                    break
                events.extend(more)
            changes = self._changes(session, events)
            if any(e.name.startswith("Group ") for e in events):
                self._load_groups(session)
            max_id = int(session.execute(select(func.max(Profile.id))).scalar() or 0)
            imported = any(e.name in PROFILES_CHANGED for e in events)
            if max_id != self.max_id or self._profile_gaps or imported:
                added = self._add_profiles(session)
                if added or imported:
                    self._property_cache.clear()
                    self._twins = None
            for event, profile_id in changes:
                self._apply(event, profile_id)

    @staticmethod
    def _changes(
        session: Session, events: list[ledger.EventRecord]
    ) -> list[tuple[ledger.EventRecord, int]]:
        """The state-change events with the profile each one concerns (read from its row)."""
        wanted = [e for e in events if e.name == ledger.CHANNEL_UNSUBSCRIBED]
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

    def _add_profiles(self, session: Session) -> bool:
        """Add the profiles committed since the last look; True when there were any.

        PostgreSQL hands out ids at insert, not at commit: a profile can
        appear below ids already seen. So ids skipped over are looked for
        again for ``PROFILE_GAP_SECONDS`` (a rolled-back insert leaves a gap
        that never fills), as ``LedgerFollower`` does for events.
        """
        before = self.everyone
        moment = time.monotonic()
        query = (
            select(col(Profile.id)).where(col(Profile.id) > self.max_id).order_by(col(Profile.id))
        )
        new_ids = [int(i) for i in session.execute(query).scalars()]
        gaps: list[tuple[int, int, float]] = []
        expected = self.max_id + 1
        for pid in new_ids:
            if pid > expected:
                gaps.append((expected, pid - 1, moment + PROFILE_GAP_SECONDS))
            expected = pid + 1
        if new_ids:
            self.everyone |= bits_from_ids(new_ids, new_ids[-1] + 1)
            self.max_id = max(self.max_id, new_ids[-1])
        kept = []
        for first, last, until in self._profile_gaps:
            between = select(col(Profile.id)).where(col(Profile.id).between(first, last))
            found = list(session.execute(between).scalars())
            self.everyone |= bits_from_ids(found, last + 1)
            if until > moment and len(found) <= last - first:
                kept.append((first, last, until))
        self._profile_gaps = kept + gaps
        self.profile_count = self.everyone.bit_count()
        return self.everyone != before

    def _apply(self, event: ledger.EventRecord, profile_id: int) -> None:
        """Apply one state change: the event's New State becomes the stored state."""
        bit = 1 << profile_id
        new = event.properties.get("New State")
        if event.group_id is None:
            if new == UNSUBSCRIBED:
                self.email_unsubscribed |= bit
            else:
                self.email_unsubscribed &= ~bit
            return
        if event.group_id not in self._loaded:
            return  # read from the store, as it then is, when first needed
        for state in (SUBSCRIBED, UNSUBSCRIBED):
            key = (event.group_id, state)
            current = self.stored.get(key, 0)
            self.stored[key] = current | bit if state == new else current & ~bit

    # --- one address, one recipient ---------------------------------------------

    def address_twins(self, session: Session) -> AddressTwins:
        """The profiles sharing an address, read once until profiles change (few, usually:
        the query reads only the ``email_key`` index)."""
        with self._lock:
            if self._twins is None:
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
                self._twins = AddressTwins(
                    key_of,
                    {key: tuple(ids) for key, ids in members.items()},
                    bits_from_ids(key_of, self.max_id + 1),
                )
            return self._twins

    def spread_to_twins(self, bits: int, session: Session) -> int:
        """``bits`` and every profile sharing an address with one of them."""
        twins = self.address_twins(session)
        hit = bits & twins.bits
        if not hit:
            return bits
        more = {pid for one in iter_ids(hit) for pid in twins.members[twins.key_of[one]]}
        return bits | bits_from_ids(more, max(more) + 1)

    def one_per_address(self, bits: int, session: Session) -> int:
        """``bits`` keeping, of profiles that share an address, the one with the lowest id."""
        twins = self.address_twins(session)
        hit = bits & twins.bits
        if not hit:
            return bits
        seen: set[str] = set()
        later: list[int] = []
        for pid in iter_ids(hit):
            key = twins.key_of[pid]
            if key in seen:
                later.append(pid)
            else:
                seen.add(key)
        return bits & ~bits_from_ids(later, max(later) + 1) if later else bits

    # --- evaluating -------------------------------------------------------------

    def locked(self) -> threading.RLock:
        """The index's lock: hold it to combine several reads into one consistent answer."""
        return self._lock

    def subscribed(self, group_id: int) -> int:
        """Everyone effectively subscribed to the group (its states must be loaded)."""
        info = self.groups.get(group_id)
        if info is not None and info.policy == POLICY_OPT_IN:
            return self.stored.get((group_id, SUBSCRIBED), 0) & self.everyone
        return self.everyone & ~self.stored.get((group_id, UNSUBSCRIBED), 0)

    def active_group_ids(self) -> list[int]:
        return sorted(g.id for g in self.groups.values() if g.status == STATUS_ACTIVE)

    def _groups_bits(self, condition: GroupsCondition, session: Session) -> int:
        ids = (
            list(condition.group_ids)
            if condition.group_ids is not None
            else self.active_group_ids()
        )
        self._load(session, ids)
        if not ids:
            # "All" with no active group: nobody is subscribed to any/every group.
            matched = 0
        elif condition.match == ALL:
            matched = self.everyone
            for group_id in ids:
                matched &= self.subscribed(group_id)
        else:
            matched = 0
            for group_id in ids:
                matched |= self.subscribed(group_id)
        return self.everyone & ~matched if condition.mode == EXCLUDE else matched

    def _property_bits(self, condition: PropertyCondition, session: Session) -> int:
        cached = self._property_cache.get(condition)
        if cached is not None:
            return cached
        if condition.op == "not_equals":
            positive = PropertyCondition(condition.key, "equals", condition.values)
            bits = self.everyone & ~self._property_bits(positive, session)
        elif condition.op == "not_set":
            positive = PropertyCondition(condition.key, "is_set", ())
            bits = self.everyone & ~self._property_bits(positive, session)
        else:
            bits = bits_from_ids(self._property_ids(condition, session), self.max_id + 1)
        self._property_cache[condition] = bits
        return bits

    def _property_ids(self, condition: PropertyCondition, session: Session) -> Iterable[int]:
        values = [v.lower() for v in condition.values]
        lower = _lower_function(session, values)
        if condition.key in PROFILE_FIELDS:
            column = lower(func.coalesce(getattr(Profile, condition.key), ""))
            is_set = func.coalesce(getattr(Profile, condition.key), "") != ""
        else:
            value = Profile.__table__.c.properties[condition.key].as_string()  # type: ignore[attr-defined]
            column = lower(func.coalesce(value, ""))
            is_set = func.coalesce(value, "") != ""
        query = select(col(Profile.id)).where(col(Profile.id) <= self.max_id)
        if condition.op == "equals":
            query = query.where(column == values[0])
        elif condition.op == "one_of":
            query = query.where(column.in_(values))
        elif condition.op == "contains":
            escaped = values[0].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(column.like(f"%{escaped}%", escape="\\"))
        else:  # is_set
            query = query.where(is_set)
        return session.execute(query).scalars()

    def condition_bits(self, condition: Condition, session: Session) -> int:
        """The profiles one condition keeps."""
        if isinstance(condition, GroupsCondition):
            return self._groups_bits(condition, session)
        if isinstance(condition, PropertyCondition):
            return self._property_bits(condition, session)
        assert isinstance(condition, EmailCondition)
        if condition.state == UNSUBSCRIBED:
            return self.email_unsubscribed & self.everyone
        return self.everyone & ~self.email_unsubscribed

    def _needed_groups(self, rule: SegmentRule) -> set[int]:
        needed: set[int] = set()
        for condition in rule.conditions:
            if isinstance(condition, GroupsCondition):
                ids = (
                    condition.group_ids
                    if condition.group_ids is not None
                    else self.active_group_ids()
                )
                needed.update(ids)
        return needed

    def members(
        self, rule: SegmentRule, session: Session, *, cancelled: Callable[[], bool] | None = None
    ) -> int:
        """The bitset of the rule's members."""
        with self._lock:
            self._load(session, self._needed_groups(rule), cancelled)
            result = self.everyone
            for condition in rule.conditions:
                result &= self.condition_bits(condition, session)
            return result

    def count(
        self, rule: SegmentRule, session: Session, *, cancelled: Callable[[], bool] | None = None
    ) -> SegmentCount:
        """The total and each condition's own count."""
        with self._lock:
            self._load(session, self._needed_groups(rule), cancelled)
            total = self.everyone
            clauses = []
            for condition in rule.conditions:
                bits = self.condition_bits(condition, session)
                clauses.append(bits.bit_count())
                total &= bits
            return SegmentCount(
                total=total.bit_count(), clauses=tuple(clauses), profiles=self.profile_count
            )
