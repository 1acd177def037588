"""Every event carries ``Actor``: state changes and admin events alike, one of each kind.

The sample data's story (groups, states in bulk, a segment, a campaign sent, people
leaving through its links) and then every other admin action, by an admin process
(``SUBGROUPS_ADMIN``), so the name recorded is the admin's, not the host user's."""

from pathlib import Path

import pytest
from admin_keys import ED25519, RSA
from sqlmodel import col, select

from app.core import (
    actors,
    admins,
    bounces,
    campaigns,
    csv_io,
    erasure,
    event_names,
    groups,
    landing,
    ledger,
    profiles,
    sample_campaigns,
    segments,
    settings,
    subscriptions,
    unsubscribe_reasons,
)
from app.core.models import Profile
from app.core.outbox import MaildirOutbox
from app.core.ssh_keys import parse_key_line
from app.core.store import Store

# The event kinds that come in ask 2 (the SSH server's sessions) are tested there.
SESSION_EVENTS = {event_names.ADMIN_SESSION_STARTED, event_names.ADMIN_SESSION_ENDED}


def every_event_name() -> set[str]:
    """Each event name the services define."""
    names = {
        value
        for key, value in vars(event_names).items()
        if key.isupper() and isinstance(value, str) and key != "SOURCES"
    }
    names |= {v for k, v in vars(campaigns).items() if k.startswith("CAMPAIGN_")}
    names |= {v for k, v in vars(segments).items() if k.startswith("SEGMENT_") and k != "SEGMENT"}
    return {n for n in names if isinstance(n, str)} - SESSION_EVENTS


def test_every_kind_of_event_carries_its_actor(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sqlite_store
    host = actors.actor_name()
    sample_campaigns.load_sample(store=store, actor=host, outbox=MaildirOutbox(tmp_path / "out"))
    with store.write() as s:
        admins.add_admin(
            session=s,
            name="ann",
            key=parse_key_line(ED25519.line, where="ann"),
            role=actors.OWNER,
            actor=host,
        )
    monkeypatch.setenv(actors.ADMIN_ENV, "ann")
    ann = actors.actor_name()
    assert ann == "ann"
    (tmp_path / "more.csv").write_text("identity,email\nzed,zed@example.com\n", encoding="utf-8")
    csv_io.import_profiles(store=store, source=tmp_path / "more.csv", actor=ann)
    with store.write() as s:
        news = groups.find_group(s, "Newsletter")
        groups.update_group(session=s, group_id=news.id or 0, description="Weekly", actor=ann)
        archived = groups.list_groups(s, status="archived")[0]
        groups.unarchive_group(session=s, group_id=archived.id or 0, actor=ann)
        landing.update_settings(session=s, title="Your mail", actor=ann)
        segment = segments.get_segment(s, sample_campaigns.SEGMENT)
        segments.rename_segment(session=s, segment_id=segment.id or 0, name="Pros", actor=ann)
        spare = segments.duplicate_segment(session=s, segment_id=segment.id or 0, actor=ann)
        segments.delete_segment(session=s, segment_id=spare.id or 0, actor=ann)
        draft = campaigns.get_campaign(s, sample_campaigns.DRAFT)
        campaigns.update_campaign(session=s, campaign_id=draft.id or 0, subject="Sale", actor=ann)
        campaigns.set_status(
            session=s, campaign_id=draft.id or 0, status=campaigns.PAUSED, actor=ann
        )
        campaigns.set_status(
            session=s, campaign_id=draft.id or 0, status=campaigns.CANCELLED, actor=ann
        )
        admins.set_role(session=s, name="ann", role=actors.OWNER, actor=ann)  # no change
    with store.write() as s:
        admins.add_admin(
            session=s,
            name="bob",
            key=parse_key_line(RSA.line, where="bob"),
            actor=ann,
        )
        admins.set_role(session=s, name="bob", role=actors.VIEWER, actor=ann)
        admins.remove_admin(session=s, name="bob", actor=ann)
    with store.write() as s:  # (h-mailout's event; added here so the merged suite passes)
        settings.set_setting(session=s, key="inbound-domain", value="in.example.org", actor=ann)
    with store.write() as s:  # what the inbound listener records: the mail system acts
        zed = s.exec(select(Profile).where(col(Profile.identity) == "zed")).one()
        bounce = bounces.Bounce("5.1.1", "failed", "smtp; 550 user unknown", "")
        bounces.record_bounce(s, profile_id=zed.id or 0, campaign_id=None, bounce=bounce)
    with store.write() as s:  # a recipient leaves on the landing page and says why
        amy = profiles.create_profile(session=s, identity="amy")
        subscriptions.set_state(
            session=s, profile=amy, group=groups.find_group(s, "Newsletter"),
            status="unsubscribed", source="landing_page", actor="recipient",
        )  # fmt: skip
        unsubscribe_reasons.record_reason(
            session=s,
            profile_id=amy.id or 0,
            campaign_id=None,
            reason=unsubscribe_reasons.REASONS[0],
            details="too many",
        )
    with store.write() as s:
        erasure.erase_profile(session=s, identity="zed", reason="asked", source="cli", actor=ann)

    with store.read() as s:
        events = ledger.recent_events(s, limit=100_000)
    assert {e.name for e in events} == every_event_name()
    for event in events:
        assert event.properties.get("Actor") == event.actor != "", (event.name, event.properties)
    by_ann = {e.name for e in events if e.actor == "ann"}
    assert {"Group Updated", "Admin Removed", "Campaign Cancelled", "Profiles Imported"} <= by_ann
