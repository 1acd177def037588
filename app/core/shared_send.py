"""Several sender processes sharing one send of a campaign (PostgreSQL).

``sending.send_campaign`` on PostgreSQL runs a ``SharedSender``: the same
batches, checks and delivery rows as a lone sender (``send_run._Sender``), but
the batches are the send's own rows (``send_batches``), cut by the first
sender, and each process takes the next batch nobody holds. So any number of
``campaigns send NAME`` processes, on one host or many, share the work:

- a sender joins a campaign that is "sending" rather than being refused;
- a batch whose sender's heartbeat stopped is taken over; the delivery rows
  its sender left claimed are settled first, as after a crash (Maildir: what
  the outbox holds is sent; SMTP: unknown, never sent again);
- a sender with nothing left to take waits while live senders hold batches
  (so it can take them over if they die), and ends when every batch is done;
- the last one marks the campaign sent, once, with the counts of every batch;
- a pause or cancel from anywhere stops every sender before its next batch;
  any sender resumes a paused send where it stood.
"""

import bisect
import threading
import time
from typing import Any

from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from app.core import actors, campaigns, clock, deliveries, eligibility, send_batches, send_lease
from app.core.deliveries import FAILED, SENT, UNKNOWN
from app.core.errors import SendInProgress
from app.core.mail import CampaignMail
from app.core.models import Campaign, Delivery
from app.core.send_batches import WAIT, Batch
from app.core.send_run import SendProgress, SendResult, _Sender

# How long a sender with nothing to take waits before it looks again.
WAIT_SECONDS = 0.2

# The campaigns this process is sending: a process is one sender (its batches carry
# its ``host:pid``), so a second send of one campaign in it is refused.
_SENDING_HERE: set[int] = set()
_SENDING_HERE_LOCK = threading.Lock()


class SharedSender(_Sender):
    """One process's part of a shared send; see the module docstring."""

    audience: list[int]

    def start(self) -> Campaign:
        """Check the campaign, move it to sending unless it is, cut it into batches if
        nobody has, and name this process among its senders."""
        reach = self._draft_reach()
        with self.store.read() as session:
            found = session.get(Campaign, self.campaign_id)
        if found is None:
            with self.store.read() as session:
                campaigns.get_campaign_by_id(session, self.campaign_id)  # raises UnknownCampaign
        self.audience = sorted(eligibility.audience_ids(self.store, found)) if found else []
        with self.store.write() as session:
            actors.require(session, actors.OWNER, "sending a campaign")
            campaign = session.get(
                Campaign, self.campaign_id, populate_existing=True, with_for_update=True
            )
            assert campaign is not None
            self.result.campaign_name = campaign.name
            now = clock.now()
            destination = self.outbox.destination
            send_lease.check_sendable(
                session, campaign, now=now, lease=self.lease, destination=destination,
                reach=reach, shared=True,
            )  # fmt: skip
            if campaign.status != campaigns.SENDING:
                campaign = campaigns.set_status(
                    session=session, campaign_id=self.campaign_id, status=campaigns.SENDING,
                    actor=self.actor, source=self.source, now=now,
                    Resumed=campaign.status != campaigns.DRAFT, Outbox=self.outbox.description,
                )  # fmt: skip
                campaign.destination = campaign.destination or destination
                campaign.lease_holder, campaign.lease_beat_at = self.holder, now
                session.add(campaign)
                session.flush()
            if not send_batches.has_batches(session, self.campaign_id):
                last = session.execute(
                    select(Delivery.batch)
                    .where(col(Delivery.campaign_id) == self.campaign_id)
                    .order_by(col(Delivery.batch).desc())
                    .limit(1)
                ).scalar()
                send_batches.cut(
                    session, self.campaign_id, self.audience, self.batch_size, int(last or 0) + 1
                )
            send_batches.join(session, self.campaign_id, self.holder, now)
        return campaign

    def heartbeat_thread(self) -> send_batches.SenderHeartbeat:
        every = self.heartbeat or send_lease.HEARTBEAT_SECONDS
        return send_batches.SenderHeartbeat(self.store, self.campaign_id, self.holder, every)

    def run(self) -> SendResult:
        with _SENDING_HERE_LOCK:
            if self.campaign_id in _SENDING_HERE:
                raise SendInProgress(
                    f"Campaign {self.campaign_id} is being sent right now by this process "
                    f"({self.holder})",
                    holder=self.holder,
                    field="campaign",
                )
            _SENDING_HERE.add(self.campaign_id)
        try:
            return super().run()
        finally:
            # Whatever happened: the batch this process still holds goes back to todo.
            try:
                with self.store.write() as session:
                    send_batches.leave(session, self.campaign_id, self.holder)
            except Exception:  # the store is gone: the heartbeat stops, others take over
                pass
            with _SENDING_HERE_LOCK:
                _SENDING_HERE.discard(self.campaign_id)

    def pause(self, reason: str) -> None:
        """Pause the send for every sender (unless it already left "sending")."""
        with self.store.write() as session:
            if send_lease.current_status(session, self.campaign_id) != campaigns.SENDING:
                return
            campaign = campaigns.set_status(
                session=session, campaign_id=self.campaign_id, status=campaigns.PAUSED,
                actor=self.actor, source=self.source, Reason=reason,
                Sent=deliveries.count(session, self.campaign_id, SENT),
            )  # fmt: skip
            campaign.lease_holder = None
            session.add(campaign)
            send_batches.leave(session, self.campaign_id, self.holder)
        self.result.status = campaigns.PAUSED

    def finish(self) -> None:
        """Mark the campaign sent, once, when every batch is done (whichever sender is last)."""
        with self.store.write() as session:
            campaign = session.get(
                Campaign, self.campaign_id, populate_existing=True, with_for_update=True
            )
            assert campaign is not None
            sent = deliveries.count(session, self.campaign_id, SENT)
            self.result.sent_before = sent - self.result.sent - self.result.recovered
            if campaign.status != campaigns.SENDING:  # another sender finished it, or paused
                self.result.status = campaign.status
                self.result.finished = campaign.status == campaigns.SENT
                self.result.cancelled = not self.result.finished
                return
            skipped, without_email = send_batches.totals(session, self.campaign_id)
            counts: dict[str, Any] = {
                "Sent": sent,
                "Skipped": skipped,
                "Without Email": without_email,
                "Unknown": deliveries.count(session, self.campaign_id, UNKNOWN),
                "Failed": deliveries.count(session, self.campaign_id, FAILED),
                "Outbox": self.outbox.description,
            }
            self.mark_sent(session, counts)
            send_batches.end(session, self.campaign_id)
        self.result.finished = True
        self.result.status = campaigns.SENT

    def _members(self, batch: Batch) -> list[int]:
        """The audience members in the batch's range, as this process computed the audience."""
        lo = 0 if batch.after_id is None else bisect.bisect_right(self.audience, batch.after_id)
        hi = (
            len(self.audience)
            if batch.last_id is None
            else bisect.bisect_right(self.audience, batch.last_id)
        )
        return self.audience[lo:hi]

    def _claimed_in(self, batch: Batch) -> SelectOfScalar[int]:
        """The profiles of the batch's range that have a delivery row (by any send)."""
        query = select(Delivery.profile_id).where(col(Delivery.campaign_id) == self.campaign_id)
        if batch.after_id is not None:
            query = query.where(col(Delivery.profile_id) > batch.after_id)
        if batch.last_id is not None:
            query = query.where(col(Delivery.profile_id) <= batch.last_id)
        return query

    def _batches(self, campaign: Campaign) -> None:
        with self.store.read() as session:
            mail = CampaignMail.prepare(session, campaign)
        done = 0
        while True:
            if self.cancelled is not None and self.cancelled():
                self.result.cancelled = True
                self.pause(f"cancelled by {self.actor}")
                return
            now = clock.now()
            with self.store.write() as session:
                status = send_lease.current_status(session, self.campaign_id)
                batch: Batch | str | None = None
                if status == campaigns.SENDING:
                    batch = send_batches.claim_next(
                        session, self.campaign_id, self.holder, now=now, takeover=self.lease
                    )
                if isinstance(batch, Batch):
                    recovered, unknown = deliveries.settle_crashed(
                        session, self.campaign_id, self.outbox,
                        after_id=batch.after_id, last_id=batch.last_id,
                    )  # fmt: skip
                    self.result.recovered += recovered
                    self.result.unknown += unknown
                    had = set(session.execute(self._claimed_in(batch)).scalars())
                    ids = [pid for pid in self._members(batch) if pid not in had]
                    before = (self.result.skipped, self.result.without_email)
                    recipients = self.claim_in(session, campaign, mail, ids, batch.number, now)
            if batch is None:  # every batch is done, or the send left "sending" meanwhile
                self.finish()
                return
            if batch == WAIT:
                time.sleep(WAIT_SECONDS)
                continue
            assert isinstance(batch, Batch)
            deferred_before = self.result.deferred
            stop = self.deliver(mail, recipients, batch.number) if recipients else None
            if stop is None and self.result.deferred > deferred_before:
                # The server deferred some (4xx after the retries; they are unclaimed): the
                # batch is not done. The send pauses, the batch goes back to todo, and the
                # next run's claim of it retries just those.
                stop = self.deferred_error()
            if stop is not None:
                raise stop  # paused; the batch goes back to todo
            with self.store.write() as session:
                send_batches.mark_done(
                    session, self.campaign_id, batch, self.holder,
                    skipped=self.result.skipped - before[0],
                    without_email=self.result.without_email - before[1],
                )  # fmt: skip
            done += len(ids)
            self.result.total += len(ids)
            self.result.batches += 1
            if self.progress is not None:
                self.progress(
                    SendProgress(
                        done=done, total=len(self.audience), sent=self.result.sent,
                        skipped=self.result.skipped, batch=batch.number,
                        without_email=self.result.without_email, failed=self.result.failed,
                    )
                )  # fmt: skip
