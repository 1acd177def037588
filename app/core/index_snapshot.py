"""The segment index's snapshots in the store (table ``index_snapshot``, schema 9).

A snapshot is the index's bitmaps (everyone, the all-email opt-outs, each
group's stored states) as of one ledger id, in the portable roaring format.
A process that loads it replays only the events after that id instead of
reading every profile and state. All parts are written in one transaction
with one ledger id; a part whose checksum or bitmap does not read back, or
parts that disagree, make the whole snapshot unusable (``load`` says why and
the caller builds from the tables).
"""

import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from pyroaring import FrozenBitMap
from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from app.core import clock
from app.core.bitsets import Bits
from app.core.models import STATES, IndexSnapshot

log = logging.getLogger(__name__)

EVERYONE = "everyone"
EMAIL_UNSUBSCRIBED = "email_unsubscribed"
# Optional: snapshots written before schema 14 lack it (the table is read then).
UNDELIVERABLE = "undeliverable"
# Optional: every profile that shares its address with another (``AddressTwins.bits``);
# without it the whole address index is grouped (2 s at 10M profiles).
TWINS = "twins"


def group_part(group_id: int, state: str) -> str:
    return f"group:{group_id}:{state}"


@dataclass(frozen=True)
class Snapshot:
    """A snapshot read back: every part as of ``ledger_id``; profiles up to ``max_profile_id``."""

    ledger_id: int
    max_profile_id: int
    parts: dict[str, FrozenBitMap]

    def group_states(self, group_ids: Iterable[int]) -> dict[tuple[int, str], Bits]:
        """(group, state) -> its part, for the groups the snapshot holds.

        The parts are frozen views of the bytes read (no copy): at 10M profiles
        copying every group's bitmaps into mutable ones cost more than reading
        them. Whoever changes one copies it first (``SegmentIndex._apply``).
        """
        found: dict[tuple[int, str], Bits] = {}
        for group_id in group_ids:
            keys = [(group_id, state) for state in STATES]
            parts = [self.parts.get(group_part(*key)) for key in keys]
            if all(part is not None for part in parts):
                found.update((k, p) for k, p in zip(keys, parts, strict=True) if p is not None)
        return found


def checksum(data: bytes) -> str:
    return f"{zlib.crc32(data):08x}"


def stored_ledger_id(session: Session) -> int | None:
    """The ledger id the stored snapshot includes (None: no snapshot)."""
    value = session.execute(
        select(col(IndexSnapshot.ledger_id)).where(col(IndexSnapshot.part) == EVERYONE)
    ).scalar()
    return None if value is None else int(value)


class UnusableSnapshot(Exception):
    """The stored snapshot cannot be used (corrupt, torn or from another store state)."""


def load(session: Session) -> Snapshot | None:
    """The stored snapshot; None if there is none or it is unusable (logged with the reason)."""
    rows = list(session.exec(select(IndexSnapshot)).all())
    if not rows:
        return None
    try:
        return _read(rows)
    except UnusableSnapshot as exc:
        log.warning("segment index snapshot not used, rebuilding from the tables: %s", exc)
        return None


def _read(rows: list[IndexSnapshot]) -> Snapshot:
    if len({(r.ledger_id, r.max_profile_id) for r in rows}) != 1:
        raise UnusableSnapshot("its parts were written at different ledger ids")
    parts: dict[str, FrozenBitMap] = {}
    for row in rows:
        part, data = row.part, bytes(row.data)
        if checksum(data) != row.checksum:
            raise UnusableSnapshot(f"part {part!r} fails its checksum")
        try:
            parts[part] = FrozenBitMap.deserialize(data)
        except ValueError as exc:
            raise UnusableSnapshot(f"part {part!r} is not a roaring bitmap") from exc
    if EVERYONE not in parts or EMAIL_UNSUBSCRIBED not in parts:
        raise UnusableSnapshot("it lacks the profiles or the all-email parts")
    ((ledger_id, max_id),) = {(r.ledger_id, r.max_profile_id) for r in rows}
    return Snapshot(ledger_id=ledger_id, max_profile_id=max_id, parts=parts)


def save(session: Session, *, ledger_id: int, max_profile_id: int, parts: dict[str, bytes]) -> None:
    """Replace the stored snapshot with these parts (the caller's transaction commits)."""
    now = clock.now()
    session.execute(delete(IndexSnapshot))
    session.execute(
        insert(IndexSnapshot),
        [
            {
                "part": part,
                "ledger_id": ledger_id,
                "max_profile_id": max_profile_id,
                "checksum": checksum(data),
                "data": data,
                "written_at": now,
            }
            for part, data in parts.items()
        ],
    )
