"""Acting as a recipient (the console's landing page preview): finding them, saving for them.

``act_as_recipient`` is the whole transaction the console runs when an admin
saves the page's boxes as the person: only the boxes the admin changed are
applied over the person's states as they are at that moment, each change one
``Channel Unsubscribed`` event with Source ``console`` and the admin as Actor.
"""

import pytest
from landing_world import (
    ACTOR,
    LandingWorld,
    build_world,
    ledger_size,
    set_state,
    stored_states,
    subscription_events,
)

from app.core import recipient
from app.core.errors import InvalidInput
from app.core.landing import PageOutdated
from app.core.store import Store


@pytest.fixture
def world(store: Store) -> LandingWorld:
    return build_world(store)


# --- finding the person -------------------------------------------------------------


def test_find_recipient_with_no_text_takes_the_first_profile(world: LandingWorld) -> None:
    with world.store.read() as session:
        found, how = recipient.find_recipient(session, "  ")
        assert found is not None and found.identity == "ann"
    assert how == "the first profile"


def test_find_recipient_takes_an_exact_identity_before_a_search(world: LandingWorld) -> None:
    with world.store.read() as session:
        found, how = recipient.find_recipient(session, "bob")
        assert found is not None and found.identity == "bob"
    assert how == ""


def test_find_recipient_says_how_it_matched_a_search(world: LandingWorld) -> None:
    with world.store.read() as session:
        one, how_one = recipient.find_recipient(session, "ann@")
        first, how_first = recipient.find_recipient(session, "example.com")
        assert one is not None and one.identity == "ann"
        assert first is not None and first.identity == "ann"
    assert how_one == "the profile matching 'ann@'"
    assert how_first == "the first of the profiles matching 'example.com'"


def test_find_recipient_says_when_nobody_matches(world: LandingWorld, store: Store) -> None:
    with world.store.read() as session:
        assert recipient.find_recipient(session, "zed") == (None, "No profile matches 'zed'.")


def test_find_recipient_in_an_empty_store(store: Store) -> None:
    with store.read() as session:
        found, how = recipient.find_recipient(session, "")
    assert found is None
    assert how == "No profiles yet: the preview shows each group's default state."


# --- saving as them ---------------------------------------------------------------------


def test_acting_applies_only_the_boxes_the_admin_changed(world: LandingWorld) -> None:
    # The admin read the page with Promotions unticked (opt-in, never set); meanwhile
    # Ann subscribed to Promotions herself. The admin only unticked Newsletter.
    set_state(world.store, world.ann, world.promotions, "subscribed")
    with world.store.write() as session:
        events = recipient.act_as_recipient(
            session=session,
            profile_id=world.ann,
            group_choices={world.newsletter: False},
            all_email=None,
            page_group_ids=world.shown,
            actor="ada",
        )

    assert [(e.group_id, e.properties["New State"]) for e in events] == [
        (world.newsletter, "unsubscribed")
    ]
    assert all(e.source == "console" and e.actor == "ada" for e in events)
    states = stored_states(world.store, world.ann)
    assert states[world.newsletter] == "unsubscribed"
    assert states[world.promotions] == "subscribed"  # her own choice stands
    assert world.script not in states  # untouched: still never set
    assert states[None] == "subscribed"


def test_acting_can_unsubscribe_from_all_email(world: LandingWorld) -> None:
    with world.store.write() as session:
        events = recipient.act_as_recipient(
            session=session,
            profile_id=world.ann,
            group_choices={},
            all_email="unsubscribed",
            page_group_ids=world.shown,
            actor="ada",
        )

    assert [(e.group_id, e.properties["Subscription Type"]) for e in events] == [(None, "Channel")]
    assert stored_states(world.store, world.ann) == {None: "unsubscribed"}


def test_acting_on_a_page_that_changed_since_the_preview_writes_nothing(
    world: LandingWorld,
) -> None:
    before = ledger_size(world.store)

    with pytest.raises(PageOutdated), world.store.write() as session:
        recipient.act_as_recipient(
            session=session,
            profile_id=world.ann,
            group_choices={world.newsletter: False},
            all_email=None,
            page_group_ids=[world.newsletter, world.promotions],  # the page shows three
            actor=ACTOR,
        )

    assert ledger_size(world.store) == before
    assert subscription_events(world.store, world.ann) == []


def test_a_choice_for_a_group_not_on_the_page_is_refused(world: LandingWorld) -> None:
    with pytest.raises(InvalidInput) as refused, world.store.write() as session:
        recipient.act_as_recipient(
            session=session,
            profile_id=world.ann,
            group_choices={world.newsletter: False, world.internal: False},
            all_email=None,
            page_group_ids=world.shown,
            actor=ACTOR,
        )

    assert f"group {world.internal} is not on this page" in refused.value.message
    assert subscription_events(world.store, world.ann) == []
