"""One sender's run of a campaign (``sending.send_campaign``): batches, never twice.

``send_campaign`` walks the campaign's audience (``eligibility.audience_ids``)
in batches. For each batch, in one write transaction:

1. ``eligibility.eligible_now`` checks who may still get it (an opt-out
   that committed since the send began is honoured from the next batch on);
2. the eligible people with a usable address are *claimed*: a ``Delivery``
   row each, status ``sending``. The row is unique per (campaign, profile)
   and per (campaign, address key), so nobody and no address can be claimed
   twice, by this send or another: of profiles sharing an address, the
   first claimed (the lowest id) gets the message.

Then, with no transaction open, the messages are made (``app.core.mail``)
and handed to the outbox; a second short write marks them ``sent`` (or
``failed`` when the server refused one for good). People who were not
eligible, or have no usable address, get no row: they are looked at again
if the send is resumed, so whoever is eligible by then gets it.

Stopping and resuming:

- cancel (``cancelled()`` answers true between batches): the current batch
  is finished, the campaign is *paused*;
- the outbox cannot take messages (SMTP server unreachable, disk full): the
  messages not handed over are unclaimed, the campaign is *paused* (event
  ``Campaign Paused`` with the reason) and ``OutboxUnavailable`` says so;
- any other error: the batch is settled as far as it is known, the campaign
  is paused, the error goes on;
- a crash (the process killed): rows stay ``sending``. The next send of the
  campaign settles them first: the Maildir outbox can tell which messages
  it holds (those are ``sent``; the others are unclaimed and checked
  again); an SMTP server cannot, so they are marked ``unknown`` and never
  sent again (at most once).

The lease (one send at a time) and the destination (a resume goes where the
first send went) are ``send_lease``'s.

At the end the campaign is *sent* and the ledger gets ``Campaign Sent`` with
the counts.
"""

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core import actors, bounces, campaigns, clock, deliveries, eligibility, send_lease
from app.core.deliveries import CLAIMED, DELIVERY, FAILED, SENT, UNKNOWN, chunks
from app.core.errors import InvalidInput, RuleRefused, UnknownProfile
from app.core.mail import CampaignMail, Recipient, usable_address
from app.core.models import Campaign, Delivery, Profile
from app.core.outbox import Outbox, OutboxUnavailable, OutgoingMessage
from app.core.outcomes import Outcome
from app.core.store import Store

BATCH_SIZE = 500


@dataclass(frozen=True)
class SendProgress:
    """How far a send is (for a progress bar): counts of this run so far."""

    done: int  # profiles of the audience looked at
    total: int  # profiles of the audience this run looks at
    sent: int
    skipped: int  # not eligible at their batch's check
    batch: int
    without_email: int = 0
    failed: int = 0


@dataclass
class SendResult:
    """What one run of ``send_campaign`` did, and how the campaign stands after it."""

    campaign_id: int
    campaign_name: str
    outbox: str
    total: int = 0  # audience members this run looked at (not sent before)
    sent: int = 0
    skipped: int = 0  # not eligible at their batch's check
    without_email: int = 0  # no usable email address
    same_address: int = 0  # their address got it under another profile
    failed: int = 0  # refused by the server for good
    unknown: int = 0  # left unclear by an earlier crash (SMTP): not sent again
    deferred: int = 0  # refused for now (4xx) after the retries: unclaimed, the next run retries
    deferred_reply: str = ""  # the server's last words on a deferred message
    recovered: int = 0  # found in the outbox after an earlier crash, now recorded as sent
    sent_before: int = 0  # sent by earlier runs of this campaign
    batches: int = 0
    cancelled: bool = False
    finished: bool = False  # the campaign is now sent
    seconds: float = 0.0
    status: str = ""

    @property
    def sent_total(self) -> int:
        """Messages of this campaign sent by every run, this one included."""
        return self.sent_before + self.recovered + self.sent

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign_name,
            "campaign_id": self.campaign_id,
            "status": self.status,
            "outbox": self.outbox,
            "total": self.total,
            "sent": self.sent,
            "skipped": self.skipped,
            "without_email": self.without_email,
            "same_address": self.same_address,
            "failed": self.failed,
            "unknown": self.unknown,
            "deferred": self.deferred,
            "recovered": self.recovered,
            "sent_before": self.sent_before,
            "sent_total": self.sent_total,
            "batches": self.batches,
            "cancelled": self.cancelled,
            "finished": self.finished,
            "seconds": round(self.seconds, 3),
        }


ProgressCallback = Callable[[SendProgress], None]


class _Sender:
    """One run of ``send_campaign`` (the function's state, split into steps)."""

    def __init__(
        self,
        *,
        store: Store,
        campaign_id: int,
        outbox: Outbox,
        actor: str,
        source: str,
        batch_size: int,
        progress: ProgressCallback | None,
        cancelled: Callable[[], bool] | None,
        lease: float,
        heartbeat: float | None = None,
    ) -> None:
        if batch_size < 1:
            raise InvalidInput("the batch size must be 1 or more", field="batch_size")
        self.store = store
        self.campaign_id = campaign_id
        self.outbox = outbox
        self.actor = actor
        self.source = source
        self.batch_size = batch_size
        self.progress = progress
        self.cancelled = cancelled
        self.lease = lease
        self.heartbeat = heartbeat
        self.holder = send_lease.lease_name()
        self.result = SendResult(campaign_id, "", outbox.description)

    # --- start and end ------------------------------------------------------------------

    def _draft_reach(self) -> int | None:
        """A draft's reach (a draft that reaches nobody is not sent); None for the others."""
        with self.store.read() as session:
            campaign = session.get(Campaign, self.campaign_id)
            if campaign is None or campaign.status != campaigns.DRAFT:
                return None
            try:
                return eligibility.reach(self.store, campaign).reach
            except RuleRefused:
                return None  # the segment was deleted: send_problems says so

    def start(self) -> Campaign:
        """Check the campaign, move it to sending (the lease) and settle what a crash left."""
        reach = self._draft_reach()
        with self.store.write() as session:
            actors.require(session, actors.OWNER, "sending a campaign")
            campaign = session.exec(
                select(Campaign)
                .where(col(Campaign.id) == self.campaign_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).first()
            if campaign is None:
                campaigns.get_campaign_by_id(session, self.campaign_id)  # raises UnknownCampaign
                raise AssertionError("unreachable")
            self.result.campaign_name = campaign.name
            now = clock.now()
            destination = self.outbox.destination
            send_lease.check_sendable(
                session, campaign, now=now, lease=self.lease, destination=destination, reach=reach
            )
            resumed = campaign.status != campaigns.DRAFT
            campaign = campaigns.set_status(
                session=session, campaign_id=self.campaign_id, status=campaigns.SENDING,
                actor=self.actor, source=self.source, now=now,
                Resumed=resumed, Outbox=self.outbox.description,
            )  # fmt: skip
            campaign.destination = campaign.destination or destination
            campaign.lease_holder, campaign.lease_beat_at = self.holder, now
            session.add(campaign)
            session.flush()
            recovered, unknown = deliveries.settle_crashed(session, self.campaign_id, self.outbox)
            self.result.recovered += recovered
            self.result.unknown += unknown
            self.result.sent_before = (
                deliveries.count(session, self.campaign_id, SENT) - self.result.recovered
            )
        return campaign

    def pause(self, reason: str) -> None:
        """Move the campaign to paused (unless another process already moved it on)."""
        with self.store.write() as session:
            if (
                send_lease.current_status(session, self.campaign_id, self.holder)
                != campaigns.SENDING
            ):
                return
            campaign = campaigns.set_status(
                session=session, campaign_id=self.campaign_id, status=campaigns.PAUSED,
                actor=self.actor, source=self.source, Reason=reason,
                Sent=self.result.sent_total,
            )  # fmt: skip
            campaign.lease_holder = None
            session.add(campaign)
        self.result.status = campaigns.PAUSED

    def deferred_error(self) -> OutboxUnavailable:
        """What pauses a send whose server deferred messages (4xx after the retries)."""
        many = self.result.deferred != 1
        return OutboxUnavailable(
            f"{self.outbox.description} deferred {self.result.deferred:,} "
            f"message{'s' if many else ''} ({self.result.deferred_reply}); "
            f"running the send again retries {'them' if many else 'it'}"
        )

    def finish(self) -> None:
        """Mark the campaign sent, with the counts in its ``Campaign Sent`` event.

        Not while messages the server deferred wait to be tried again: then the
        send pauses (``run``), and the next run sends them."""
        if self.result.deferred:
            raise self.deferred_error()
        with self.store.write() as session:
            counts: dict[str, Any] = {
                "Sent": deliveries.count(session, self.campaign_id, SENT),
                "Skipped": self.result.skipped,
                "Without Email": self.result.without_email,
                "Unknown": deliveries.count(session, self.campaign_id, UNKNOWN),
                "Failed": deliveries.count(session, self.campaign_id, FAILED),
                "Outbox": self.outbox.description,
            }
            if (
                send_lease.current_status(session, self.campaign_id, self.holder)
                != campaigns.SENDING
            ):
                self.result.cancelled = True  # another send took over: it finishes
                self.result.status = send_lease.current_status(session, self.campaign_id)
                return
            self.mark_sent(session, counts)
        self.result.finished = True
        self.result.status = campaigns.SENT

    def mark_sent(self, session: Session, counts: dict[str, Any]) -> None:
        """The campaign is sent (``Campaign Sent`` with ``counts``) and its lease let go."""
        campaign = campaigns.set_status(
            session=session, campaign_id=self.campaign_id, status=campaigns.SENT,
            actor=self.actor, source=self.source, **counts,
        )  # fmt: skip
        campaign.lease_holder = None
        session.add(campaign)

    # --- the batches ------------------------------------------------------------------------

    def todo(self, campaign: Campaign) -> tuple[list[int], int]:
        """The audience not yet claimed, in id order, and the next batch number."""
        audience = eligibility.audience_ids(self.store, campaign)
        with self.store.read() as session:
            claimed = set(
                session.execute(
                    select(Delivery.profile_id).where(col(Delivery.campaign_id) == self.campaign_id)
                ).scalars()
            )
            last = session.execute(
                select(func.max(Delivery.batch)).where(
                    col(Delivery.campaign_id) == self.campaign_id
                )
            ).scalar()
        return [pid for pid in audience if pid not in claimed], int(last or 0) + 1

    def claim(
        self, campaign: Campaign, mail: CampaignMail, ids: Sequence[int], batch: int
    ) -> list[Recipient] | None:
        """Check the batch and claim the eligible; None when the campaign left "sending"."""
        now = clock.now()
        with self.store.write() as session:
            if (
                send_lease.current_status(session, self.campaign_id, self.holder)
                != campaigns.SENDING
            ):
                return None  # paused or cancelled from elsewhere, or another send took over
            recipients = self.claim_in(session, campaign, mail, ids, batch, now)
            send_lease.beat(session, self.campaign_id, self.holder, now)
        return recipients

    def claim_in(
        self,
        session: Session,
        campaign: Campaign,
        mail: CampaignMail,
        ids: Sequence[int],
        batch: int,
        now: datetime,
    ) -> list[Recipient]:
        """In the caller's write: check the batch and claim the eligible (delivery rows)."""
        eligible = eligibility.eligible_now(session, campaign, ids)
        people: list[tuple[int, str | None, str | None, str]] = []
        wanted = sorted(eligible)
        for chunk in chunks(wanted, 900):
            people += session.execute(
                select(Profile.id, Profile.email, Profile.email_key, Profile.name).where(
                    col(Profile.id).in_(chunk)
                )
            ).all()
        recipients: list[Recipient] = []
        keys: dict[int, str | None] = {}
        seen: set[str] = set()
        for pid, email, key, name in sorted(people):
            address = usable_address(email)
            if address is None:
                self.result.without_email += 1
            elif key is not None and key in seen:
                self.result.same_address += 1  # a twin earlier in this batch has it
            else:
                keys[pid] = key
                seen.add(key or "")
                recipients.append(Recipient(pid, address, name or ""))
        self.result.skipped += len(ids) - len(eligible)
        if recipients:
            rows = [
                {
                    "campaign_id": self.campaign_id,
                    "profile_id": r.profile_id,
                    "status": CLAIMED,
                    "message_id": mail.message_id(r.profile_id),
                    "batch": batch,
                    "sent_at": now,
                    "address_key": keys[r.profile_id],
                }
                for r in recipients
            ]
            # In address order: concurrent senders claiming twins take the address
            # keys' index entries in one order, so they never deadlock.
            rows.sort(key=lambda row: row["address_key"] or "")
            statement = deliveries.claim(session).returning(DELIVERY.c.profile_id)
            claimed = set(session.execute(statement, rows).scalars())
            # An earlier claim of the address (a twin) or of the profile wins.
            self.result.same_address += len(recipients) - len(claimed)
            recipients = [r for r in recipients if r.profile_id in claimed]
        return recipients

    def deliver(
        self, mail: CampaignMail, recipients: Sequence[Recipient], batch: int
    ) -> OutboxUnavailable | None:
        """Hand the batch to the outbox and record how each message went.

        Returns the outbox's error when it stopped taking messages (what it
        never took is unclaimed), None when the whole batch was handled. A
        message the server deferred (4xx) is unclaimed too, and counted: the
        next run of the send tries it again.
        """
        now = clock.now()
        outcomes: dict[int, Outcome] = {}
        taken = 0  # messages the outbox took from ``messages()`` (rendered and handed over)
        stop: OutboxUnavailable | None = None

        def messages() -> Iterator[OutgoingMessage]:
            nonlocal taken
            for recipient in recipients:
                message = mail.render(recipient, now)
                taken += 1
                yield message

        def report(index: int, outcome: Outcome) -> None:
            outcomes[index] = outcome

        try:
            self.outbox.open()
            self.outbox.deliver_many(messages(), report)
        except OutboxUnavailable as exc:
            stop = exc
        except BaseException:
            # Anything else (a bug, ctrl+c): record what is known; a message the
            # outbox took and did not report on stays claimed, for the next send
            # to settle as after a crash.
            self._record(recipients, outcomes, taken, batch, now)
            raise
        finally:
            self.outbox.close()
        self._record(recipients, outcomes, taken, batch, now)
        return stop

    def _record(
        self,
        recipients: Sequence[Recipient],
        outcomes: dict[int, Outcome],
        taken: int,
        batch: int,
        now: datetime,
    ) -> None:
        """One write: the batch's messages as they went; unclaim those never handed over
        and those deferred. A refusal with a 5.1.x status (no such address) is a hard
        bounce, recorded as the inbound bounces are."""
        went = deliveries.sort_outcomes([r.profile_id for r in recipients], outcomes, taken)
        written = clock.now()
        with self.store.write() as session:
            deliveries.record_batch(
                session, self.campaign_id, batch, now=written,
                sent=went.sent, failed=went.failed, unknown=went.unknown, not_sent=went.not_sent,
            )  # fmt: skip
            for index, status in went.hard_bounces:
                # A profile erased meanwhile has no address left to mark (nothing written).
                with contextlib.suppress(UnknownProfile):
                    bounces.record_bounce(
                        session, profile_id=recipients[index].profile_id,
                        campaign_id=self.campaign_id, now=now,
                        bounce=bounces.Bounce(status, "failed", outcomes[index].reply,
                                              recipients[index].email),
                    )  # fmt: skip
            send_lease.beat(session, self.campaign_id, self.holder, written)
        self.result.sent += len(went.sent)
        self.result.failed += len(went.failed)
        self.result.unknown += len(went.unknown)
        self.result.deferred += went.deferred
        self.result.deferred_reply = went.deferred_reply or self.result.deferred_reply

    def heartbeat_thread(self) -> contextlib.AbstractContextManager[object]:
        """The thread keeping this send's lease fresh while it runs."""
        return send_lease.Heartbeat(self.store, self.campaign_id, self.holder, self.heartbeat)

    def run(self) -> SendResult:
        started = time.perf_counter()
        campaign = self.start()
        try:
            with self.heartbeat_thread():
                self._batches(campaign)
        except OutboxUnavailable as exc:
            self.pause(exc.message)
            raise OutboxUnavailable(
                f"{exc.message}; the send is paused after {self.result.sent_total:,} messages, "
                "run the send again to resume",
                ambiguous=exc.ambiguous,
            ) from exc
        except BaseException as exc:
            # If the store itself failed, the pause fails too: the lease runs out instead.
            with contextlib.suppress(Exception):
                self.pause(f"stopped by an error: {exc.__class__.__name__}: {exc}")
            raise
        finally:
            self.result.seconds = time.perf_counter() - started
        return self.result

    def _batches(self, campaign: Campaign) -> None:
        with self.store.read() as session:
            mail = CampaignMail.prepare(session, campaign)
        todo, batch = self.todo(campaign)
        self.result.total = len(todo)
        done = 0
        for begin in range(0, len(todo), self.batch_size):
            if self.cancelled is not None and self.cancelled():
                self.result.cancelled = True
                self.pause(f"cancelled by {self.actor}")
                return
            ids = todo[begin : begin + self.batch_size]
            recipients = self.claim(campaign, mail, ids, batch)
            if recipients is None:
                self.result.cancelled = True
                with self.store.read() as session:
                    self.result.status = send_lease.current_status(session, self.campaign_id)
                return
            stop = self.deliver(mail, recipients, batch) if recipients else None
            done += len(ids)
            self.result.batches += 1
            if stop is not None:
                raise stop
            if self.progress is not None:
                self.progress(
                    SendProgress(
                        done=done, total=len(todo), sent=self.result.sent,
                        skipped=self.result.skipped, batch=batch,
                        without_email=self.result.without_email, failed=self.result.failed,
                    )
                )  # fmt: skip
            batch += 1
        self.finish()
