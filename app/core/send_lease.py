"""A send's lease and destination: one send of a campaign at a time, resumed where it began.

The lease: a running send names itself in ``Campaign.lease_holder``
(``host:pid``) and a thread of its own refreshes ``lease_beat_at`` every
``HEARTBEAT_SECONDS``, whatever the outbox is doing. A second send is refused
("being sent right now by host:pid") while the holder lives; it takes over
at once when the holder is a process of this host that is gone, else once
the heartbeat is ``LEASE_SECONDS`` old. A sender that finds its lease taken
stops claiming.

The destination: the first send of a campaign records where it delivers
(``Outbox.destination``); a resume into another outbox is refused
(``OtherDestination``), so nobody mailed or claimed before is mailed again
there (a Maildir cannot know what an SMTP server accepted, nor the reverse).
"""

import os
import socket
import threading
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from app.core import campaigns, clock
from app.core.errors import (
    InvalidInput,
    OtherDestination,
    RuleRefused,
    SendInProgress,
    WrongStatus,
)
from app.core.models import Campaign
from app.core.store import Store

# A send's heartbeat thread refreshes its lease this often while it runs ...
HEARTBEAT_SECONDS = 3.0
# ... and a lease whose heartbeat is older than this is taken over (a holder on this
# host whose process is gone is taken over at once).
LEASE_SECONDS = 15.0


def lease_name() -> str:
    """This process as a lease names it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, as another user's process (EPERM)
        return False
    return False


def holder_gone(holder: str | None, age: float, timeout: float) -> bool:
    """Whether a lease may be taken over: its holder is a process of this host that is
    gone, or its heartbeat (``age`` seconds old) is older than ``timeout``."""
    if holder:
        host, _, pid = holder.rpartition(":")
        if host == socket.gethostname() and pid.isdigit() and _process_gone(int(pid)):
            return True
    return age >= timeout


def check_sendable(
    session: Session,
    campaign: Campaign,
    *,
    now: datetime,
    lease: float,
    destination: str,
    reach: int | None,
    shared: bool = False,
) -> None:
    """Refuse a campaign that cannot be sent now, saying why.

    With ``shared`` (several senders share the send, on PostgreSQL) a live
    sender is no reason to refuse: the new one joins it.
    """
    problems = campaigns.send_problems(session, campaign, reach=reach)
    for where, message in problems:
        if where == "campaign":  # sent or cancelled
            raise WrongStatus(message, field="campaign")
    if [where for where, _message in problems] == ["reach"]:  # reaches nobody: it stays a draft
        raise RuleRefused(problems[0][1], field="reach")
    if problems:
        where, first = problems[0]
        rest = "; ".join(message for _w, message in problems[1:])
        raise InvalidInput(
            f"Campaign {campaign.name!r} cannot be sent: {first}" + (f"; {rest}" if rest else ""),
            field=where,
        )
    if campaign.status not in campaigns.SENDABLE:
        raise WrongStatus(f"Campaign {campaign.name!r} is {campaign.status}", field="campaign")
    if campaign.status == campaigns.SENDING and not shared:
        beat = campaign.lease_beat_at or campaign.updated_at
        age = (now - beat).total_seconds()
        if not holder_gone(campaign.lease_holder, age, lease):
            wait = int(lease - age) + 1
            raise SendInProgress(
                f"Campaign {campaign.name!r} is being sent right now by "
                f"{campaign.lease_holder or 'another process'} (last heartbeat "
                f"{max(0, int(age))} s ago); if that send has stopped, run this again "
                f"in {wait} s to resume it",
                holder=campaign.lease_holder or "another process",
                field="campaign",
            )
    if campaign.destination and campaign.destination != destination:
        raise OtherDestination(
            f"Campaign {campaign.name!r} was first sent to {campaign.destination}; it can only "
            f"be resumed there, not in {destination} (people it mailed would be mailed again)",
            field="outbox",
        )


def beat(session: Session, campaign_id: int, holder: str, now: datetime) -> bool:
    """Refresh the lease if ``holder`` still has it; False when another send took it."""
    result = session.execute(
        update(Campaign)
        .where(col(Campaign.id) == campaign_id, col(Campaign.lease_holder) == holder)
        .values(lease_beat_at=now, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def current_status(session: Session, campaign_id: int, holder: str | None = None) -> str:
    """The campaign's status; with ``holder``, "sending" only while that holder has the lease."""
    status, lease_holder = session.execute(
        select(Campaign.status, Campaign.lease_holder).where(col(Campaign.id) == campaign_id)
    ).one()
    if holder is not None and status == campaigns.SENDING and lease_holder != holder:
        return "taken over"
    return str(status)


class Heartbeat:
    """A thread refreshing a send's lease every ``HEARTBEAT_SECONDS`` while it runs, so a
    slow outbox (an SMTP server taking its time) never lets the lease run out."""

    def __init__(
        self, store: Store, campaign_id: int, holder: str, every: float | None = None
    ) -> None:
        self.store, self.campaign_id, self.holder = store, campaign_id, holder
        self.every = every
        self.stop = threading.Event()
        self.lost = threading.Event()
        self.thread = threading.Thread(target=self._run, name="send heartbeat", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.every or HEARTBEAT_SECONDS):
            try:
                with self.store.write() as session:
                    if not beat(session, self.campaign_id, self.holder, clock.now()):
                        self.lost.set()
                        return
            except Exception:  # the store is busy or gone: the next beat tries again
                continue

    def __enter__(self) -> "Heartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
