"""Bounces: what a delivery status notification says of an address, and keeping it.

A bounce is recorded as an ``Email Bounced`` event (Source ``bounce``) with
the report's status and diagnostic, and in the profile's ``Deliverability``
row. The rule (README, "Inbound mail"):

- a hard bounce (status 5.x.x) makes the address undeliverable at once;
- soft bounces (4.x.x) count while they come in a row, and
  ``SOFT_BOUNCE_LIMIT`` in a row make it undeliverable too. "In a row" means
  for messages of different campaigns with no other message delivered to
  the person in between: a campaign sent to them between the last counted
  soft bounce's and this one (that did not bounce) starts the count again
  at 1. A repeated report for the message already counted counts once.

An undeliverable address stays out of every campaign (a step of the
eligibility chain, after the all-email opt-outs): its event carries
``Deliverable: false``, which is what the segment index follows.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyroaring import BitMap
from sqlalchemy import bindparam, insert, select, text, update
from sqlmodel import Session

from app.core import bulk, clock, ledger
from app.core.bitsets import read_ids
from app.core.errors import UnknownProfile
from app.core.event_names import EMAIL_BOUNCED
from app.core.models import Deliverability

SOFT_BOUNCE_LIMIT = 3
HARD, SOFT = "hard", "soft"
# Who acts when a bounce is recorded: the receiving mail system, not a person.
MAIL_SYSTEM = "mail system"
STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")


@dataclass(frozen=True)
class Bounce:
    """One failed recipient of a delivery status notification (RFC 3464)."""

    status: str  # "5.1.1"
    action: str  # "failed" (a "delayed" report is not a bounce)
    diagnostic: str
    recipient: str

    @property
    def kind(self) -> str:
        """``hard`` for a permanent failure (5.x.x), else ``soft``."""
        return HARD if self.status.startswith("5") else SOFT


def _between_deliveries(
    session: Session, profile_id: int, earlier_campaign: int, later_campaign: int
) -> bool:
    """Whether a message of another campaign went to the person between these two campaigns'."""
    sent = dict(
        session.execute(
            text(
                "SELECT campaign_id, sent_at FROM delivery WHERE profile_id = :p "
                "AND campaign_id IN (:a, :b)"
            ),
            {"p": profile_id, "a": earlier_campaign, "b": later_campaign},
        ).all()
    )
    if earlier_campaign not in sent or later_campaign not in sent:
        return False  # no record of one of them: nothing says a delivery came between
    others = [
        int(i)
        for i in session.execute(
            text("SELECT id FROM campaign WHERE id NOT IN (:a, :b)"),
            {"a": earlier_campaign, "b": later_campaign},
        ).scalars()
    ]
    # By (campaign, profile): the delivery table's unique index answers each one.
    low, high = sorted((sent[earlier_campaign], sent[later_campaign]))
    for campaign_id in others:
        found = session.execute(
            text(
                "SELECT 1 FROM delivery WHERE campaign_id = :c AND profile_id = :p "
                "AND sent_at > :low AND sent_at < :high"
            ),
            {"c": campaign_id, "p": profile_id, "low": low, "high": high},
        ).first()
        if found is not None:
            return True
    return False


_DELIVERABILITY = Deliverability.__table__  # type: ignore[attr-defined]
_ROW_KEYS = (
    "undeliverable",
    "soft_bounces",
    "last_campaign_id",
    "last_bounce_at",
    "undeliverable_since",
)
_INSERT_ROW = insert(_DELIVERABILITY)
# SET takes its columns from each row's keys (all of ``_ROW_KEYS``).
_UPDATE_ROW = update(_DELIVERABILITY).where(_DELIVERABILITY.c.profile_id == bindparam("pid"))


@dataclass(frozen=True)
class BounceReport:
    """One bounce to record: whose address, the campaign its message was of, what it said."""

    profile_id: int
    campaign_id: int | None
    bounce: Bounce


def _next_row(
    session: Session, report: BounceReport, row: dict[str, Any] | None, ts: datetime
) -> dict[str, Any]:
    """The person's deliverability row after this bounce (the rule in the module docstring)."""
    bounce, campaign_id = report.bounce, report.campaign_id
    undeliverable = bool(row["undeliverable"]) if row else False
    soft_bounces = int(row["soft_bounces"]) if row else 0
    last_campaign_id = row["last_campaign_id"] if row else None
    since = row["undeliverable_since"] if row else None
    counted = True
    if bounce.kind == HARD:
        undeliverable = True
    elif campaign_id is not None and campaign_id == last_campaign_id and soft_bounces:
        counted = False  # the same message reported again
    else:
        in_a_row = soft_bounces > 0 and not (
            campaign_id is not None
            and last_campaign_id is not None
            and _between_deliveries(session, report.profile_id, last_campaign_id, campaign_id)
        )
        soft_bounces = soft_bounces + 1 if in_a_row else 1
        if soft_bounces >= SOFT_BOUNCE_LIMIT:
            undeliverable = True
    return {
        "undeliverable": undeliverable,
        "soft_bounces": soft_bounces,
        "last_campaign_id": campaign_id if counted else last_campaign_id,
        "last_bounce_at": ts,
        "undeliverable_since": since or (ts if undeliverable else None),
    }


def record_bounces(
    session: Session,
    reports: Sequence[BounceReport],
    *,
    source: str = "bounce",
    actor: str = MAIL_SYSTEM,
    now: datetime | None = None,
) -> list[ledger.EventRecord | UnknownProfile]:
    """Record bounces, in order, in the caller's write transaction: per report its
    ``Email Bounced`` event, or ``UnknownProfile`` when the person is gone (nothing
    written for it; the others still are).

    One read of the people and their rows for the whole batch, one write of each
    kind and one many-row ledger append (``ledger.append_many``): the listener
    records bounces in bursts. Two reports about one person count in order.
    """
    ids = sorted({r.profile_id for r in reports})
    # On PostgreSQL the people stay locked until commit (as a one-click batch locks them).
    identities = dict(
        bulk.select_where_in(session, "SELECT id, identity FROM profile WHERE id", ids, lock=True)
    )
    # Through Core, so the times come back as datetimes (the raw SQLite row holds text).
    stored: dict[int, dict[str, Any]] = {}
    for chunk in bulk.chunks(ids, bulk.IN_CHUNK):
        for found in session.connection().execute(
            select(_DELIVERABILITY).where(_DELIVERABILITY.c.profile_id.in_(chunk))
        ):
            stored[found.profile_id] = {key: getattr(found, key) for key in _ROW_KEYS}
    ts = now or clock.now()
    rows: dict[int, dict[str, Any]] = {}
    events: list[ledger.NewEvent] = []
    for report in reports:
        identity = identities.get(report.profile_id)
        if identity is None:
            continue
        row = rows[report.profile_id] = _next_row(
            session, report, rows.get(report.profile_id) or stored.get(report.profile_id), ts
        )
        bounce = report.bounce
        properties = {
            "Channel": "Email",
            "Bounce Type": bounce.kind,
            "Status": bounce.status,
            "Action": bounce.action,
            "Diagnostic": bounce.diagnostic,
            "Soft Bounces": row["soft_bounces"],
            "Deliverable": not row["undeliverable"],
            "Source": source,
            "Campaign ID": report.campaign_id,
        }
        events.append(
            ledger.NewEvent(
                name=EMAIL_BOUNCED, source=source, actor=actor, properties=properties,
                identity=identity, profile_id=report.profile_id, campaign_id=report.campaign_id,
            )
        )  # fmt: skip
    conn = session.connection()
    new = [{"profile_id": pid, **row} for pid, row in rows.items() if pid not in stored]
    if new:
        conn.execute(_INSERT_ROW, new)
    changed = [{"pid": pid, **row} for pid, row in rows.items() if pid in stored]
    if changed:
        conn.execute(_UPDATE_ROW, changed)
    written = iter(ledger.append_many(session, events, now=ts))
    return [
        next(written)
        if report.profile_id in identities
        else UnknownProfile("this report names a recipient we no longer know", field="token")
        for report in reports
    ]


def record_bounce(
    session: Session,
    *,
    profile_id: int,
    campaign_id: int | None,
    bounce: Bounce,
    source: str = "bounce",
    actor: str = MAIL_SYSTEM,
    now: datetime | None = None,
) -> ledger.EventRecord:
    """Record one bounce of the person's address (``record_bounces``); returns its
    ``Email Bounced`` event. Raises ``UnknownProfile`` when the profile is gone
    (nothing written)."""
    (result,) = record_bounces(
        session, [BounceReport(profile_id, campaign_id, bounce)], source=source, actor=actor,
        now=now,
    )  # fmt: skip
    if isinstance(result, UnknownProfile):
        raise result
    return result


UNDELIVERABLE_SQL = "SELECT profile_id FROM deliverability WHERE undeliverable = ?"


def undeliverable_ids(session: Session) -> BitMap:
    """Every profile whose address is undeliverable (the segment index's bitmap)."""
    return read_ids(session, UNDELIVERABLE_SQL, (True,))


def undeliverable_among(session: Session, profile_ids: list[int]) -> set[int]:
    """The ids of ``profile_ids`` whose address is undeliverable."""
    found: set[int] = set()
    for start in range(0, len(profile_ids), 900):
        chunk = profile_ids[start : start + 900]
        marks = ", ".join(f":p{i}" for i in range(len(chunk)))
        rows = session.execute(
            text(
                f"SELECT profile_id FROM deliverability WHERE undeliverable = :u "
                f"AND profile_id IN ({marks})"
            ),
            {"u": True, **{f"p{i}": pid for i, pid in enumerate(chunk)}},
        ).scalars()
        found.update(int(pid) for pid in rows)
    return found


def bounce_of(session: Session, profile_id: int) -> Deliverability | None:
    """The profile's deliverability row (None: it never bounced)."""
    return session.get(Deliverability, profile_id)
