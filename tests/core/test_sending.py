"""Sending a campaign into a Maildir outbox: exactly the eligible people, once each;
re-checked per batch; paused and resumed after a cancel, an error, a full outbox or a
killed process without mailing anyone twice; refused when already sent or not ready."""

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sending_world import (
    World,
    add_campaign,
    deliveries,
    emails_of,
    maildir_messages,
    recipients_of,
    reference_eligible,
    sent_to,
    set_state,
    shop,
    status_of,
    with_usable_email,
)
from sqlmodel import col, select

from app.core import campaigns, clock, ledger, send_lease, sending
from app.core.deliveries import CLAIMED
from app.core.errors import InvalidInput, WrongStatus
from app.core.models import UNSUBSCRIBED, Event
from app.core.outbox import MaildirOutbox, Outbox, OutboxUnavailable, OutgoingMessage
from app.core.store import Store, open_store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(store: Store) -> World:
    return shop(store)


@pytest.fixture
def outbox_dir(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


def send(
    store: Store, campaign_id: int, outbox_dir: Path, outbox: Outbox | None = None, **options: Any
) -> sending.SendResult:
    """Send into the Maildir at ``outbox_dir`` (or ``outbox``) in batches of 3, as ada."""
    values: dict[str, Any] = {"batch_size": 3, "actor": "ada", **options}
    return sending.send_campaign(
        store=store, campaign_id=campaign_id, outbox=outbox or MaildirOutbox(outbox_dir), **values
    )


def events(store: Store, name: str) -> list[ledger.EventRecord]:
    with store.read() as session:
        return ledger.recent_events(session, name=name, limit=50)


def test_maildir_send_mails_exactly_the_eligible_people_once_each(
    world: World, outbox_dir: Path
) -> None:
    store = world.store
    cid = add_campaign(store, do_not_send_to=[world.groups["promotions"]])
    expected = with_usable_email(store, reference_eligible(store, cid))
    # p02 left Promotions, p03 all email; p05 has no address, p06 an unusable one.
    assert {world.people[p] for p in ("p02", "p03", "p05", "p06")}.isdisjoint(expected)
    assert len(expected) == 10

    seen: list[sending.SendProgress] = []
    result = send(store, cid, outbox_dir, progress=seen.append)

    assert (result.sent, result.skipped, result.without_email) == (10, 2, 2)
    assert result.finished and result.status == campaigns.SENT
    assert sent_to(store, cid) == expected
    messages = maildir_messages(outbox_dir)
    assert recipients_of(messages) == emails_of(store, expected)  # once each
    assert {m["Message-ID"] for m in messages} == {d.message_id for d in deliveries(store, cid)}
    # The Maildir layout: nothing left in tmp/, nothing in cur/ yet.
    assert sorted(p.name for p in outbox_dir.iterdir()) == ["cur", "new", "tmp"]
    assert list((outbox_dir / "tmp").iterdir()) == []
    # Progress per batch of 3, 14 people: 5 batches, ending at the total.
    assert [p.batch for p in seen] == [1, 2, 3, 4, 5]
    assert (seen[-1].done, seen[-1].total, seen[-1].sent) == (14, 14, 10)
    assert [d.batch for d in deliveries(store, cid)] == sorted(
        d.batch for d in deliveries(store, cid)
    )


def test_the_campaign_is_sent_with_its_counts_in_the_ledger(world: World, outbox_dir: Path) -> None:
    store = world.store
    cid = add_campaign(store, do_not_send_to=[world.groups["promotions"]])
    send(store, cid, outbox_dir, source="console")
    with store.read() as session:
        campaign = campaigns.get_campaign_by_id(session, cid)
    assert campaign.status == campaigns.SENT and campaign.sent_at is not None
    [started] = events(store, campaigns.CAMPAIGN_SEND_STARTED)
    [done] = events(store, campaigns.CAMPAIGN_SENT)
    assert started.properties["Resumed"] is False
    assert done.source == "console" and done.actor == "ada"
    assert {k: done.properties[k] for k in ("Sent", "Skipped", "Without Email", "Unknown")} == {
        "Sent": 10,
        "Skipped": 2,
        "Without Email": 2,
        "Unknown": 0,
    }
    assert done.properties["Outbox"] == str(outbox_dir)


def test_a_campaign_already_sent_is_refused_and_nothing_is_written(
    world: World, outbox_dir: Path
) -> None:
    store = world.store
    cid = add_campaign(store)
    send(store, cid, outbox_dir)
    files = sorted((outbox_dir / "new").iterdir())
    before = len(events(store, campaigns.CAMPAIGN_SENT))
    with pytest.raises(WrongStatus, match=r"was already sent on \d{4}-\d\d-\d\d"):
        send(store, cid, outbox_dir)
    assert sorted((outbox_dir / "new").iterdir()) == files
    assert len(events(store, campaigns.CAMPAIGN_SENT)) == before
    assert status_of(store, cid) == campaigns.SENT


def test_a_campaign_that_is_not_ready_is_refused_saying_what_to_fix(
    world: World, outbox_dir: Path
) -> None:
    store = world.store
    cid = add_campaign(store, subject="", body="Hi {{ name }}")
    with pytest.raises(InvalidInput) as refused:
        send(store, cid, outbox_dir)
    assert "Subject is empty" in refused.value.message
    assert "no {{ unsubscribe_url }}" in refused.value.message
    assert status_of(store, cid) == campaigns.DRAFT
    assert deliveries(store, cid) == [] and not outbox_dir.exists()


def test_an_unsubscribe_from_another_connection_stops_later_batches_for_that_person(
    world: World, outbox_dir: Path
) -> None:
    store = world.store
    promotions = world.groups["promotions"]
    cid = add_campaign(store, do_not_send_to=[promotions])
    # Another process (its own engine and connections) on the same store.
    other = open_store(store.url)

    def after_batch(progress: sending.SendProgress) -> None:
        if progress.batch == 1:
            set_state(other, "p01", promotions, UNSUBSCRIBED)  # batch 1: already sent
            set_state(other, "p13", promotions, UNSUBSCRIBED)  # batch 5: not yet

    try:
        result = send(store, cid, outbox_dir, progress=after_batch)
    finally:
        other.dispose()
    got = sent_to(store, cid)
    assert world.people["p01"] in got
    assert world.people["p13"] not in got
    assert world.people["p14"] in got  # p14 shares p13's batch
    assert result.sent == 9 and result.skipped == 3


def test_an_unsubscribe_while_a_batch_is_delivered_is_honoured_from_the_next_batch(
    world: World, outbox_dir: Path
) -> None:
    store = world.store
    other = open_store(store.url)

    class Meanwhile(MaildirOutbox):
        """While the first message goes out, p04 (next batch) leaves all email elsewhere."""

        def deliver(self, message: OutgoingMessage) -> None:
            if message.recipient == "p01@example.com":
                set_state(other, "p04", None, UNSUBSCRIBED)
            super().deliver(message)

    cid = add_campaign(store)
    try:
        send(store, cid, outbox_dir, outbox=Meanwhile(outbox_dir))
    finally:
        other.dispose()
    got = sent_to(store, cid)
    assert world.people["p04"] not in got
    assert {world.people[p] for p in ("p01", "p02", "p07", "p14")} <= got


def test_cancel_finishes_the_batch_pauses_and_a_resume_completes_once_each(
    world: World, outbox_dir: Path
) -> None:
    store = world.store
    cid = add_campaign(store)
    batches: list[int] = []

    def after_batch(progress: sending.SendProgress) -> None:
        batches.append(progress.batch)

    result = send(store, cid, outbox_dir, progress=after_batch, cancelled=lambda: len(batches) >= 2)
    assert result.cancelled and not result.finished
    assert status_of(store, cid) == campaigns.PAUSED
    assert batches == [1, 2]
    # Batch 1: p01, p02 (p03 left all email); batch 2: p04 (p05, p06 have no usable address).
    assert sent_to(store, cid) == {world.people[p] for p in ("p01", "p02", "p04")}
    assert {d.batch for d in deliveries(store, cid)} == {1, 2}
    [paused] = events(store, campaigns.CAMPAIGN_PAUSED)
    assert paused.properties["Reason"] == "cancelled by ada"

    again = send(store, cid, outbox_dir)
    assert again.finished and again.sent_before == 3
    expected = with_usable_email(store, reference_eligible(store, cid))
    assert sent_to(store, cid) == expected
    assert recipients_of(maildir_messages(outbox_dir)) == emails_of(store, expected)
    assert events(store, campaigns.CAMPAIGN_SEND_STARTED)[-1].properties["Resumed"] is True


def test_an_error_after_batch_two_pauses_and_the_resume_mails_nobody_twice(
    world: World, outbox_dir: Path
) -> None:
    store = world.store
    cid = add_campaign(store)

    def crash(progress: sending.SendProgress) -> None:
        if progress.batch == 2:
            raise RuntimeError("the worker died")

    with pytest.raises(RuntimeError, match="the worker died"):
        send(store, cid, outbox_dir, progress=crash)
    assert status_of(store, cid) == campaigns.PAUSED
    [paused] = events(store, campaigns.CAMPAIGN_PAUSED)
    assert "RuntimeError: the worker died" in paused.properties["Reason"]
    assert len(maildir_messages(outbox_dir)) == len(sent_to(store, cid)) == 3

    result = send(store, cid, outbox_dir)
    expected = with_usable_email(store, reference_eligible(store, cid))
    assert result.finished and result.sent == len(expected) - 3
    assert recipients_of(maildir_messages(outbox_dir)) == emails_of(store, expected)


def test_a_full_outbox_pauses_the_send_with_a_clear_message_and_a_resume_completes(
    world: World, outbox_dir: Path
) -> None:
    store = world.store
    cid = add_campaign(store)

    class Full(MaildirOutbox):
        """The disk fills up at the fifth message."""

        count = 0

        def deliver(self, message: OutgoingMessage) -> None:
            self.count += 1
            if self.count >= 5:
                raise OutboxUnavailable(f"outbox {self.path}: cannot write a message: No space")
            super().deliver(message)

    with pytest.raises(OutboxUnavailable) as stopped:
        send(store, cid, outbox_dir, outbox=Full(outbox_dir))
    assert str(stopped.value) == (
        f"outbox {outbox_dir}: cannot write a message: No space; the send is paused after "
        "4 messages, run the send again to resume"
    )
    assert status_of(store, cid) == campaigns.PAUSED
    # Only what reached the outbox is recorded; the rest of batch 2 is unclaimed.
    assert len(sent_to(store, cid)) == 4 and len(deliveries(store, cid)) == 4

    send(store, cid, outbox_dir)
    expected = with_usable_email(store, reference_eligible(store, cid))
    assert sent_to(store, cid) == expected
    assert recipients_of(maildir_messages(outbox_dir)) == emails_of(store, expected)


_DYING_SENDER = """
import os, sys
from app.core import sending
from app.core.outbox import MaildirOutbox
from app.core.store import open_store

class Dying(MaildirOutbox):
    written = 0
    def deliver(self, message):
        super().deliver(message)
        Dying.written += 1
        if Dying.written == 5:
            os._exit(3)  # killed: message 5 is written, batch 2 is not recorded

store = open_store(sys.argv[1])
sending.send_campaign(
    store=store, campaign_id=int(sys.argv[2]), outbox=Dying(sys.argv[3]), actor="cron",
    batch_size=3,
)
"""


def test_a_killed_send_is_resumed_later_without_mailing_anyone_twice(
    world: World, outbox_dir: Path
) -> None:
    store = world.store
    cid = add_campaign(store)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    killed = subprocess.run(
        [sys.executable, "-c", _DYING_SENDER, store.url, str(cid), str(outbox_dir)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert killed.returncode == 3, killed.stderr
    assert status_of(store, cid) == campaigns.SENDING
    claimed = [d for d in deliveries(store, cid) if d.status == CLAIMED]
    assert len(claimed) == 3  # batch 3 (p07, p08, p09), two of its messages written
    assert len(maildir_messages(outbox_dir)) == 5

    # Right away: the lease names a process of this host that is gone, so it is taken over.
    result = send(store, cid, outbox_dir)
    assert result.recovered == 2  # found in the outbox, recorded as sent
    assert result.finished
    expected = with_usable_email(store, reference_eligible(store, cid))
    assert sent_to(store, cid) == expected
    messages = maildir_messages(outbox_dir)
    assert recipients_of(messages) == emails_of(store, expected)
    assert len({m["Message-ID"] for m in messages}) == len(messages)


def test_a_send_stops_when_the_campaign_is_paused_from_elsewhere(
    world: World, outbox_dir: Path
) -> None:
    store = world.store
    cid = add_campaign(store)
    other = open_store(store.url)

    def pause_elsewhere(progress: sending.SendProgress) -> None:
        with other.write() as session:
            campaigns.set_status(
                session=session, campaign_id=cid, status=campaigns.PAUSED, actor="bo",
                source="console", Reason="paused in the console",
            )  # fmt: skip

    try:
        result = send(store, cid, outbox_dir, progress=pause_elsewhere)
    finally:
        other.dispose()
    assert result.cancelled and result.status == campaigns.PAUSED
    assert {d.batch for d in deliveries(store, cid)} == {1}
    with store.read() as session:
        reasons = session.exec(
            select(Event.properties).where(col(Event.name) == campaigns.CAMPAIGN_PAUSED)
        ).all()
    assert [r["Reason"] for r in reasons] == ["paused in the console"]


def one_sender_at_a_time(store: Store) -> None:
    """The lease tests are SQLite's: on PostgreSQL senders share a send (a live sender is
    joined, not refused; test_sending_senders.py)."""
    if not store.is_sqlite:
        pytest.skip("on PostgreSQL a second sender joins the send (test_sending_senders.py)")


def _set_lease(store: Store, campaign_id: int, holder: str, beat: datetime) -> None:
    """Leave the campaign "sending" under ``holder``, as a send running elsewhere would."""
    with store.write() as session:
        campaign = campaigns.set_status(
            session=session, campaign_id=campaign_id, status=campaigns.SENDING, actor="bo",
            source="cli",
        )  # fmt: skip
        campaign.lease_holder, campaign.lease_beat_at = holder, beat
        session.add(campaign)


def test_a_live_sender_on_this_host_keeps_its_lease_until_its_process_ends(
    world: World, outbox_dir: Path
) -> None:
    one_sender_at_a_time(world.store)
    store = world.store
    cid = add_campaign(store)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        name = f"{socket.gethostname()}:{holder.pid}"
        _set_lease(store, cid, name, clock.now())
        with pytest.raises(WrongStatus, match=f"is being sent right now by {name} "):
            send(store, cid, outbox_dir)
    finally:
        holder.kill()
        holder.wait()
    assert maildir_messages(outbox_dir) == []
    # The holder is gone: taken over at once, not after a timeout.
    assert send(store, cid, outbox_dir).finished


def test_a_sender_on_another_host_is_taken_over_once_its_heartbeat_is_15_s_old(
    world: World, outbox_dir: Path
) -> None:
    one_sender_at_a_time(world.store)
    store = world.store
    cid = add_campaign(store)
    _set_lease(store, cid, "mailhost-2:4242", clock.now())
    with pytest.raises(WrongStatus, match="by mailhost-2:4242 .*run this again in 1[56] s"):
        send(store, cid, outbox_dir)
    clock.set_clock(lambda: datetime.now(UTC) + timedelta(seconds=send_lease.LEASE_SECONDS + 1))
    try:
        result = send(store, cid, outbox_dir)
    finally:
        clock.set_clock(None)
    assert result.finished
    assert sent_to(store, cid) == with_usable_email(store, reference_eligible(store, cid))


def test_a_slow_outbox_keeps_the_lease_alive_through_the_heartbeat(
    world: World, outbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one message takes longer than the lease timeout, the heartbeat thread keeps the
    lease fresh: another send is still refused, naming this process."""
    one_sender_at_a_time(world.store)
    store = world.store
    cid = add_campaign(store)
    monkeypatch.setattr(send_lease, "HEARTBEAT_SECONDS", 0.05)
    refusals: list[str] = []

    class Slow(MaildirOutbox):
        def deliver(self, message: OutgoingMessage) -> None:
            super().deliver(message)
            if not refusals:
                time.sleep(0.5)
                try:
                    send(store, cid, outbox_dir, lease_seconds=0.3)
                except WrongStatus as exc:
                    refusals.append(exc.message)

    assert send(store, cid, outbox_dir, outbox=Slow(outbox_dir), lease_seconds=0.3).finished
    assert len(refusals) == 1 and f"by {send_lease.lease_name()} " in refusals[0]
    assert sent_to(store, cid) == with_usable_email(store, reference_eligible(store, cid))
