"""A send killed with SIGKILL halfway, then resumed, as an admin at a shell would do it:
``python -m app campaigns send`` in a real process on a real SQLite file. Resuming into
another outbox is refused naming the first one (nothing lands in the second); resuming
into the same outbox works within seconds and mails every eligible person exactly once."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sending_world import SmtpServer, maildir_messages, recipients_of
from test_sending_senders import news_store

from app.core import campaigns, sending
from app.core.errors import OtherDestination
from app.core.outbox import MaildirOutbox, OutgoingMessage
from app.core.smtp_outbox import SmtpOutbox
from app.core.store import Store

REPO = Path(__file__).resolve().parents[2]
PEOPLE = 3000


def _store(path: Path) -> tuple[Store, set[str]]:
    """PEOPLE profiles; every tenth left all email; a draft 'News'. The eligible addresses."""
    store, _, eligible = news_store(path, PEOPLE)
    return store, eligible


def _send(db: Path, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "campaigns", "send", "News", "--db", str(db), *options],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _count(folder: Path) -> int:
    new = folder / "new"
    return len(os.listdir(new)) if new.is_dir() else 0


def test_a_send_killed_halfway_resumes_only_into_its_own_outbox_and_mails_each_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "store.db"
    store, eligible = _store(db)
    store.dispose()
    first, second = tmp_path / "out-x", tmp_path / "out-y"

    sender = _send(db, "--outbox", str(first), "--batch-size", "25")
    deadline = time.monotonic() + 60
    while _count(first) < 400:
        assert sender.poll() is None, "the send ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    sender.send_signal(signal.SIGKILL)
    sender.communicate(timeout=30)
    killed_at = time.monotonic()
    assert 400 <= _count(first) < len(eligible)

    # Into another outbox: refused in one line naming the first; nothing written there.
    other = _send(db, "--outbox", str(second))
    out, err = other.communicate(timeout=60)
    assert other.returncode == 1, err
    assert out == ""
    assert err.count("\n") == 1
    assert f"was first sent to maildir:{first}; " in err
    assert not second.exists() or _count(second) == 0

    # Into the same outbox, at once: the dead sender's lease is taken over, no waiting.
    again = _send(db, "--outbox", str(first))
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert time.monotonic() - killed_at < 30
    assert "is sent:" in out

    received = recipients_of(maildir_messages(first)) + recipients_of(maildir_messages(second))
    assert set(received) == eligible
    assert received == Counter(dict.fromkeys(eligible, 1))


class _DiesAfterHandover(SmtpOutbox):
    """An SMTP outbox whose process "dies" (ctrl+c) right after the 5th message was accepted."""

    handed = 0

    def deliver(self, message: OutgoingMessage) -> None:
        super().deliver(message)
        self.handed += 1
        if self.handed == 5:
            raise KeyboardInterrupt


def test_a_send_that_crashed_over_smtp_is_not_resumed_into_a_maildir(tmp_path: Path) -> None:
    """The server accepted 5 messages; a Maildir cannot know that: the resume is refused
    there, and over the same server it mails the rest, nobody twice."""
    store, eligible = _store(tmp_path / "store.db")
    try:
        with store.read() as session:
            cid = campaigns.get_campaign(session, "News").id
        assert cid is not None
        maildir = tmp_path / "maildir"
        with SmtpServer() as server:
            crashing = _DiesAfterHandover("127.0.0.1", server.port, timeout=5)
            with pytest.raises(KeyboardInterrupt):
                sending.send_campaign(
                    store=store, campaign_id=cid, outbox=crashing, actor="ada", batch_size=50
                )
            with pytest.raises(OtherDestination) as refused:
                sending.send_campaign(
                    store=store, campaign_id=cid, outbox=MaildirOutbox(maildir), actor="ada"
                )
            assert refused.value.message.startswith(
                f"Campaign 'News' was first sent to smtp:127.0.0.1:{server.port}; "
            )
            assert not maildir.exists()
            result = sending.send_campaign(
                store=store, campaign_id=cid, actor="ada",
                outbox=SmtpOutbox("127.0.0.1", server.port, timeout=5),
            )  # fmt: skip
            received = recipients_of(server.sink.messages())
    finally:
        store.dispose()
    assert result.finished and result.unknown == 1
    assert set(received) == eligible
    assert max(received.values()) == 1
