"""The segment engine: the store's subscription states as roaring bitmaps, kept
in step with the ledger, so counts over a million profiles take milliseconds.

Sets of profile ids are pyroaring bitmaps (``app.core.bitsets``). Per group
we keep the stored ``subscribed`` and ``unsubscribed`` sets; the effective
set follows from the group's policy (opt-out: everyone but the unsubscribed;
opt-in: only the subscribed). AND, OR, difference and ``len`` run in
microseconds, which is what keeps the builder's counts live while toggling.

The index starts from the store's snapshot (``app.core.index_snapshot``) and
replays the ledger events after it; with no usable snapshot it is built from
the tables through raw cursors. Then it follows the ledger: every state
change is a ``Channel Unsubscribed`` event naming the profile, the group and
the new state, so ``refresh`` applies just those. New profiles are picked up
by id; property conditions are answered by the database and cached until
profiles change.

Bitmaps the index hands out are new objects (or frozen): callers may change
them in place without touching the index. A group's stored states loaded from
the snapshot stay frozen views of the bytes read until an event changes them
(then that one is copied): a process that starts from the snapshot copies
only what changes.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pyroaring import BitMap, FrozenBitMap
from sqlalchemy import func, select
from sqlmodel import Session, col

from app.core import bounces, index_snapshot, ledger
from app.core.bitsets import Bits, read_ids
from app.core.event_names import PROFILE_ERASED
from app.core.index_reads import (
    AddressTwins,
    TwinsCache,
    bounced_profiles,
    property_bits,
    state_change_profiles,
)
from app.core.models import (
    POLICY_OPT_IN,
    STATUS_ACTIVE,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Group,
    Profile,
)
from app.core.segment_rules import (
    ALL,
    EXCLUDE,
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
PROFILES_CHANGED = (ledger.PROFILES_IMPORTED, ledger.SAMPLE_DATA_LOADED, PROFILE_ERASED)

log = logging.getLogger(__name__)


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


class BuildCancelled(Exception):
    """The caller asked a build to stop (the console is quitting)."""


class SegmentIndex:
    """Bitmaps of a store's profiles and states; thread-safe; follows the ledger."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.built = False
        self.everyone = BitMap()
        self.max_id = 0
        self.profile_count = 0
        self.email_unsubscribed = BitMap()
        # Profiles whose address bounced for good (``app.core.bounces``).
        self.undeliverable = BitMap()
        # Frozen while as the snapshot left them; copied when an event changes one.
        self.stored: dict[tuple[int, str], Bits] = {}
        # Groups whose stored states have been read (see _load).
        self._loaded: set[int] = set()
        self.groups: dict[int, GroupInfo] = {}
        self._follower: ledger.LedgerFollower | None = None
        self._property_cache: dict[PropertyCondition, FrozenBitMap] = {}
        self.twins = TwinsCache()
        # Profile ids skipped over by newer ones: (first, last, look until).
        self._profile_gaps: list[tuple[int, int, float]] = []
        # The ledger id of the store's snapshot as this process last saw or
        # wrote it (None: no usable snapshot); see app.core.snapshot_writer.
        self.snapshot_ledger_id: int | None = None

    # --- building and following ----------------------------------------------

    def build(self, session: Session, *, cancelled: Callable[[], bool] | None = None) -> None:
        """Start from the store's snapshot and replay newer events, else read the tables.

        Without a usable snapshot every profile and the channel-wide state are
        read; a group's stored states are read the first time a rule needs
        that group (``_load``), so a count naming two groups reads two groups.
        ``cancelled`` is asked between reads: the console passes a flag set
        when it quits. The index changes only once the whole build is done.
        """
        with self._lock:
            if not self._build_from_snapshot(session, cancelled):
                self._build_from_tables(session, cancelled)

    def _reset(
        self,
        *,
        everyone: BitMap,
        email_unsubscribed: BitMap,
        undeliverable: BitMap,
        max_id: int,
        groups: dict[int, GroupInfo],
        stored: dict[tuple[int, str], Bits],
        after_id: int,
    ) -> None:
        self.max_id, self.everyone, self.email_unsubscribed = max_id, everyone, email_unsubscribed
        self.undeliverable = undeliverable
        self.profile_count = len(everyone)
        self.groups, self.stored = groups, stored
        self._loaded = {group_id for group_id, _state in stored}
        self._property_cache.clear()
        self.twins.forget()
        self._profile_gaps = []
        self._follower = ledger.LedgerFollower(after_id=after_id)
        self.built = True

    def _build_from_tables(
        self, session: Session, cancelled: Callable[[], bool] | None = None
    ) -> None:
        """Read every profile and the all-email opt-outs through raw cursors."""
        latest = ledger.latest_id(session)
        max_id = int(session.execute(select(func.max(Profile.id))).scalar() or 0)
        everyone = read_ids(session, "SELECT id FROM profile")
        self._check(cancelled)
        email_unsubscribed = read_ids(
            session, "SELECT id FROM profile WHERE all_email = ?", (UNSUBSCRIBED,)
        )
        undeliverable = bounces.undeliverable_ids(session)
        groups = self._read_groups(session)
        self._check(cancelled)
        self._reset(
            everyone=everyone,
            email_unsubscribed=email_unsubscribed,
            undeliverable=undeliverable,
            max_id=max(max_id, everyone.max() if everyone else 0),
            groups=groups,
            stored={},
            after_id=latest,
        )
        self.snapshot_ledger_id = index_snapshot.stored_ledger_id(session)

    def _build_from_snapshot(
        self, session: Session, cancelled: Callable[[], bool] | None = None
    ) -> bool:
        """Load the stored snapshot and replay the events after it; False when unusable."""
        snapshot = index_snapshot.load(session)
        if snapshot is None:
            return False
        latest = ledger.latest_id(session)
        max_id = int(session.execute(select(func.max(Profile.id))).scalar() or 0)
        if snapshot.ledger_id > latest or snapshot.max_profile_id > max_id:
            why = f"ledger {snapshot.ledger_id} > {latest} or profile {snapshot.max_profile_id}"
            log.warning("segment index snapshot ahead of the store, not used: %s > %s", why, max_id)
            return False
        if latest - snapshot.ledger_id > REBUILD_AFTER:
            return False  # too far behind: reading the tables is quicker than replaying
        groups = self._read_groups(session)
        stored = snapshot.group_states(groups)
        # A snapshot written before addresses could bounce has no such part: the
        # table is read (it holds only the bounced); replaying adds what came after.
        part = snapshot.parts.get(index_snapshot.UNDELIVERABLE)
        undeliverable = BitMap(part) if part is not None else bounces.undeliverable_ids(session)
        self._check(cancelled)
        self._reset(
            everyone=BitMap(snapshot.parts[index_snapshot.EVERYONE]),
            email_unsubscribed=BitMap(snapshot.parts[index_snapshot.EMAIL_UNSUBSCRIBED]),
            undeliverable=undeliverable,
            max_id=snapshot.max_profile_id,
            groups=groups,
            stored=stored,
            after_id=snapshot.ledger_id,
        )
        self.snapshot_ledger_id = snapshot.ledger_id
        self.twins.hint = snapshot.parts.get(index_snapshot.TWINS)
        self._catch_up(session, latest)
        return True

    def snapshot_parts(self) -> tuple[int, int, dict[str, bytes]]:
        """(ledger id, highest profile id, serialized parts) of the index as it stands.

        Both ids are ones below which nothing is still awaited (PostgreSQL can
        commit a lower id later), so replaying from them misses nothing;
        replaying an event the parts already include sets the same state again.
        Only loaded groups are included.
        """
        with self._lock:
            assert self._follower is not None, "build the index first"
            max_id = min((first - 1 for first, _l, _u in self._profile_gaps), default=self.max_id)
            parts = {
                index_snapshot.EVERYONE: self.everyone.serialize(),
                index_snapshot.EMAIL_UNSUBSCRIBED: self.email_unsubscribed.serialize(),
                index_snapshot.UNDELIVERABLE: self.undeliverable.serialize(),
            }
            if self.twins.known is not None:
                parts[index_snapshot.TWINS] = self.twins.known.bits.serialize()
            for (group_id, state), bits in self.stored.items():
                if group_id in self._loaded:
                    parts[index_snapshot.group_part(group_id, state)] = bits.serialize()
            return self._follower.settled, max_id, parts

    def missing_groups(self) -> list[int]:
        """Groups whose states have not been read yet."""
        with self._lock:
            return sorted(set(self.groups) - self._loaded)

    def behind(self) -> int:
        """How many ledger ids the store's snapshot is behind this index (all of them: none)."""
        with self._lock:
            last = self._follower.last if self._follower is not None else 0
            return last - (self.snapshot_ledger_id or 0)

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
                self.stored[(group_id, state)] = read_ids(
                    session,
                    "SELECT profile_id FROM group_state WHERE group_id = ? AND state = ?",
                    (group_id, state),
                )
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
            self._catch_up(session, latest)

    def _catch_up(self, session: Session, latest: int) -> None:
        """Apply the events after the follower's position, up to ``latest`` at least."""
        with self._lock:
            assert self._follower is not None
            events = self._follower.poll(session)
            while events and self._follower.last < latest:
                more = self._follower.poll(session)
                if not more:
                    break
                events.extend(more)
            changes = state_change_profiles(session, events)
            if any(e.name.startswith("Group ") for e in events):
                self.groups = self._read_groups(session)
            max_id = int(session.execute(select(func.max(Profile.id))).scalar() or 0)
            imported = any(e.name in PROFILES_CHANGED for e in events)
            if max_id != self.max_id or self._profile_gaps or imported:
                added = self._add_profiles(session)
                if added or imported:
                    self._property_cache.clear()
                    self.twins.forget()
            for event, profile_id in changes:
                self._apply(event, profile_id)
            self.undeliverable.update(bounced_profiles(session, events))

    def _add_profiles(self, session: Session) -> bool:
        """Add the profiles committed since the last look; True when there were any.

        PostgreSQL hands out ids at insert, not at commit: a profile can
        appear below ids already seen. So ids skipped over are looked for
        again for ``PROFILE_GAP_SECONDS`` (a rolled-back insert leaves a gap
        that never fills), as ``LedgerFollower`` does for events.
        """
        before = len(self.everyone)
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
            self.everyone.update(new_ids)
            self.max_id = max(self.max_id, new_ids[-1])
        kept = []
        for first, last, until in self._profile_gaps:
            between = select(col(Profile.id)).where(col(Profile.id).between(first, last))
            found = list(session.execute(between).scalars())
            self.everyone.update(found)
            if until > moment and len(found) <= last - first:
                kept.append((first, last, until))
        self._profile_gaps = kept + gaps
        self.profile_count = len(self.everyone)
        return self.profile_count != before

    def _apply(self, event: ledger.EventRecord, profile_id: int) -> None:
        """Apply one state change: the event's New State becomes the stored state."""
        new = event.properties.get("New State")
        if event.group_id is None:
            if new == UNSUBSCRIBED:
                self.email_unsubscribed.add(profile_id)
            else:
                self.email_unsubscribed.discard(profile_id)
            return
        if event.group_id not in self._loaded:
            return  # read from the store, as it then is, when first needed
        for state in (SUBSCRIBED, UNSUBSCRIBED):
            key = (event.group_id, state)
            bits = self.stored.get(key)
            if not isinstance(bits, BitMap):  # none yet, or the snapshot's frozen part
                bits = self.stored[key] = BitMap(bits) if bits is not None else BitMap()
            if state == new:
                bits.add(profile_id)
            else:
                bits.discard(profile_id)

    # --- one address, one recipient ---------------------------------------------

    def address_twins(self, session: Session) -> AddressTwins:
        """The profiles sharing an address, read once until profiles change."""
        with self._lock:
            return self.twins.read(session)

    # --- evaluating -------------------------------------------------------------

    def locked(self) -> threading.RLock:
        """The index's lock: hold it to combine several reads into one consistent answer."""
        return self._lock

    def subscribed(self, group_id: int) -> BitMap:
        """Everyone effectively subscribed to the group (its states must be loaded)."""
        info = self.groups.get(group_id)
        if info is not None and info.policy == POLICY_OPT_IN:
            return self.everyone & self.stored.get((group_id, SUBSCRIBED), BitMap())
        return self.everyone - self.stored.get((group_id, UNSUBSCRIBED), BitMap())

    def all_profiles(self) -> BitMap:
        """Every profile (a copy)."""
        with self._lock:
            return BitMap(self.everyone)

    def active_group_ids(self) -> list[int]:
        return sorted(g.id for g in self.groups.values() if g.status == STATUS_ACTIVE)

    def _groups_bits(self, condition: GroupsCondition, session: Session) -> BitMap:
        ids = (
            list(condition.group_ids)
            if condition.group_ids is not None
            else self.active_group_ids()
        )
        self._load(session, ids)
        matched = BitMap()
        if not ids:
            pass  # "All" with no active group: nobody is subscribed to any/every group.
        elif condition.match == ALL:
            matched = BitMap(self.everyone)
            for group_id in ids:
                matched &= self.subscribed(group_id)
        else:
            for group_id in ids:
                matched |= self.subscribed(group_id)
        return self.everyone - matched if condition.mode == EXCLUDE else matched

    def _property_bits(self, condition: PropertyCondition, session: Session) -> FrozenBitMap:
        cached = self._property_cache.get(condition)
        if cached is not None:
            return cached
        if condition.op == "not_equals":
            positive = PropertyCondition(condition.key, "equals", condition.values)
            bits = FrozenBitMap(self.everyone - self._property_bits(positive, session))
        elif condition.op == "not_set":
            positive = PropertyCondition(condition.key, "is_set", ())
            bits = FrozenBitMap(self.everyone - self._property_bits(positive, session))
        else:
            bits = property_bits(session, condition, self.max_id)
        self._property_cache[condition] = bits
        return bits

    def condition_bits(self, condition: Condition, session: Session) -> Bits:
        """The profiles one condition keeps."""
        if isinstance(condition, GroupsCondition):
            return self._groups_bits(condition, session)
        if isinstance(condition, PropertyCondition):
            return self._property_bits(condition, session)
        assert isinstance(condition, EmailCondition)
        if condition.state == UNSUBSCRIBED:
            return self.email_unsubscribed & self.everyone
        return self.everyone - self.email_unsubscribed

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
    ) -> BitMap:
        """The bitmap of the rule's members (a new one, the caller's to keep)."""
        with self._lock:
            self._load(session, self._needed_groups(rule), cancelled)
            result = BitMap(self.everyone)
            for condition in rule.conditions:
                result &= self.condition_bits(condition, session)
            return result

    def count(
        self, rule: SegmentRule, session: Session, *, cancelled: Callable[[], bool] | None = None
    ) -> SegmentCount:
        """The total and each condition's own count."""
        with self._lock:
            self._load(session, self._needed_groups(rule), cancelled)
            total = BitMap(self.everyone)
            clauses = []
            for condition in rule.conditions:
                bits = self.condition_bits(condition, session)
                clauses.append(len(bits))
                total &= bits
            return SegmentCount(
                total=len(total), clauses=tuple(clauses), profiles=self.profile_count
            )
