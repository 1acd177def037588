"""Several senders share one send (issue 13): on PostgreSQL, real ``subgroups campaigns
send`` processes into one Maildir mail everyone eligible exactly once and all exit 0; a
sender killed with SIGKILL has its batch taken over; a pause from elsewhere stops them
all and one sender resumes it; the campaign is sent once (one ``Campaign Sent`` event,
with the totals of every sender). On SQLite a second sender exits 0 saying which
process is sending, and sends nothing."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sending_world import maildir_messages, recipients_of
from sqlmodel import col, select

from app.core import bulk, campaigns, groups, send_batches, sending, subscriptions
from app.core.deliveries import CLAIMED
from app.core.models import SUBSCRIBED, UNSUBSCRIBED, Delivery, Event, Profile, SendBatch
from app.core.outbox import MaildirOutbox
from app.core.store import Store, open_store

REPO = Path(__file__).resolve().parents[2]
BODY = "Hello {{ name }},\nNews.\nLeave: {{ unsubscribe_url }}\n"


def news_store(url: str | Path, people: int) -> tuple[Store, int, set[str]]:
    """``people`` profiles, every tenth left all email; a draft 'News'. Its id and the
    eligible addresses. (Also test_sending_resume's store.)"""
    store = open_store(url)
    now = datetime.now(UTC)
    rows = [
        bulk.NewProfileRow(f"p{n}", f"p{n}@example.com", f"P {n}", {}, SUBSCRIBED, now)
        for n in range(people)
    ]
    with store.write() as session:
        ids = bulk.insert_profiles(session=session, profiles=rows)
        groups.create_group(session=session, name="Newsletter", actor="ada")
        for n in range(0, people, 10):
            profile = session.get(Profile, ids[f"p{n}"])
            assert profile is not None
            subscriptions.set_state(
                session=session, profile=profile, group=None, status=UNSUBSCRIBED,
                source="cli", actor="ada",
            )  # fmt: skip
        campaign = campaigns.create_campaign(
            session=session, name="News", actor="ada", subject="News",
            from_address="Shop <shop@example.com>", body=BODY,
        )  # fmt: skip
    assert campaign.id is not None
    return store, campaign.id, {f"p{n}@example.com" for n in range(people) if n % 10}


def _sender(db: str | Path, outbox: Path, *options: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "app", "campaigns", "send", "News", "--db", str(db)]
    return subprocess.Popen(
        [*command, "--outbox", str(outbox), *options],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _files(outbox: Path) -> int:
    new = outbox / "new"
    return len(os.listdir(new)) if new.is_dir() else 0


def _sent_events(store: Store) -> list[dict[str, object]]:
    with store.read() as session:
        return list(
            session.exec(
                select(Event.properties).where(col(Event.name) == campaigns.CAMPAIGN_SENT)
            ).all()
        )


def _each_once(outbox: Path, eligible: set[str]) -> None:
    """Every eligible address has exactly one message, each with its own Message-ID."""
    messages = maildir_messages(outbox)
    assert recipients_of(messages) == Counter(dict.fromkeys(eligible, 1))
    assert len({m["Message-ID"] for m in messages}) == len(messages) == _files(outbox)


def _sent_by(out: str) -> int:
    """The number in a summary's first line, "Sent 1,234 messages to ..."."""
    return int(out.split()[1].replace(",", ""))


@pytest.mark.postgres
def test_three_sender_processes_mail_everyone_eligible_once_and_all_exit_0(
    pg_url: str, tmp_path: Path
) -> None:
    store, cid, eligible = news_store(pg_url, 3000)
    outbox = tmp_path / "outbox"
    senders = [_sender(pg_url, outbox, "--batch-size", "20") for _ in range(3)]
    results = [s.communicate(timeout=300) for s in senders]
    try:
        for sender, (out, err) in zip(senders, results, strict=True):
            assert sender.returncode == 0, (out, err)
            assert "Campaign 'News' is sent: 2,700 messages in all" in out
        # Each message was counted by the one sender that wrote it.
        assert sum(_sent_by(out) for out, _err in results) == len(eligible)
        _each_once(outbox, eligible)
        events = _sent_events(store)
        assert len(events) == 1
        assert events[0]["Sent"] == 2700 and events[0]["Skipped"] == 300
        with store.read() as session:
            statuses = set(session.exec(select(SendBatch.status)).all())
            assert statuses == {send_batches.DONE}
        assert campaigns_status(store, cid) == campaigns.SENT
    finally:
        store.dispose()


def _claimed_batches(store: Store) -> list[int]:
    with store.read() as session:
        return list(
            session.exec(
                select(SendBatch.number).where(col(SendBatch.status) == send_batches.CLAIMED)
            ).all()
        )


def campaigns_status(store: Store, campaign_id: int) -> str:
    with store.read() as session:
        return campaigns.get_campaign_by_id(session, campaign_id).status


@pytest.mark.postgres
def test_a_sender_killed_mid_send_has_its_batch_taken_over_and_nobody_gets_two(
    pg_url: str, tmp_path: Path
) -> None:
    store, cid, eligible = news_store(pg_url, 3000)
    outbox = tmp_path / "outbox"
    options = ("--batch-size", "20", "--takeover-after", "2", "--heartbeat", "0.5")
    doomed = _sender(pg_url, outbox, *options)
    deadline = time.monotonic() + 120
    while _files(outbox) < 300:
        assert doomed.poll() is None, "the send ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    # Killed while it holds a batch: between two batches it holds none (it has marked one
    # done and not yet claimed the next), so it is stopped until the store shows one held.
    while True:
        doomed.send_signal(signal.SIGSTOP)
        if len(_claimed_batches(store)) == 1:
            break
        doomed.send_signal(signal.SIGCONT)
        assert doomed.poll() is None, "the send ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    doomed.send_signal(signal.SIGKILL)
    doomed.communicate(timeout=30)
    try:
        assert len(_claimed_batches(store)) == 1  # it died holding a batch
        survivor = _sender(pg_url, outbox, *options)
        out, err = survivor.communicate(timeout=300)
        assert survivor.returncode == 0, err
        assert "Campaign 'News' is sent: 2,700 messages in all" in out
        _each_once(outbox, eligible)
        with store.read() as session:
            left = session.exec(select(Delivery).where(col(Delivery.status) == CLAIMED)).all()
            assert left == []
            statuses = set(session.exec(select(SendBatch.status)).all())
            assert statuses == {send_batches.DONE}
        assert len(_sent_events(store)) == 1
        assert campaigns_status(store, cid) == campaigns.SENT
    finally:
        store.dispose()


@pytest.mark.postgres
def test_a_pause_stops_every_sender_and_one_sender_resumes_the_send(
    pg_url: str, tmp_path: Path
) -> None:
    store, cid, eligible = news_store(pg_url, 3000)
    outbox = tmp_path / "outbox"
    senders = [_sender(pg_url, outbox, "--batch-size", "20") for _ in range(2)]
    try:
        deadline = time.monotonic() + 120
        while _files(outbox) < 200:
            assert all(s.poll() is None for s in senders), "a send ended before the pause"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        with store.write() as session:
            campaigns.set_status(
                session=session, campaign_id=cid, status=campaigns.PAUSED, actor="bo",
                source="console", Reason="paused in the console",
            )  # fmt: skip
        for sender in senders:
            out, err = sender.communicate(timeout=60)
            assert sender.returncode == 1, err
            assert "Campaign 'News' is paused" in out
        assert _files(outbox) < len(eligible)
        assert campaigns_status(store, cid) == campaigns.PAUSED

        again = _sender(pg_url, outbox)
        out, err = again.communicate(timeout=300)
        assert again.returncode == 0, err
        _each_once(outbox, eligible)
        events = _sent_events(store)
        assert len(events) == 1 and events[0]["Sent"] == 2700 and events[0]["Skipped"] == 300
    finally:
        for sender in senders:
            if sender.poll() is None:
                sender.kill()
        store.dispose()


@pytest.mark.postgres
def test_a_batch_whose_sender_on_another_host_went_quiet_is_taken_over(
    pg_url: str, tmp_path: Path
) -> None:
    """A sender of another host claimed batch 1 and then its heartbeat stopped 30 s ago:
    a sender here (takeover after 15 s) takes it over; everyone is mailed once, and the
    campaign is sent once."""
    store, cid, eligible = news_store(pg_url, 200)
    outbox = tmp_path / "outbox"
    try:
        old = datetime.now(UTC) - timedelta(seconds=30)
        with store.write() as session:
            campaigns.set_status(
                session=session, campaign_id=cid, status=campaigns.SENDING, actor="bo",
                source="cli",
            )  # fmt: skip
            audience = sorted(session.exec(select(Profile.id)).all())
            send_batches.cut(session, cid, audience, 100, 1)  # two batches of 100
            send_batches.join(session, cid, "mailhost-2:4242", old)
            first = send_batches.claim_next(session, cid, "mailhost-2:4242", now=old, takeover=15)
        assert isinstance(first, send_batches.Batch) and first.number == 1
        result = sending.send_campaign(
            store=store, campaign_id=cid, outbox=MaildirOutbox(outbox), actor="ada",
            batch_size=100, lease_seconds=15,
        )  # fmt: skip
        assert result.finished
        _each_once(outbox, eligible)
        assert len(_sent_events(store)) == 1
    finally:
        store.dispose()


def test_on_sqlite_a_second_sender_exits_0_naming_the_one_that_sends(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store, cid, _eligible = news_store(db, 30)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    name = f"{socket.gethostname()}:{holder.pid}"
    try:
        with store.write() as session:
            campaign = campaigns.set_status(
                session=session, campaign_id=cid, status=campaigns.SENDING, actor="bo",
                source="cli",
            )  # fmt: skip
            campaign.lease_holder, campaign.lease_beat_at = name, datetime.now(UTC)
            session.add(campaign)
        outbox = tmp_path / "outbox"
        second = _sender(db, outbox)
        out, err = second.communicate(timeout=60)
        assert (second.returncode, err) == (0, "")
        assert out == f"another process ({name}) is sending News; nothing to do here\n"
        assert _files(outbox) == 0
        assert campaigns_status(store, cid) == campaigns.SENDING
    finally:
        holder.kill()
        holder.wait()
        store.dispose()
