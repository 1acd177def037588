"""A shared send's batches and senders (PostgreSQL): who takes which batch, and when.

Several ``campaigns send NAME`` processes, on one host or many, share a send:

- the first sender cuts the audience into batches (``cut``): contiguous ranges
  of profile ids, the first open below and the last open above, so every
  profile of the audience, even one added after the cut, falls in exactly one;
- each sender takes the next batch nobody holds (``claim_next``, with
  ``SELECT ... FOR UPDATE SKIP LOCKED``: two senders never wait for each other
  nor take the same batch), sends it and marks it done (``mark_done``);
- each sender names itself in ``send_sender`` (``host:pid``) and a thread of
  its own (``SenderHeartbeat``) refreshes its heartbeat; a batch whose holder's
  heartbeat is older than the takeover time, or whose holder is a process of
  this host that is gone, is taken over by the next sender that looks.

The delivery rows stay the guard against mailing twice: a taken-over batch
sends only to the people of its range with no delivery row yet.
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from app.core import clock, send_lease
from app.core.models import SendBatch, SendSender
from app.core.store import Store

TODO, CLAIMED, DONE = "todo", "claimed", "done"
SEND_BATCH = SendBatch.__table__  # type: ignore[attr-defined]
SEND_SENDER = SendSender.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Batch:
    """A batch a sender holds: the audience members with ``after_id < id <= last_id``."""

    number: int
    after_id: int | None
    last_id: int | None
    taken_from: str | None = None  # the sender it was taken over from, if any

    def holds(self, profile_id: int) -> bool:
        """Whether the profile falls in this batch's range."""
        above = self.after_id is None or profile_id > self.after_id
        return above and (self.last_id is None or profile_id <= self.last_id)


# What ``claim_next`` answers when every batch left is held by a live sender.
WAIT = "wait"


def has_batches(session: Session, campaign_id: int) -> bool:
    """Whether the campaign's send is already cut into batches."""
    found = session.execute(
        select(SendBatch.number).where(col(SendBatch.campaign_id) == campaign_id).limit(1)
    ).first()
    return found is not None


def cut(
    session: Session, campaign_id: int, audience: Sequence[int], size: int, first_number: int
) -> int:
    """Cut the audience (profile ids, ascending) into batches of ``size``; returns how many.

    The first batch has no lower bound, the last none above: together they cover every id.
    """
    bounds = [audience[i - 1] for i in range(size, len(audience), size)]
    rows = []
    after: int | None = None
    for n, last in enumerate([*bounds, None]):
        rows.append(
            {"campaign_id": campaign_id, "number": first_number + n, "after_id": after,
             "last_id": last, "status": TODO, "skipped": 0, "without_email": 0}
        )  # fmt: skip
        after = last
    session.execute(insert(SEND_BATCH), rows)
    return len(rows)


def join(session: Session, campaign_id: int, holder: str, now: datetime) -> None:
    """Name this sender among the campaign's senders, with a fresh heartbeat."""
    session.execute(
        delete(SEND_SENDER).where(
            SEND_SENDER.c.campaign_id == campaign_id, SEND_SENDER.c.holder == holder
        )
    )
    session.execute(
        insert(SEND_SENDER).values(
            campaign_id=campaign_id, holder=holder, started_at=now, beat_at=now
        )
    )


def beat(session: Session, campaign_id: int, holder: str, now: datetime) -> bool:
    """Refresh this sender's heartbeat; False when its row is gone (the send ended)."""
    result = session.execute(
        update(SEND_SENDER)
        .where(SEND_SENDER.c.campaign_id == campaign_id, SEND_SENDER.c.holder == holder)
        .values(beat_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def leave(session: Session, campaign_id: int, holder: str) -> None:
    """This sender stops: the batches it still holds go back to todo, its row goes."""
    session.execute(
        update(SEND_BATCH)
        .where(
            SEND_BATCH.c.campaign_id == campaign_id,
            SEND_BATCH.c.holder == holder,
            SEND_BATCH.c.status == CLAIMED,
        )
        .values(status=TODO, holder=None, claimed_at=None)
    )
    session.execute(
        delete(SEND_SENDER).where(
            SEND_SENDER.c.campaign_id == campaign_id, SEND_SENDER.c.holder == holder
        )
    )


def end(session: Session, campaign_id: int) -> None:
    """The send is over (sent): no sender takes part any more."""
    session.execute(delete(SEND_SENDER).where(SEND_SENDER.c.campaign_id == campaign_id))


def _take(session: Session, campaign_id: int, number: int, holder: str, now: datetime) -> None:
    session.execute(
        update(SEND_BATCH)
        .where(SEND_BATCH.c.campaign_id == campaign_id, SEND_BATCH.c.number == number)
        .values(status=CLAIMED, holder=holder, claimed_at=now)
    )


def claim_next(
    session: Session, campaign_id: int, holder: str, *, now: datetime, takeover: float
) -> Batch | str | None:
    """Take the next batch for ``holder``: one whose holder is gone first, else the next
    todo one. ``WAIT`` when live senders hold every batch left; None when all are done.

    Rows another transaction has locked are skipped (``SKIP LOCKED``), so concurrent
    senders take different batches without waiting for each other.
    """
    held = session.execute(
        core_select(
            SEND_BATCH.c.number,
            SEND_BATCH.c.after_id,
            SEND_BATCH.c.last_id,
            SEND_BATCH.c.holder,
            SEND_SENDER.c.beat_at,
        )
        .select_from(
            SEND_BATCH.outerjoin(
                SEND_SENDER,
                (SEND_SENDER.c.campaign_id == SEND_BATCH.c.campaign_id)
                & (SEND_SENDER.c.holder == SEND_BATCH.c.holder),
            )
        )
        .where(
            SEND_BATCH.c.campaign_id == campaign_id,
            SEND_BATCH.c.status == CLAIMED,
            SEND_BATCH.c.holder != holder,
        )
        .order_by(SEND_BATCH.c.number)
        .with_for_update(skip_locked=True, of=SEND_BATCH)
    ).all()
    for number, after_id, last_id, other, beat_at in held:
        age = (now - beat_at).total_seconds() if beat_at is not None else float("inf")
        if send_lease.holder_gone(other, age, takeover):
            _take(session, campaign_id, number, holder, now)
            return Batch(number, after_id, last_id, taken_from=other)
    todo = session.execute(
        select(SendBatch.number, SendBatch.after_id, SendBatch.last_id)
        .where(col(SendBatch.campaign_id) == campaign_id, col(SendBatch.status) == TODO)
        .order_by(col(SendBatch.number))
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if todo is not None:
        _take(session, campaign_id, todo.number, holder, now)
        return Batch(todo.number, todo.after_id, todo.last_id)
    return WAIT if left(session, campaign_id) else None


def mark_done(
    session: Session, campaign_id: int, batch: Batch, holder: str, *, skipped: int,
    without_email: int,
) -> bool:  # fmt: skip
    """The batch is sent; False when it was no longer this sender's (taken over meanwhile)."""
    result = session.execute(
        update(SEND_BATCH)
        .where(
            SEND_BATCH.c.campaign_id == campaign_id,
            SEND_BATCH.c.number == batch.number,
            SEND_BATCH.c.holder == holder,
        )
        .values(status=DONE, skipped=skipped, without_email=without_email)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def left(session: Session, campaign_id: int) -> int:
    """How many of the campaign's batches are not done."""
    return int(
        session.execute(
            select(func.count())
            .select_from(SendBatch)
            .where(col(SendBatch.campaign_id) == campaign_id, col(SendBatch.status) != DONE)
        ).scalar_one()
    )


def totals(session: Session, campaign_id: int) -> tuple[int, int]:
    """Across every batch of the send: (not eligible at their check, without an address)."""
    skipped, without = session.execute(
        select(
            func.coalesce(func.sum(SendBatch.skipped), 0),
            func.coalesce(func.sum(SendBatch.without_email), 0),
        ).where(col(SendBatch.campaign_id) == campaign_id)  # fmt: skip
    ).one()
    return int(skipped), int(without)


class SenderHeartbeat:
    """A thread refreshing this sender's heartbeat every ``every`` seconds while it runs,
    so a slow outbox never makes the others take its batch over."""

    def __init__(self, store: Store, campaign_id: int, holder: str, every: float) -> None:
        self.store, self.campaign_id, self.holder, self.every = store, campaign_id, holder, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sender heartbeat", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                with self.store.write() as session:
                    beat(session, self.campaign_id, self.holder, clock.now())
            except Exception:  # the store is busy or gone: the next beat tries again
                continue

    def __enter__(self) -> "SenderHeartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
