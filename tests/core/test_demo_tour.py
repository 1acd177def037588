"""What the demo tour's steps look for (app/core/demo_tour.py), on SQLite and PostgreSQL:
only what happened after the tour's mark, only what the step is about, and the
simulated recipient's one-click unsubscribe, written as the landing server writes it."""

import random

import pytest

from app.core import campaigns, demo_tour, groups, profiles, subscriptions
from app.core.errors import RuleRefused
from app.core.models import UNSUBSCRIBED, Event
from app.core.seed import load_sample_data
from app.core.store import Store


@pytest.fixture
def sample(store: Store) -> Store:
    load_sample_data(store=store, actor="seed")
    return store


def test_the_looks_see_only_what_follows_the_mark(sample: Store) -> None:
    with sample.read() as session:
        mark = demo_tour.latest_event_id(session)
        # The sample's own history (its groups, its campaign) is before the mark.
        assert demo_tour.group_created(session, mark) is None
        assert demo_tour.campaign_with_do_not_send(session, mark) is None
        assert demo_tour.landing_unsubscribe(session, mark) is None
    with sample.write() as session:
        made = groups.create_group(session=session, name="<Spring>", actor="ann")
        campaigns.create_campaign(session=session, name="No groups", actor="ann")
        cancelled = campaigns.create_campaign(
            session=session, name="Cancelled", actor="ann", do_not_send_to=[made.id or 0]
        )
        campaigns.set_status(
            session=session,
            campaign_id=cancelled.id or 0,
            status=campaigns.CANCELLED,
            actor="ann",
        )
    with sample.read() as session:
        found = demo_tour.group_created(session, mark)
        assert found is not None
        assert found.summary == 'Group "<Spring>" created: 12 / 50 active.'
        # Neither a campaign without "do not send to" groups nor a cancelled one.
        assert demo_tour.campaign_with_do_not_send(session, mark) is None
    with sample.write() as session:
        campaigns.create_campaign(
            session=session, name="Spring sale", actor="ann", do_not_send_to=[made.id or 0]
        )
    with sample.read() as session:
        found = demo_tour.campaign_with_do_not_send(session, mark)
        assert found is not None and found.campaign == "Spring sale"
        assert found.summary == 'Campaign "Spring sale" is not sent to people who left <Spring>.'
        assert demo_tour.tour_campaign(session, found.campaign_id) is not None


def test_a_simulated_recipient_leaves_through_the_one_click_link(sample: Store) -> None:
    """Changes by the traffic simulator or an admin are not the landing page's; the
    simulated recipient's one-click is, as the landing server would write it."""
    with sample.write() as session:
        promotions = groups.find_group(session, "Promotions")
        draft = campaigns.create_campaign(
            session=session, name="Winter sale", actor="ann", do_not_send_to=[promotions.id or 0]
        )
        mark = demo_tour.latest_event_id(session)
        someone = profiles.get_profile(session, "C100001")
        subscriptions.set_state(
            session=session,
            profile=someone,
            group=promotions,
            status=UNSUBSCRIBED,
            source="simulator",
            actor="simulator",
        )
    with sample.read() as session:
        assert demo_tour.landing_unsubscribe(session, mark) is None
    found = demo_tour.recipient_unsubscribes(sample, draft.id or 0, rng=random.Random(3))
    with sample.read() as session:
        event = session.get(Event, found.event_id)
        assert event is not None
        assert (event.identity, event.source, event.campaign_id) == (
            found.identity,
            "one_click",
            draft.id,
        )
        assert event.properties["Group"] == "Promotions"
        assert event.properties["New State"] == UNSUBSCRIBED
        seen = demo_tour.landing_unsubscribe(session, mark)
        assert seen is not None
        assert (seen.event_id, seen.identity, seen.campaign) == (
            found.event_id,
            found.identity,
            "Winter sale",
        )
    left_out, reason = demo_tour.explain_left_out(sample, draft.id or 0, found.identity)
    assert left_out and reason.startswith("left out at 'Do not send to'")


def test_nobody_to_unsubscribe_is_refused(store: Store) -> None:
    with store.write() as session:
        group = groups.create_group(session=session, name="News", actor="ann")
        draft = campaigns.create_campaign(
            session=session, name="Empty", actor="ann", do_not_send_to=[group.id or 0]
        )
    with pytest.raises(RuleRefused, match='found nobody who gets "Empty" to unsubscribe'):
        demo_tour.recipient_unsubscribes(store, draft.id or 0)
