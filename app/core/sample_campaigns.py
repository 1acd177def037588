"""The sample data with a story of campaigns: what ``seed`` and ``demo`` load.

``load_sample`` loads ``sample_data/`` (``seed.load_sample_data``) with its
history ending two days before ``now``, then tells the last two days through
the real services, so a walkthrough can start in any section:

- the saved segment "Pro and enterprise" (plan is one of pro, enterprise);
- the campaign "November newsletter" to that segment, not to people who left
  Newsletter: created, then sent for real (``sending.send_campaign``: every
  message rendered and handed to ``outbox``, every delivery recorded);
- some of its recipients leaving through its links in the hours after: most
  with the one-click unsubscribe (``one_click.one_click``: they leave
  Newsletter), some on the preferences page (``landing.save_choices``), one of
  those from all email. Each change is a ``Channel Unsubscribed`` event with
  the campaign's id, so the Campaigns list shows its unsubscribes;
- the draft "Winter sale" (all profiles, not to people who left Promotions),
  ready to review and send.

The sample history is one transaction; the campaigns are written after it,
each step in its own (a send cannot run inside another transaction). Services
that read the clock themselves (the send) are run with ``clock.pinned``, so
the same ``now`` gives the same story: who gets the newsletter, who leaves,
and when.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select

from app.core import (
    actors,
    campaigns,
    clock,
    deliveries,
    groups,
    landing,
    one_click,
    segments,
    sending,
)
from app.core.body_template import DEFAULT_BODY
from app.core.models import SUBSCRIBED, UNSUBSCRIBED, Delivery
from app.core.outbox import Outbox
from app.core.seed import SOURCE, Progress, SeedSummary, load_sample_data
from app.core.segment_rules import PropertyCondition, SegmentRule
from app.core.store import Store

# The sample history ends this long before now; the campaigns' story fills the gap.
STORY = timedelta(days=2)
SEGMENT = "Pro and enterprise"
SENT = "November newsletter"
DRAFT = "Winter sale"
FROM = "Example News <news@example.com>"
# About this share of the newsletter's recipients leave through its links ...
UNSUBSCRIBE_SHARE = 0.025
# ... and one in this many of them on the preferences page rather than one-click.
PAGE_EVERY = 4
STORY_SEED = 1120

SENT_BODY = DEFAULT_BODY.replace(
    "Write your message here.",
    "This month: the new reporting dashboard, three customer stories and\n"
    "the dates of our winter webinars.",
)
DRAFT_BODY = DEFAULT_BODY.replace(
    "Write your message here.",
    "Our winter sale starts on Monday: 25% off every annual plan until\nthe end of the year.",
)


@dataclass(frozen=True)
class SampleSummary:
    """What ``load_sample`` loaded: the sample data, and its campaigns' story."""

    data: SeedSummary
    sent: int  # messages of the sent campaign
    unsubscribes: int  # unsubscribe events attributed to it


def load_sample(
    *,
    store: Store,
    actor: str,
    outbox: Outbox,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> SampleSummary:
    """The sample data (refused on a store with data), then its campaigns (module docstring)."""
    with store.read() as session:  # it sends a campaign: checked before anything is written
        actors.require(session, actors.OWNER, "loading the sample data and its campaigns")
    now = now or clock.now()
    start = now - STORY
    data = load_sample_data(store=store, actor=actor, now=start, progress=progress)
    with store.write() as session:
        newsletter = groups.find_group(session, "Newsletter")
        promotions = groups.find_group(session, "Promotions")
        assert newsletter is not None and promotions is not None
        assert newsletter.id is not None and promotions.id is not None
        segment = segments.save_segment(
            session=session,
            name=SEGMENT,
            rule=SegmentRule((PropertyCondition("plan", "one_of", ("pro", "enterprise")),)),
            actor=actor,
            source=SOURCE,
            now=start + timedelta(minutes=10),
        )
        newsletter_id = newsletter.id
        sent = campaigns.create_campaign(
            session=session,
            name=SENT,
            subject="Our November newsletter",
            from_address=FROM,
            body=SENT_BODY,
            segment_id=segment.id,
            do_not_send_to=[newsletter_id],
            actor=actor,
            source=SOURCE,
            now=start + timedelta(minutes=20),
        )
        promotions_id = promotions.id
    assert sent.id is not None
    sent_at = start + timedelta(hours=2)
    with clock.pinned(sent_at):
        result = sending.send_campaign(
            store=store, campaign_id=sent.id, outbox=outbox, actor=actor, source=SOURCE
        )
    unsubscribes = _leave_through_links(
        store=store,
        campaign_id=sent.id,
        group_id=newsletter_id,
        start=sent_at + timedelta(minutes=5),
        end=now - timedelta(hours=1),
    )
    with store.write() as session:
        campaigns.create_campaign(
            session=session,
            name=DRAFT,
            subject="Our winter sale starts Monday",
            from_address=FROM,
            body=DRAFT_BODY,
            do_not_send_to=[promotions_id],
            actor=actor,
            source=SOURCE,
            now=now - timedelta(minutes=30),
        )
    return SampleSummary(data=data, sent=result.sent_total, unsubscribes=unsubscribes)


def _leave_through_links(
    *, store: Store, campaign_id: int, group_id: int, start: datetime, end: datetime
) -> int:
    """Some recipients leave through the campaign's links, at believable times; the
    number of unsubscribe events written."""
    rng = random.Random(STORY_SEED)
    with store.read() as session:
        recipients = list(
            session.exec(
                select(Delivery.profile_id)
                .where(col(Delivery.campaign_id) == campaign_id)
                .where(col(Delivery.status) == deliveries.SENT)
                .order_by(col(Delivery.profile_id))
            ).all()
        )
    leaving = rng.sample(recipients, max(1, round(len(recipients) * UNSUBSCRIBE_SHARE)))
    span = (end - start).total_seconds()
    # Most people who leave do it soon after the message arrives.
    times = sorted(start + timedelta(seconds=min(rng.expovariate(6 / span), span)) for _ in leaving)
    events = 0
    for n, (profile_id, ts) in enumerate(zip(leaving, times, strict=True)):
        with clock.pinned(ts), store.write() as session:
            if n % PAGE_EVERY:
                _scope, written = one_click.one_click(
                    session=session, profile_id=profile_id, campaign_id=campaign_id
                )
            else:
                page = landing.page_for(session, profile_id, campaign_id, lock=True)
                keep = {g.id for g in page.groups if g.state == SUBSCRIBED} - {group_id}
                written = landing.save_choices(
                    session=session,
                    profile_id=profile_id,
                    campaign_id=campaign_id,
                    subscribed_group_ids=keep,
                    # One of them has had enough of all email.
                    all_email=UNSUBSCRIBED if n == PAGE_EVERY else page.all_email,
                    page_group_ids=page.group_ids,
                )
            events += sum(1 for e in written if e.properties.get("New State") == UNSUBSCRIBED)
    return events
