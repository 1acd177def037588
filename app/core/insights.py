"""Insights: how unsubscribes move over time, by group, source, campaign and reason.

Counts come from the ledger's daily counts (``models.LedgerDay``, kept in each
event's own transaction by ``ledger_days``), so a window of 90 days reads a
few thousand rows whatever the size of the ledger. The reasons people give
(``Unsubscribe Reason`` events, few among all) are read from the ledger
through its index of names other than "Channel Unsubscribed".

A window of N days is today (UTC) and the N-1 days before it.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, text
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from app.core import clock
from app.core.errors import InvalidInput
from app.core.event_names import UNSUBSCRIBE_REASON
from app.core.models import (
    OTHER_NAMES,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Campaign,
    Delivery,
    Event,
    Group,
    LedgerDay,
)
from app.core.unsubscribe_reasons import REASONS, reason_label

BY = ("group", "source", "campaign", "reason")
# The sources the insights always list (DESIGN.md, "Inbound mail, evidence, insights"),
# with 0 when none came that way; others found in the window follow them.
SOURCES = ("one_click", "landing_page", "mailto", "complaint", "bounce", "console", "cli", "import")
ALL_EMAIL = "(all email)"
MAX_DAYS = 3660


@dataclass(frozen=True)
class InsightRow:
    """One key (a group, source, campaign or reason) and its unsubscribes in the window."""

    key: str
    unsubscribes: int
    id: int | None = None
    sent: int | None = None
    # A reason's stored code (``too_many_emails``); the key is its words.
    code: str | None = None

    @property
    def per_thousand_sent(self) -> float | None:
        """Unsubscribes per thousand messages sent (campaigns only)."""
        if self.sent is None:
            return None
        return round(1000 * self.unsubscribes / self.sent, 2) if self.sent else 0.0

    def to_json(self, by: str) -> dict[str, Any]:
        """The JSON object ``insights --json`` prints: the key under its kind's name."""
        shape: dict[str, Any] = {by: self.key, "unsubscribes": self.unsubscribes}
        if by in ("group", "campaign"):
            shape["id"] = self.id
        if by == "reason":
            shape["code"] = self.code
        if by == "campaign":
            shape["sent"] = self.sent
            shape["per_thousand_sent"] = self.per_thousand_sent
        return shape


@dataclass(frozen=True)
class GroupSeries:
    """One group's unsubscribes and net change (subscribes minus unsubscribes) per day."""

    group_id: int
    name: str
    unsubscribes: list[int]
    net: list[int]


@dataclass(frozen=True)
class Insights:
    """Everything the console's Insights section shows, as plain data."""

    days: list[date]
    total: list[int]
    groups: list[GroupSeries]
    by_source: list[InsightRow]
    by_campaign: list[InsightRow]
    by_reason: list[InsightRow]
    by_group: list[InsightRow] = field(default_factory=list)


def window(days: int, *, now: datetime | None = None) -> list[date]:
    """The days of a window of ``days`` days ending today (UTC), oldest first."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"--days {days}: give a number of days from 1 to {MAX_DAYS}")
    today = (now or clock.now()).date()
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def _day_rows(session: Session, first: date) -> list[tuple[str, int, str, int, str, int]]:
    # Six columns: SQLAlchemy's select (SQLModel's types stop at four).
    rows = session.execute(
        core_select(
            col(LedgerDay.day),
            col(LedgerDay.group_id),
            col(LedgerDay.source),
            col(LedgerDay.campaign_id),
            col(LedgerDay.state),
            col(LedgerDay.events),
        ).where(col(LedgerDay.day) >= first.isoformat())
    ).all()
    return [(d, int(g), s, int(c), st, int(n)) for d, g, s, c, st, n in rows]


def _group_names(session: Session) -> dict[int, str]:
    return {int(gid): name for gid, name in session.execute(select(Group.id, Group.name)).all()}


def _ranked(counts: dict[Any, int]) -> list[tuple[Any, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))


def by_group(session: Session, rows: list[tuple[str, int, str, int, str, int]]) -> list[InsightRow]:
    """Unsubscribes per group (channel-wide ones as ``(all email)``), most first."""
    counts: dict[int, int] = {}
    for _day, gid, _source, _cid, state, n in rows:
        if state == UNSUBSCRIBED:
            counts[gid] = counts.get(gid, 0) + n
    names = _group_names(session)
    return [
        InsightRow(
            key=names.get(gid, f"group #{gid}") if gid else ALL_EMAIL,
            unsubscribes=n,
            id=gid or None,
        )
        for gid, n in _ranked(counts)
    ]


def by_source(rows: list[tuple[str, int, str, int, str, int]]) -> list[InsightRow]:
    """Unsubscribes per source: the eight named sources always, then any other seen."""
    counts = dict.fromkeys(SOURCES, 0)
    for _day, _gid, source, _cid, state, n in rows:
        if state == UNSUBSCRIBED:
            counts[source] = counts.get(source, 0) + n
    named = sorted(SOURCES, key=lambda s: (-counts[s], SOURCES.index(s)))
    others = [s for s, _ in _ranked({s: n for s, n in counts.items() if s not in SOURCES})]
    return [InsightRow(key=s, unsubscribes=counts[s]) for s in (*named, *others)]


def by_campaign(
    session: Session, rows: list[tuple[str, int, str, int, str, int]]
) -> list[InsightRow]:
    """Unsubscribes each campaign caused, with messages sent and the rate per thousand."""
    counts: dict[int, int] = {}
    for _day, _gid, _source, cid, state, n in rows:
        if cid and state == UNSUBSCRIBED:
            counts[cid] = counts.get(cid, 0) + n
    if not counts:
        return []
    names = {
        int(cid): name
        for cid, name in session.execute(
            select(Campaign.id, Campaign.name).where(col(Campaign.id).in_(list(counts)))
        ).all()
    }
    sent = {
        int(cid): int(n)
        for cid, n in session.execute(
            select(Delivery.campaign_id, func.count())
            .where(col(Delivery.campaign_id).in_(list(counts)), col(Delivery.status) == "sent")
            .group_by(col(Delivery.campaign_id))
        ).all()
    }
    found = [
        InsightRow(
            key=names.get(cid, f"campaign #{cid}"), unsubscribes=n, id=cid, sent=sent.get(cid, 0)
        )
        for cid, n in counts.items()
    ]
    return sorted(found, key=lambda r: (-(r.per_thousand_sent or 0), -r.unsubscribes, r.key))


def by_reason(session: Session, first: date) -> list[InsightRow]:
    """The reasons people gave after leaving, most given first (every choice listed)."""
    since = datetime.combine(first, time.min, tzinfo=UTC)
    rows = session.execute(
        select(Event.properties)
        .where(col(Event.name) == UNSUBSCRIBE_REASON)
        .where(text(OTHER_NAMES))
        .where(col(Event.ts) >= since)
    ).all()
    counts = dict.fromkeys(REASONS, 0)
    for (props,) in rows:
        code = (props or {}).get("Reason")
        if code in counts:
            counts[code] += 1
    return [
        InsightRow(key=reason_label(code), unsubscribes=n, code=code)
        for code, n in sorted(counts.items(), key=lambda i: (-i[1], REASONS.index(i[0])))
    ]


def unsubscribes_by(
    session: Session, *, by: str, days: int, now: datetime | None = None
) -> list[InsightRow]:
    """Unsubscribes in the last ``days`` days by group, source, campaign or reason."""
    if by not in BY:
        raise InvalidInput(f"--by {by}: give one of {', '.join(BY)}")
    first = window(days, now=now)[0]
    if by == "reason":
        return by_reason(session, first)
    rows = _day_rows(session, first)
    if by == "group":
        return by_group(session, rows)
    if by == "source":
        return by_source(rows)
    return by_campaign(session, rows)


def group_series(
    session: Session, *, days: int, now: datetime | None = None
) -> tuple[list[date], list[GroupSeries]]:
    """Each active group's unsubscribes and net change per day (the Groups table's sparkline)."""
    span = window(days, now=now)
    return span, _series(session, span, _day_rows(session, span[0]))


def _series(
    session: Session, span: list[date], rows: list[tuple[str, int, str, int, str, int]]
) -> list[GroupSeries]:
    slot = {d.isoformat(): i for i, d in enumerate(span)}
    groups = session.execute(
        select(Group.id, Group.name).where(col(Group.status) == "active").order_by(col(Group.id))
    ).all()
    unsubs = {int(gid): [0] * len(span) for gid, _ in groups}
    net = {int(gid): [0] * len(span) for gid, _ in groups}
    for day, gid, _source, _cid, state, n in rows:
        i = slot.get(day)
        if i is None or gid not in net:
            continue
        if state == UNSUBSCRIBED:
            unsubs[gid][i] += n
            net[gid][i] -= n
        elif state == SUBSCRIBED:
            net[gid][i] += n
    return [
        GroupSeries(group_id=int(gid), name=name, unsubscribes=unsubs[int(gid)], net=net[int(gid)])
        for gid, name in groups
    ]


def insights(session: Session, *, days: int, now: datetime | None = None) -> Insights:
    """The console's Insights section in one read: the daily chart and the three tables."""
    span = window(days, now=now)
    rows = _day_rows(session, span[0])
    slot = {d.isoformat(): i for i, d in enumerate(span)}
    total = [0] * len(span)
    for day, _gid, _source, _cid, state, n in rows:
        if state == UNSUBSCRIBED and day in slot:
            total[slot[day]] += n
    return Insights(
        days=span,
        total=total,
        groups=_series(session, span, rows),
        by_source=by_source(rows),
        by_campaign=by_campaign(session, rows),
        by_reason=by_reason(session, span[0]),
        by_group=by_group(session, rows),
    )
