"""The sample data's campaigns (``seed``, ``demo``): one sent, with the unsubscribes
it caused, and one draft, made through the real services on a real store."""

from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import col, select

from app.core import campaigns, sample_campaigns, segments
from app.core.ledger import CHANNEL_UNSUBSCRIBED
from app.core.models import Event
from app.core.outbox import MaildirOutbox
from app.core.store import Store, open_store

ACTOR = "tester"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _story(store: Store) -> tuple[list[campaigns.CampaignRow], list[Event]]:
    with store.read() as session:
        rows = campaigns.list_campaigns(session)
        events = list(session.exec(select(Event).order_by(col(Event.id))).all())
    return rows, events


def test_the_sample_has_a_sent_campaign_with_its_unsubscribes_and_a_draft(
    store: Store, tmp_path: Path, link_keyring: Path
) -> None:
    """On SQLite and PostgreSQL."""
    outbox = MaildirOutbox(tmp_path / "outbox")
    loaded = sample_campaigns.load_sample(store=store, actor=ACTOR, outbox=outbox, now=NOW)
    rows, events = _story(store)
    by_status = {row.status: row for row in rows}
    assert sorted(by_status) == ["draft", "sent"] and len(rows) == 2
    sent, draft = by_status["sent"], by_status["draft"]
    assert sent.name == sample_campaigns.SENT and sent.audience == sample_campaigns.SEGMENT
    # Really sent: one message in the outbox per recorded delivery.
    assert sent.sent == loaded.sent == len(outbox.message_paths()) > 100
    assert 0 < sent.unsubscribes == loaded.unsubscribes < sent.sent
    assert draft.name == sample_campaigns.DRAFT and draft.sent == draft.unsubscribes == 0
    with store.read() as session:
        assert [s.name for s in segments.list_segments(session)] == [sample_campaigns.SEGMENT]
        ready = campaigns.get_campaign(session, sample_campaigns.DRAFT)
        assert campaigns.send_problems(session, ready) == []  # ready to review and send

    # The unsubscribes came through the campaign's links, after it was sent.
    attributed = [e for e in events if e.campaign_id == sent.id and e.name == CHANNEL_UNSUBSCRIBED]
    assert {e.source for e in attributed} == {"one_click", "landing_page"}
    assert all(e.properties["New State"] == "unsubscribed" for e in attributed)
    assert any(e.properties["Group"] is None for e in attributed)  # one left all email
    assert sent.sent_at is not None
    assert all(sent.sent_at < e.ts < NOW for e in attributed)
    # The story is told in order: ledger ids follow time, and nothing is in the future.
    stamps = [e.ts for e in events]
    assert stamps == sorted(stamps) and stamps[-1] <= NOW


def test_the_same_now_tells_the_same_story(tmp_path: Path, link_keyring: Path) -> None:
    stories = []
    for name in ("one", "two"):
        store = open_store(tmp_path / f"{name}.db")
        try:
            sample_campaigns.load_sample(
                store=store, actor=ACTOR, outbox=MaildirOutbox(tmp_path / name), now=NOW
            )
            rows, events = _story(store)
        finally:
            store.dispose()
        stories.append(
            (
                [(r.name, r.status, r.sent, r.unsubscribes, r.sent_at) for r in rows],
                [(e.ts, e.name, e.identity, e.source) for e in events if e.campaign_id],
            )
        )
    assert stories[0] == stories[1]
