"""The landing page's services: settings, what a recipient sees, saving it, one click.

Every change goes through ``set_state`` or ``apply_changes``, so each test also
checks the ledger: one ``Channel Unsubscribed`` event per change, with the
Source and Campaign ID the link carried (DESIGN.md §1).
"""

from typing import Any

import pytest
from landing_world import (
    ACTOR,
    SCRIPT_NAME,
    LandingWorld,
    build_world,
    ledger_size,
    set_state,
    stored_states,
    subscription_events,
)
from sqlmodel import col, select

from app.core import ledger
from app.core.errors import InvalidInput, UnknownGroup, UnknownProfile
from app.core.landing import (
    PageOutdated,
    get_settings,
    page_for,
    save_choices,
    set_shown_groups,
    shown_groups,
    update_settings,
)
from app.core.models import Event, Group
from app.core.one_click import one_click, one_click_many, one_click_view
from app.core.store import Store


@pytest.fixture
def world(store: Store) -> LandingWorld:
    return build_world(store)


def states_on_page(world: LandingWorld, profile_id: int) -> dict[str, str]:
    with world.store.read() as session:
        page = page_for(session, profile_id)
    return {g.name: g.state for g in page.groups}


# --- settings -----------------------------------------------------------------


def test_settings_start_at_the_defaults_and_saving_writes_one_event(store: Store) -> None:
    with store.read() as session:
        assert get_settings(session).all_email_wording == "Unsubscribe from all email"
    with store.write() as session:
        update_settings(
            session=session,
            actor=ACTOR,
            title="  Your choices  ",
            base_url="https://email.example.com/",
            intro="Hello.\n\nPick what you like.",
        )
    with store.read() as session:
        saved = get_settings(session)
        events = list(
            session.exec(select(Event).where(col(Event.name) == ledger.LANDING_PAGE_UPDATED))
        )
    assert (saved.title, saved.base_url) == ("Your choices", "https://email.example.com")
    assert saved.intro == "Hello.\n\nPick what you like."
    assert len(events) == 1
    changes = events[0].properties["Changes"]
    assert set(changes) == {"Title", "Base URL", "Intro"}
    assert changes["Title"] == ["Your email preferences", "Your choices"]
    assert events[0].actor == ACTOR and events[0].source == "console"

    # Saving the same values again changes nothing and writes nothing.
    before = ledger_size(store)
    with store.write() as session:
        update_settings(session=session, actor=ACTOR, title="Your choices")
    assert ledger_size(store) == before


BAD_SETTINGS = {
    "blank wording": ("all_email_wording", "   ", "required"),
    "blank title": ("title", "", "required"),
    "long title": ("title", "x" * 121, "the most is 120"),
    "long confirmation": ("confirmation_text", "y" * 501, "the most is 500"),
    "long intro": ("intro", "z" * 1001, "the most is 1000"),
    "no scheme": ("base_url", "email.example.com", "http:// or https://"),
    "ftp": ("base_url", "ftp://email.example.com", "http:// or https://"),
    "no host": ("base_url", "https://", "http:// or https://"),
    "query": ("base_url", "https://example.com/?a=1", "query"),
    "bad port": ("base_url", "https://example.com:99999", "port"),
    "user part": ("base_url", "https://admin:secret@example.com", "user"),
    "user only": ("base_url", "https://evil.example@example.com", "user"),
    "angle bracket": ("base_url", "https://example.com/<script>", "<"),
    "closing bracket": ("base_url", "https://example.com/a>b", ">"),
    "quote": ("base_url", 'https://example.com/"onmouseover=x', '"'),
    "whitespace": ("base_url", "https://example.com/a b", "space"),
    "control character": ("title", "Tab\there", "control character"),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_bad_settings_are_refused_naming_the_field(sqlite_store: Store, case: str) -> None:
    """Checked before anything is written (validation is the same on both backends)."""
    field, value, says = BAD_SETTINGS[case]
    store = sqlite_store
    before = ledger_size(store)
    with pytest.raises(InvalidInput, match=says) as raised, store.write() as session:
        # A good title beside the bad value: nothing of either may be saved.
        values: dict[str, Any] = {"title": "Fine", field: value}
        update_settings(session=session, actor=ACTOR, **values)
    assert raised.value.field == field
    with store.read() as session:
        assert get_settings(session).title == "Your email preferences"  # nothing saved
    assert ledger_size(store) == before


def test_shown_groups_are_active_groups_marked_shown(world: LandingWorld) -> None:
    store = world.store
    with store.read() as session:
        assert [g.id for g in shown_groups(session)] == world.shown
    with store.write() as session:
        set_shown_groups(session=session, actor=ACTOR, group_ids=[world.internal, world.newsletter])
    with store.read() as session:
        assert [g.id for g in shown_groups(session)] == [world.internal, world.newsletter]
        updated = session.exec(select(Event).where(col(Event.name) == ledger.GROUP_UPDATED)).all()
    # Internal shown; Promotions and the script group hidden: three Group Updated events.
    assert sorted(e.group_id or 0 for e in updated) == sorted(
        [world.internal, world.promotions, world.script]
    )
    with pytest.raises(InvalidInput, match="archived"), store.write() as session:
        set_shown_groups(session=session, actor=ACTOR, group_ids=[world.old])
    with pytest.raises(UnknownGroup), store.write() as session:
        set_shown_groups(session=session, actor=ACTOR, group_ids=[9999])


# --- the page -------------------------------------------------------------------------


def test_the_page_shows_each_shown_group_with_its_effective_state(world: LandingWorld) -> None:
    # Never set: the policy decides (opt-out subscribed, opt-in not).
    assert states_on_page(world, world.ann) == {
        SCRIPT_NAME: "subscribed",
        "Newsletter": "subscribed",
        "Promotions": "unsubscribed",
    }
    set_state(world.store, world.ann, world.newsletter, "unsubscribed")
    set_state(world.store, world.ann, world.promotions, "subscribed")
    set_state(world.store, world.ann, None, "unsubscribed")
    with world.store.read() as session:
        page = page_for(session, world.ann, world.campaign_groups)
    assert {g.name: g.subscribed for g in page.groups} == {
        SCRIPT_NAME: True,
        "Newsletter": False,
        "Promotions": True,
    }
    assert page.all_email_unsubscribed and page.email == "ann@example.com"
    assert page.campaign_id == world.campaign_groups
    with pytest.raises(UnknownProfile), world.store.read() as session:
        page_for(session, 424242)


def test_saving_changes_exactly_what_changed(world: LandingWorld) -> None:
    store = world.store
    # Untick Newsletter only: the script group and Promotions keep their (never set) state.
    with store.write() as session:
        events = save_choices(
            session=session,
            profile_id=world.ann,
            campaign_id=world.campaign_none,
            subscribed_group_ids={world.script},
            all_email="subscribed",
            page_group_ids=world.shown,
        )
    assert [(e.group_id, e.properties["New State"]) for e in events] == [
        (world.newsletter, "unsubscribed")
    ]
    assert stored_states(store, world.ann) == {world.newsletter: "unsubscribed", None: "subscribed"}
    event = subscription_events(store, world.ann)[-1]
    assert event.source == "landing_page" and event.campaign_id == world.campaign_none
    assert event.properties["Campaign ID"] == world.campaign_none
    assert event.properties["Old State"] is None and event.actor == "recipient"

    # The same choices again: nothing changes, nothing is written.
    before = ledger_size(store)
    with store.write() as session:
        again = save_choices(
            session=session,
            profile_id=world.ann,
            campaign_id=None,
            subscribed_group_ids={world.script},
            all_email="subscribed",
        )
    assert again == [] and ledger_size(store) == before

    # Tick Promotions (opt-in) and leave all email, from the console.
    with store.write() as session:
        events = save_choices(
            session=session,
            profile_id=world.ann,
            campaign_id=None,
            subscribed_group_ids={world.script, world.promotions},
            all_email="unsubscribed",
            source="console",
            actor=ACTOR,
        )
    assert [(e.group_id, e.properties["New State"], e.source) for e in events] == [
        (world.promotions, "subscribed", "console"),
        (None, "unsubscribed", "console"),
    ]
    assert stored_states(store, world.ann)[world.promotions] == "subscribed"


@pytest.mark.parametrize(
    ("ticked", "page", "error"),
    [
        ("internal", None, InvalidInput),  # hidden from the page
        ("old", None, InvalidInput),  # archived
        (9999, None, InvalidInput),  # no such group
        ("newsletter", "with internal", PageOutdated),  # the form showed other groups
    ],
)
def test_a_save_naming_a_group_not_on_the_page_changes_nothing(
    world: LandingWorld, ticked: object, page: str | None, error: type[Exception]
) -> None:
    group_id = getattr(world, ticked) if isinstance(ticked, str) else ticked
    assert isinstance(group_id, int)
    page_ids = [*world.shown, world.internal] if page else world.shown
    before = ledger_size(world.store)
    states = stored_states(world.store, world.ann)
    with pytest.raises(error), world.store.write() as session:
        save_choices(
            session=session,
            profile_id=world.ann,
            campaign_id=None,
            subscribed_group_ids={group_id},  # and so unticks the others: must not happen
            all_email="unsubscribed",
            page_group_ids=page_ids,
        )
    assert ledger_size(world.store) == before
    assert stored_states(world.store, world.ann) == states


def test_a_save_with_a_bad_all_email_value_is_refused(world: LandingWorld) -> None:
    with pytest.raises(InvalidInput, match="All email"), world.store.write() as session:
        save_choices(
            session=session,
            profile_id=world.ann,
            campaign_id=None,
            subscribed_group_ids=set(),
            all_email="maybe",
        )


# --- one click ---------------------------------------------------------------------


def test_one_click_leaves_the_campaigns_groups_archived_ones_included(world: LandingWorld) -> None:
    store = world.store
    with store.read() as session:
        view = one_click_view(session, world.ann, world.campaign_groups)
    assert view.scope.group_names == ["Newsletter", "Old offers"] and not view.already
    with store.write() as session:
        scope, events = one_click(
            session=session, profile_id=world.ann, campaign_id=world.campaign_groups
        )
    assert not scope.all_email
    assert {(e.group_id, e.source, e.properties["Campaign ID"]) for e in events} == {
        (world.newsletter, "one_click", world.campaign_groups),
        (world.old, "one_click", world.campaign_groups),
    }
    assert stored_states(store, world.ann) == {
        world.newsletter: "unsubscribed",
        world.old: "unsubscribed",
        None: "subscribed",  # the other groups and all email are left alone
    }
    with store.read() as session:
        assert one_click_view(session, world.ann, world.campaign_groups).already
    # A second click writes nothing.
    with store.write() as session:
        assert (
            one_click(session=session, profile_id=world.ann, campaign_id=world.campaign_groups)[1]
            == []
        )


@pytest.mark.parametrize("campaign", ["none", "no campaign", "unknown"])
def test_one_click_without_campaign_groups_leaves_all_email(
    world: LandingWorld, campaign: str
) -> None:
    campaign_id = {"none": world.campaign_none, "no campaign": None, "unknown": 777}[campaign]
    with world.store.write() as session:
        scope, events = one_click(session=session, profile_id=world.ann, campaign_id=campaign_id)
    assert scope.all_email
    assert [(e.group_id, e.properties["Subscription Type"]) for e in events] == [(None, "Channel")]
    assert stored_states(world.store, world.ann) == {None: "unsubscribed"}


def test_the_batched_one_click_writes_what_one_click_writes(world: LandingWorld) -> None:
    """The server's group commit and the one-at-a-time path agree, event for event."""
    store = world.store
    set_state(store, world.bob, world.old, "unsubscribed")  # already out of one of them
    with store.write() as session:
        results = one_click_many(
            session=session,
            requests=[
                (world.ann, world.campaign_groups),
                (world.bob, world.campaign_groups),
                (world.ann, world.campaign_groups),  # twice in one batch: changed once
                (424242, world.campaign_groups),  # nobody: refused, the others go through
                (world.bob, None),
            ],
        )
    assert isinstance(results[3], UnknownProfile)
    assert [r.all_email for r in results if not isinstance(r, UnknownProfile)] == [
        False, False, False, True,
    ]  # fmt: skip
    batched = [
        (e.profile_id, e.group_id, e.source, e.campaign_id, e.properties["Old State"])
        for e in subscription_events(store)
        if e.source == "one_click"
    ]
    assert sorted(batched, key=str) == sorted(
        [
            (world.ann, world.newsletter, "one_click", world.campaign_groups, None),
            (world.ann, world.old, "one_click", world.campaign_groups, None),
            (world.bob, world.newsletter, "one_click", world.campaign_groups, None),
            (world.bob, None, "one_click", None, "subscribed"),
        ],
        key=str,
    )
    # The same properties as set_state would write (the reference path).
    with store.write() as session:
        _, reference = one_click(
            session=session, profile_id=world.ann, campaign_id=world.campaign_none
        )
    batched_event = next(e for e in subscription_events(store) if e.profile_id == world.bob
                         and e.group_id is None)  # fmt: skip
    expected = dict(reference[0].properties)
    got = dict(batched_event.properties)
    expected.pop("Campaign ID"), got.pop("Campaign ID")
    assert got == expected
    assert stored_states(store, world.bob) == {
        world.newsletter: "unsubscribed",
        world.old: "unsubscribed",
        None: "unsubscribed",
    }


def test_every_state_is_explained_by_its_latest_event(world: LandingWorld) -> None:
    """After a mix of saves and clicks, each stored state is the New State of its last event."""
    store = world.store
    with store.write() as session:
        save_choices(session=session, profile_id=world.ann, campaign_id=None,
                     subscribed_group_ids={world.promotions}, all_email="unsubscribed")  # fmt: skip
        one_click_many(session=session, requests=[(world.ann, world.campaign_groups)])
        save_choices(session=session, profile_id=world.ann, campaign_id=None,
                     subscribed_group_ids=set(world.shown), all_email="subscribed")  # fmt: skip
    latest: dict[int | None, str] = {}
    for event in subscription_events(store, world.ann):
        latest[event.group_id] = event.properties["New State"]
    assert latest == stored_states(store, world.ann)
    with store.read() as session:
        assert session.get(Group, world.newsletter) is not None


def test_a_locked_page_keeps_a_change_committed_meanwhile(world: LandingWorld) -> None:
    """Acting from a page read with ``lock=True`` (the console's act-as-recipient):
    the person's own change to another group, committed from another connection
    while the save is being made, waits and is kept, not reverted."""
    import threading

    from app.core.store import open_store

    other = open_store(world.store.url)
    done = threading.Event()

    def person_leaves_promotions() -> None:
        set_state(other, world.ann, world.promotions, "subscribed")
        done.set()

    try:
        with world.store.write() as session:
            page = page_for(session, world.ann, lock=True)
            thread = threading.Thread(target=person_leaves_promotions)
            thread.start()
            # The person's write waits for this transaction (row lock / write lock).
            assert not done.wait(0.5)
            ticked = {g.id for g in page.groups if g.state == "subscribed"} - {world.newsletter}
            save_choices(
                session=session,
                profile_id=world.ann,
                campaign_id=None,
                subscribed_group_ids=ticked,
                all_email=page.all_email,
                source="console",
                actor=ACTOR,
            )
        thread.join(20)
        assert done.is_set()
        states = stored_states(world.store, world.ann)
        assert states[world.newsletter] == "unsubscribed"  # the admin's change
        assert states[world.promotions] == "subscribed"  # the person's, kept
    finally:
        other.dispose()
