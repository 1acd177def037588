"""Simulated live traffic for ``subgroups demo``: people changing their minds.

A daemon thread that, every half second to two seconds, picks a random
profile and a random active group (now and then the whole email channel) and
flips that person's state through ``subscriptions.set_state`` with source
``simulator``, so the live event log and the counts move during a
walkthrough. A share of the beats (``inbound_share``) is mail coming back
instead, through the same core functions ``subgroups inbound`` calls: a
``mailto:`` unsubscribe (Source ``mailto``), a bounce (``bounce``: mostly
soft, now and then hard) or a spam complaint (``complaint``), for a random
campaign's message. Each change is its own write session, so it takes the write
lock only for a moment and the console's own writes are never kept waiting
for long.

The thread never raises: a store that is busy ("database is locked") or has
nothing to change just skips a beat. Errors are logged to this module's
logger, which stays silent unless the application configures logging (a
stray line on stderr would tear the console's screen).
"""

import logging
import random
import threading

from sqlalchemy import func
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from app.core import bounces, inbound
from app.core.ledger import EventRecord, to_record
from app.core.models import (
    STATUS_ACTIVE,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Campaign,
    Group,
    GroupState,
    Profile,
)
from app.core.profiles import effective_state
from app.core.seed import RESUBSCRIBE_REASONS, UNSUBSCRIBE_REASONS
from app.core.store import Store
from app.core.subscriptions import set_state

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

SIMULATOR = "simulator"
# What comes back by mail, and how often of the inbound beats.
INBOUND_KINDS: tuple[tuple[str, float], ...] = (
    ("mailto", 0.5),
    ("bounce", 0.35),
    ("complaint", 0.15),
)
SOFT_BOUNCES = (("4.2.2", "smtp; 452 4.2.2 mailbox full"), ("4.4.1", "smtp; 421 no answer"))
HARD_BOUNCES = (("5.1.1", "smtp; 550 5.1.1 user unknown"),)
HARD_SHARE = 0.3


class TrafficSimulator:
    """Background subscription changes against a store, started and stopped by the demo.

    ``interval`` is the range, in seconds, of the random pause between two
    changes; ``channel_share`` the share of changes that concern all email
    rather than one group; ``reason_share`` the share that carry a reason;
    ``inbound_share`` the share of beats that are mail coming back (mailto,
    bounce, complaint) rather than a change of mind; ``seed`` makes the
    choices repeatable (tests).
    """

    def __init__(
        self,
        store: Store,
        *,
        interval: tuple[float, float] = (0.5, 2.0),
        channel_share: float = 0.03,
        reason_share: float = 0.35,
        inbound_share: float = 0.15,
        seed: int | None = None,
    ) -> None:
        low, high = interval
        if not 0 <= low <= high:
            raise ValueError(f"interval must be (low, high) with 0 <= low <= high, not {interval}")
        self.store = store
        self.interval = (low, high)
        self.channel_share = channel_share
        self.reason_share = reason_share
        self.inbound_share = inbound_share
        self._rng = random.Random(seed)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Read from other threads for display; plain ints are safe to read.
        self.changes = 0
        self.skipped = 0

    @property
    def running(self) -> bool:
        """True while the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start changing states in the background (a second start does nothing)."""
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name="subgroups-traffic-simulator", daemon=True
        )
        self._thread.start()

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop and wait for the thread: at most one change in flight finishes first."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> "TrafficSimulator":
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        # Event.wait returns True as soon as stop() is called: no sleeping through it.
        while not self._stopping.wait(self._rng.uniform(*self.interval)):
            try:
                if self.step() is None:
                    self.skipped += 1
                else:
                    self.changes += 1
            except OperationalError as exc:  # locked or busy store: skip a beat
                self.skipped += 1
                log.debug("traffic simulator skipped a change: %s", exc)
            except Exception:  # never let the demo's background thread die noisily
                self.skipped += 1
                log.exception("traffic simulator: a change failed")

    def step(self) -> EventRecord | None:
        """Make one change now, in its own write session.

        Returns the ledger event written, or None when the store has no
        profile yet.
        """
        rng = self._rng
        with self.store.write() as session:
            profile = self._random_profile(session)
            if profile is None:
                return None
            assert profile.id is not None
            # Drawn only when asked for, so a seed's changes of mind stay as they were.
            if self.inbound_share and rng.random() < self.inbound_share:
                return self._mail_back(session, profile.id)
            groups = list(
                session.exec(select(Group).where(col(Group.status) == STATUS_ACTIVE)).all()
            )
            group = None if not groups or rng.random() < self.channel_share else rng.choice(groups)
            if group is None:
                current = profile.all_email
            else:
                stored = session.get(GroupState, (profile.id, group.id))
                current = effective_state(group.policy, stored.state if stored else None)
            new = UNSUBSCRIBED if current == SUBSCRIBED else SUBSCRIBED
            reason = None
            if rng.random() < self.reason_share:
                reason = rng.choice(
                    RESUBSCRIBE_REASONS if new == SUBSCRIBED else UNSUBSCRIBE_REASONS
                )
            event = set_state(
                session=session,
                profile=profile,
                group=group,
                status=new,
                source=SIMULATOR,
                actor=SIMULATOR,
                reason=reason,
            )
            return to_record(event) if event is not None else None

    def _random_profile(self, session: Session) -> Profile | None:
        """A profile picked at random, cheaply even among a million (ids are dense)."""
        top = session.exec(select(func.max(Profile.id))).one()
        if not top:
            return None
        pick = self._rng.randint(1, int(top))
        return session.exec(
            select(Profile).where(col(Profile.id) >= pick).order_by(col(Profile.id)).limit(1)
        ).first()

    def _mail_back(self, session: Session, profile_id: int) -> EventRecord | None:
        """Mail coming back about a random campaign's message to the person."""
        rng = self._rng
        top = session.exec(select(func.max(Campaign.id))).one()
        campaign_id = rng.randint(1, int(top)) if top else None
        kind = rng.choices([k for k, _ in INBOUND_KINDS], [w for _, w in INBOUND_KINDS])[0]
        if kind == "bounce":
            hard = rng.random() < HARD_SHARE
            status, diagnostic = rng.choice(HARD_BOUNCES if hard else SOFT_BOUNCES)
            bounce = bounces.Bounce(status, "failed", diagnostic, "")
            return bounces.record_bounce(
                session,
                profile_id=profile_id,
                campaign_id=campaign_id,
                bounce=bounce,
                actor=SIMULATOR,
            )
        if kind == "mailto":
            _scope, events = inbound.mailto_unsubscribe(
                session, profile_id=profile_id, campaign_id=campaign_id, actor=SIMULATOR
            )
        else:
            events = inbound.complaint(
                session, profile_id=profile_id, campaign_id=campaign_id, actor=SIMULATOR
            )
        return events[0] if events else None
