"""A send's delivery rows: one per person claimed, and how their message went.

A ``Delivery`` row is unique per (campaign, profile) and per (campaign,
address key): the claim (``claim``) skips rows already there, so nobody and
no address gets a campaign twice. ``record_batch`` settles a batch after the
outbox had it; ``settle_crashed`` settles what a crashed send left claimed.
The batch sender (``sending``) drives them.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from app.core import outcomes as outboxes
from app.core.models import Delivery
from app.core.outbox import Outbox
from app.core.outcomes import Outcome

DELIVERY: Table = Delivery.__table__  # type: ignore[attr-defined]

# Delivery.status values.
CLAIMED = "sending"  # claimed by a send; the message may or may not be out yet
SENT = "sent"
FAILED = "failed"  # the server refused it for good
UNKNOWN = "unknown"  # a crash left it unclear whether it went out: never sent again


def chunks(values: Sequence[int], size: int) -> list[Sequence[int]]:
    """``values`` in slices of at most ``size`` (an IN list the database takes)."""
    return [values[i : i + size] for i in range(0, len(values), size)]


def key_of(message_id: str) -> str:
    """The outbox key inside a Message-ID: ``<c1.p2.abc@example.com>`` -> ``c1.p2.abc``."""
    return message_id.strip().lstrip("<").rstrip(">").rpartition("@")[0]


def claim(session: Session) -> Any:
    """An INSERT into delivery that skips rows already there (the claim)."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite.insert(DELIVERY).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql.insert(DELIVERY).on_conflict_do_nothing()
    return insert(DELIVERY)  # pragma: no cover - the store supports the two above


def count(session: Session, campaign_id: int, status: str) -> int:
    """How many of the campaign's rows have this status."""
    value = session.execute(
        select(func.count())
        .select_from(Delivery)
        .where(col(Delivery.campaign_id) == campaign_id, col(Delivery.status) == status)
    ).scalar_one()
    return int(value)


def settle_crashed(
    session: Session,
    campaign_id: int,
    outbox: Outbox,
    *,
    after_id: int | None = None,
    last_id: int | None = None,
) -> tuple[int, int]:
    """Rows a crashed send left claimed: sent if the outbox has them, else unclaimed
    (Maildir) or unknown (SMTP, which cannot be asked). Returns (recovered, unknown).

    ``after_id`` and ``last_id`` keep to the profiles in that range (one batch of a
    shared send, taken over from a sender that is gone)."""
    where = [DELIVERY.c.campaign_id == campaign_id, DELIVERY.c.status == CLAIMED]
    if after_id is not None:
        where.append(DELIVERY.c.profile_id > after_id)
    if last_id is not None:
        where.append(DELIVERY.c.profile_id <= last_id)
    rows = session.execute(select(DELIVERY.c.profile_id, DELIVERY.c.message_id).where(*where)).all()
    if not rows:
        return 0, 0
    if not outbox.idempotent:
        session.execute(update(DELIVERY).where(*where).values(status=UNKNOWN))
        return 0, len(rows)
    keys = {key_of(message_id): int(pid) for pid, message_id in rows}
    there = outbox.delivered_keys(keys)
    found = [keys[k] for k in there]
    for chunk in chunks(found, 900):
        session.execute(
            update(DELIVERY).where(*where, DELIVERY.c.profile_id.in_(chunk)).values(status=SENT)
        )
    session.execute(delete(DELIVERY).where(*where))
    return len(found), 0


def record_batch(
    session: Session,
    campaign_id: int,
    batch: int,
    *,
    now: datetime,
    sent: Sequence[int],
    failed: Sequence[int],
    unknown: Sequence[int],
    not_sent: Sequence[int],
) -> None:
    """A batch's messages as they went; the rows of those never handed over are removed."""
    this = [DELIVERY.c.campaign_id == campaign_id, DELIVERY.c.batch == batch]
    for ids, status in ((sent, SENT), (failed, FAILED), (unknown, UNKNOWN)):
        for chunk in chunks(ids, 900):
            session.execute(
                update(DELIVERY)
                .where(*this, DELIVERY.c.profile_id.in_(chunk))
                .values(status=status, sent_at=now)
            )
    for chunk in chunks(not_sent, 900):
        session.execute(delete(DELIVERY).where(*this, DELIVERY.c.profile_id.in_(chunk)))


@dataclass
class BatchOutcomes:
    """A batch's outcomes sorted into what ``record_batch`` writes (profile ids)."""

    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    not_sent: list[int] = field(default_factory=list)  # unclaimed: never handed over, deferred
    hard_bounces: list[tuple[int, str]] = field(default_factory=list)  # (index, "5.1.1")
    deferred: int = 0
    deferred_reply: str = ""


def sort_outcomes(
    profile_ids: Sequence[int], outcomes: dict[int, Outcome], taken: int
) -> BatchOutcomes:
    """Sort ``Outbox.deliver_many``'s outcomes (by index into ``profile_ids``).

    A message the outbox took (index below ``taken``) and said nothing of stays
    claimed: it may be out, so the next send settles it as after a crash. A
    refusal with a 5.1.x status (no such address) is a hard bounce as well.
    """
    went = BatchOutcomes()
    for index, pid in enumerate(profile_ids):
        outcome = outcomes.get(index)
        if outcome is None:
            if index >= taken:
                went.not_sent.append(pid)
        elif outcome.status == outboxes.SENT:
            went.sent.append(pid)
        elif outcome.status == outboxes.REFUSED:
            went.failed.append(pid)
            status = outcome.enhanced_status or ""
            if status.startswith("5.1."):
                went.hard_bounces.append((index, status))
        elif outcome.status == outboxes.AMBIGUOUS:
            went.unknown.append(pid)
        else:
            went.not_sent.append(pid)
            if outcome.status == outboxes.DEFERRED:
                went.deferred += 1
                went.deferred_reply = outcome.reply
    return went
