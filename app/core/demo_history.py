"""A month of history for ``subgroups demo``: so the Insights charts are not empty.

The sample data tells its story through the import (every change's source is
``import``) and one campaign sent two days before now. A demo also needs the
everyday traffic of the last month: people leaving through one-click links,
the landing page and ``mailto:`` replies, a few complaints and bounces,
admins changing a state in the console or the CLI, some coming back, and the
reasons people gave. This writes that, backdated over the last 30 days, in
one transaction, with a fixed random seed (the same history every time for
the same sample).

Only the demo calls it: the sample data the tests and screenshots load stays
as it was. The events are appended after the sample's (their ids are later,
their timestamps earlier); every change goes through ``set_state`` and every
reason through ``record_reason``, so the ledger, the states and the daily
counts agree as for any other change.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select

from app.core import clock
from app.core.landing import RECIPIENT
from app.core.models import STATUS_ACTIVE, SUBSCRIBED, UNSUBSCRIBED, Group, Profile
from app.core.store import Store
from app.core.subscriptions import set_state
from app.core.unsubscribe_reasons import REASONS, record_reason

HISTORY_SEED = 20_261_205
DAYS = 30
# Unsubscribes by source, as a month of mail brings them (weights).
LEAVING = (
    ("one_click", 34),
    ("landing_page", 22),
    ("mailto", 14),
    ("console", 6),
    ("cli", 4),
    ("import", 4),
    ("complaint", 4),
    ("bounce", 3),
)
# Of the people who leave on the landing page or by one click, this share says why.
REASON_SHARE = 0.45
REASON_WEIGHTS = (40, 30, 10, 20)
OTHER_DETAILS = (
    "I get the same news elsewhere",
    "Moving to another address",
    "Too salesy lately",
    "Only wanted the one guide",
)
ADMIN_SOURCES = ("console", "cli", "import")


@dataclass(frozen=True)
class HistorySummary:
    """What the month of history wrote."""

    unsubscribes: int
    resubscribes: int
    reasons: int


@dataclass(frozen=True)
class _Change:
    """One change of the month, decided before any is written (they go in time order)."""

    ts: datetime
    person: Profile
    group: Group | None
    status: str
    source: str
    reason: str | None
    details: str | None


def _per_day(rng: random.Random, day: int) -> int:
    """How many changes day ``day`` (0: today) sees: weekdays busier, two newsletter spikes."""
    busy = 9 if (day % 7) not in (1, 2) else 4
    spike = 30 if day in (22, 9) else 12 if day in (21, 8) else 0
    return busy + spike + rng.randint(0, 5)


def add_month_of_history(
    *, store: Store, actor: str, now: datetime | None = None, seed: int = HISTORY_SEED
) -> HistorySummary:
    """Write the last ``DAYS`` days of everyday traffic into a store that has the sample data."""
    now = now or clock.now()
    rng = random.Random(seed)
    sources, weights = zip(*LEAVING, strict=True)
    unsubscribes = resubscribes = reasons = 0
    with store.write() as session:
        groups = list(
            session.exec(
                select(Group).where(col(Group.status) == STATUS_ACTIVE).order_by(col(Group.id))
            ).all()
        )
        people = list(session.exec(select(Profile).order_by(col(Profile.id))).all())
        if not groups or not people:
            return HistorySummary(0, 0, 0)
        # Some groups are left more than others.
        group_weights = [len(groups) - i for i in range(len(groups))]
        plan: list[_Change] = []
        for day in range(DAYS - 1, -1, -1):
            start = now - timedelta(days=day)
            for _ in range(_per_day(rng, day)):
                coming_back = rng.random() < 0.18
                source = "landing_page" if coming_back else rng.choices(sources, weights)[0]
                group = rng.choices(groups, group_weights)[0]
                # Complaints, bounces and some mailto replies leave all email.
                channel = source in ("complaint", "bounce") or (
                    source == "mailto" and rng.random() < 0.3
                )
                says_why = source in ("one_click", "landing_page") and rng.random() < REASON_SHARE
                code = rng.choices(REASONS, REASON_WEIGHTS)[0] if says_why else None
                plan.append(
                    _Change(
                        ts=start - timedelta(seconds=rng.uniform(3600, 86_000)),
                        person=rng.choice(people),
                        group=None if channel else group,
                        status=SUBSCRIBED if coming_back else UNSUBSCRIBED,
                        source=source,
                        reason=code,
                        details=rng.choice(OTHER_DETAILS) if code == "other" else None,
                    )
                )
        # Written in time order, so the ledger (and the log pane) reads as it happened.
        for change in sorted(plan, key=lambda c: c.ts):
            event = set_state(
                session=session,
                profile=change.person,
                group=change.group,
                status=change.status,
                source=change.source,
                actor=actor if change.source in ADMIN_SOURCES else RECIPIENT,
                now=change.ts,
            )
            if event is None:
                continue  # already so: nothing changed
            if change.status == SUBSCRIBED:
                resubscribes += 1
                continue
            unsubscribes += 1
            if change.reason is not None:
                assert change.person.id is not None
                record_reason(
                    session=session,
                    profile_id=change.person.id,
                    campaign_id=None,
                    reason=change.reason,
                    details=change.details,
                    now=change.ts + timedelta(seconds=30),
                )
                reasons += 1
    return HistorySummary(unsubscribes, resubscribes, reasons)
