"""Subscription states: every change writes exactly one ledger event, atomically.

``set_state`` is the one way a state changes (DESIGN.md §1, the consent
ledger); ``apply_changes`` is its bulk twin for seeding and imports and must
leave the same rows and the same events behind.
"""

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from app.core import groups, ledger, profiles, subscriptions
from app.core.errors import InvalidInput, NameTaken, SubgroupsError
from app.core.ledger import EventRecord
from app.core.models import Event, Group, GroupState, Profile
from app.core.store import Store
from app.core.subscriptions import StateChange

ACTOR = "ada"
DESIGN_PROPERTIES = {
    "Channel",
    "Group",
    "Group ID",
    "Subscription Type",
    "Resubscribed",
    "Old State",
    "New State",
    "Source",
    "Campaign ID",
    "Actor",
    "Reason",
}


@pytest.fixture
def people(store: Store) -> tuple[Group, Group, Profile, Profile]:
    """Two groups (Newsletter opt-out, Promotions opt-in) and two profiles."""
    with store.write() as session:
        newsletter = groups.create_group(session=session, name="Newsletter", actor=ACTOR)
        promotions = groups.create_group(
            session=session, name="Promotions", policy="opt-in", actor=ACTOR
        )
        ann = profiles.create_profile(
            session=session, identity="ann@example.com", email="ann@example.com"
        )
        bob = profiles.create_profile(
            session=session, identity="bob@example.com", email="bob@example.com"
        )
    return newsletter, promotions, ann, bob


def set_state(
    store: Store, profile: Profile, group: Group | None, status: str, **kwargs: Any
) -> Event | None:
    kwargs.setdefault("source", "console")
    kwargs.setdefault("actor", ACTOR)
    with store.write() as session:
        return subscriptions.set_state(
            session=session, profile=profile, group=group, status=status, **kwargs
        )


def changes(store: Store, profile: Profile | None = None) -> list[EventRecord]:
    """The subscription events, oldest first (for one profile when given)."""
    with store.read() as session:
        return ledger.recent_events(
            session,
            limit=10_000,
            name="Channel Unsubscribed",
            profile_id=profile.id if profile else None,
        )


def stored(store: Store, profile: Profile, group: Group) -> str | None:
    with store.read() as session:
        row = session.get(GroupState, (profile.id, group.id))
        return row.state if row else None


def all_email(store: Store, profile: Profile) -> str:
    with store.read() as session:
        found = session.get(Profile, profile.id)
        assert found is not None
        return found.all_email


def test_a_group_unsubscribe_writes_one_event_with_every_property(
    store: Store, people: tuple[Group, Group, Profile, Profile], fixed_clock: datetime
) -> None:
    newsletter, _, ann, _ = people

    returned = set_state(
        store,
        ann,
        newsletter,
        "unsubscribed",
        source="landing_page",
        actor="ann@example.com",
        campaign_id=7,
        reason="  too many emails  ",
    )

    assert stored(store, ann, newsletter) == "unsubscribed"
    (event,) = changes(store)
    assert returned is not None and returned.id == event.id
    assert set(event.properties) == DESIGN_PROPERTIES
    assert event.properties == {
        "Channel": "Email",
        "Group": "Newsletter",
        "Group ID": newsletter.id,
        "Subscription Type": "Group",
        "Resubscribed": False,
        "Old State": None,
        "New State": "unsubscribed",
        "Source": "landing_page",
        "Campaign ID": 7,
        "Actor": "ann@example.com",
        "Reason": "too many emails",
    }
    assert event.name == "Channel Unsubscribed"
    assert event.identity == "ann@example.com"
    assert event.group_id == newsletter.id
    assert event.source == "landing_page"
    assert event.actor == "ann@example.com"
    assert fixed_clock <= event.ts < fixed_clock + timedelta(minutes=1)
    with store.read() as session:
        row = session.get(GroupState, (ann.id, newsletter.id))
        assert row is not None and row.updated_at == event.ts
        raw = session.get(Event, event.id)
        assert raw is not None and (raw.profile_id, raw.campaign_id) == (ann.id, 7)


def test_a_resubscribe_is_the_same_event_with_resubscribed_true(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    newsletter, _, ann, _ = people
    set_state(store, ann, newsletter, "unsubscribed")

    set_state(store, ann, newsletter, "subscribed")

    assert stored(store, ann, newsletter) == "subscribed"
    first, second = changes(store)
    assert second.name == "Channel Unsubscribed"
    assert second.properties["Resubscribed"] is True
    assert (second.properties["Old State"], second.properties["New State"]) == (
        "unsubscribed",
        "subscribed",
    )
    assert second.properties["Reason"] is None
    assert second.properties["Campaign ID"] is None


def test_setting_the_same_state_again_writes_nothing(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    newsletter, _, ann, _ = people
    set_state(store, ann, newsletter, "unsubscribed")
    set_state(store, ann, None, "unsubscribed")

    assert set_state(store, ann, newsletter, "unsubscribed") is None
    assert set_state(store, ann, None, "unsubscribed") is None

    assert len(changes(store)) == 2
    assert stored(store, ann, newsletter) == "unsubscribed"


def test_an_explicit_state_equal_to_the_default_is_still_recorded(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    """'Never set' and 'subscribed' differ: the person said yes, and the ledger says when."""
    newsletter, _, ann, _ = people

    assert set_state(store, ann, newsletter, "subscribed") is not None

    assert stored(store, ann, newsletter) == "subscribed"
    (event,) = changes(store)
    assert (event.properties["Old State"], event.properties["New State"]) == (None, "subscribed")


def test_the_channel_wide_opt_out_leaves_group_states_alone(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    newsletter, promotions, ann, _ = people
    set_state(store, ann, newsletter, "unsubscribed")
    set_state(store, ann, promotions, "subscribed")

    set_state(store, ann, None, "unsubscribed", reason="moving away")
    assert all_email(store, ann) == "unsubscribed"
    set_state(store, ann, None, "subscribed")

    # Resubscribing to the channel does not silently re-enable the group she left.
    assert all_email(store, ann) == "subscribed"
    assert stored(store, ann, newsletter) == "unsubscribed"
    assert stored(store, ann, promotions) == "subscribed"
    left, resubscribed = changes(store)[-2:]
    assert left.group_id is None
    assert left.properties == {
        "Channel": "Email",
        "Group": None,
        "Group ID": None,
        "Subscription Type": "Channel",
        "Resubscribed": False,
        "Old State": "subscribed",
        "New State": "unsubscribed",
        "Source": "console",
        "Campaign ID": None,
        "Actor": ACTOR,
        "Reason": "moving away",
    }
    assert resubscribed.properties["Subscription Type"] == "Channel"
    assert resubscribed.properties["Resubscribed"] is True
    assert (resubscribed.properties["Old State"], resubscribed.properties["New State"]) == (
        "unsubscribed",
        "subscribed",
    )


def test_an_archived_groups_state_can_still_change(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    newsletter, _, ann, _ = people
    assert newsletter.id is not None
    with store.write() as session:
        archived = groups.archive_group(session=session, group_id=newsletter.id, actor=ACTOR)

    set_state(store, ann, archived, "unsubscribed")
    set_state(store, ann, archived, "subscribed")

    assert stored(store, ann, archived) == "subscribed"
    assert [e.properties["New State"] for e in changes(store)] == ["unsubscribed", "subscribed"]


def test_a_failure_later_in_the_transaction_undoes_state_and_event(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    newsletter, _, ann, _ = people

    with pytest.raises(RuntimeError, match="power cut"), store.write() as session:
        subscriptions.set_state(
            session=session,
            profile=ann,
            group=newsletter,
            status="unsubscribed",
            source="console",
            actor=ACTOR,
        )
        subscriptions.set_state(
            session=session,
            profile=ann,
            group=None,
            status="unsubscribed",
            source="console",
            actor=ACTOR,
        )
        raise RuntimeError("power cut")

    assert stored(store, ann, newsletter) is None
    assert all_email(store, ann) == "subscribed"
    assert changes(store) == []


def test_a_refused_rule_later_in_the_transaction_undoes_state_and_event(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    newsletter, _, ann, _ = people
    before = changes(store)

    with pytest.raises(NameTaken), store.write() as session:
        subscriptions.set_state(
            session=session,
            profile=ann,
            group=newsletter,
            status="unsubscribed",
            source="cli",
            actor=ACTOR,
        )
        groups.create_group(session=session, name="newsletter", actor=ACTOR)

    assert stored(store, ann, newsletter) is None
    assert changes(store) == before


def test_bad_status_and_reason_are_refused_and_change_nothing(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    newsletter, _, ann, _ = people

    with pytest.raises(InvalidInput) as bad_status:
        set_state(store, ann, newsletter, "maybe")
    assert bad_status.value.field == "status"
    assert "'maybe'" in bad_status.value.message
    with pytest.raises(InvalidInput) as long_reason:
        set_state(store, ann, newsletter, "unsubscribed", reason="r" * 501)
    assert long_reason.value.field == "reason"

    assert stored(store, ann, newsletter) is None
    assert changes(store) == []


def test_the_current_state_is_the_new_state_of_the_latest_event(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    newsletter, promotions, ann, _ = people
    steps = [
        (newsletter, "unsubscribed"),
        (promotions, "subscribed"),
        (newsletter, "subscribed"),
        (None, "unsubscribed"),
        (newsletter, "subscribed"),
        (newsletter, "unsubscribed"),
        (promotions, "unsubscribed"),
        (None, "subscribed"),
    ]
    for group, status in steps:
        set_state(store, ann, group, status)

    history = changes(store, ann)
    assert len(history) == len(steps) - 1  # one of them changed nothing
    latest: dict[int | None, Any] = {}
    for event in history:
        assert event.properties["Old State"] == latest.get(
            event.group_id, "subscribed" if event.group_id is None else None
        )
        latest[event.group_id] = event.properties["New State"]
    assert latest[newsletter.id] == stored(store, ann, newsletter) == "unsubscribed"
    assert latest[promotions.id] == stored(store, ann, promotions) == "unsubscribed"
    assert latest[None] == all_email(store, ann) == "subscribed"


# --- The bulk path -------------------------------------------------------------


def _plan(
    session: Any, profile: Profile, wanted: list[tuple[Group | None, str]], ts: datetime
) -> list[StateChange]:
    """Plan changes from the stored states, as an import does inside its transaction."""
    assert profile.id is not None
    states = subscriptions.stored_states(session, [profile.id])
    fresh = session.get(Profile, profile.id, populate_existing=True)
    plan = []
    for group, new in wanted:
        if group is None:
            old = fresh.all_email
        else:
            assert group.id is not None
            old = states.get((profile.id, group.id))
        plan.append(
            StateChange(
                profile.id,
                profile.identity,
                group.id if group else None,
                group.name if group else None,
                old,
                new,
                reason="import",
                ts=ts,
            )  # fmt: skip
        )
    return plan


def _trail(
    store: Store, profile: Profile
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], str]:
    """What a profile's states and events look like, without what names the profile."""
    with store.read() as session:
        rows = session.exec(
            select(GroupState)
            .where(col(GroupState.profile_id) == profile.id)
            .order_by(col(GroupState.group_id))
        ).all()
        events = session.exec(
            select(Event).where(col(Event.profile_id) == profile.id).order_by(col(Event.id))
        ).all()
        fresh = session.get(Profile, profile.id)
        assert fresh is not None
        return (
            [(r.group_id, r.state, r.updated_at) for r in rows],
            [
                (e.ts, e.name, e.group_id, e.campaign_id, e.source, e.actor, e.properties)
                for e in events
            ],
            fresh.all_email,
        )


def test_apply_changes_leaves_the_same_rows_and_events_as_set_state(
    store: Store, people: tuple[Group, Group, Profile, Profile], fixed_clock: datetime
) -> None:
    newsletter, promotions, ann, bob = people
    rounds: list[list[tuple[Group | None, str]]] = [
        [(newsletter, "unsubscribed"), (promotions, "subscribed"), (None, "unsubscribed")],
        [(newsletter, "subscribed"), (promotions, "subscribed"), (None, "subscribed")],
    ]
    written = []
    for number, wanted in enumerate(rounds):
        ts = fixed_clock + timedelta(hours=number)
        for group, status in wanted:  # one by one, for Ann
            set_state(
                store, ann, group, status, source="import", reason="import", campaign_id=3, now=ts
            )
        with store.write() as session:  # in bulk, for Bob
            written.append(
                subscriptions.apply_changes(
                    session=session,
                    changes=_plan(session, bob, wanted, ts),
                    source="import",
                    actor=ACTOR,
                    campaign_id=3,
                )
            )

    # Round two re-subscribes Promotions, which is already subscribed: skipped.
    assert written == [3, 2]
    ann_trail, bob_trail = _trail(store, ann), _trail(store, bob)
    assert ann_trail == bob_trail
    states, events, channel = bob_trail
    assert [s[:2] for s in states] == [(newsletter.id, "subscribed"), (promotions.id, "subscribed")]
    assert len(events) == 5 and channel == "subscribed"
    for event in events:
        assert set(event[-1]) == DESIGN_PROPERTIES


def test_apply_changes_rolls_back_with_its_transaction(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    newsletter, _, ann, _ = people
    assert ann.id is not None

    with pytest.raises(RuntimeError), store.write() as session:
        subscriptions.apply_changes(
            session=session,
            changes=[
                StateChange(ann.id, ann.identity, newsletter.id, "Newsletter", None, "unsubscribed")
            ],
            source="import",
            actor=ACTOR,
        )
        raise RuntimeError("the file had a bad row further down")

    assert stored(store, ann, newsletter) is None
    assert changes(store) == []


def test_stored_states_reads_only_what_was_set(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    newsletter, promotions, ann, bob = people
    set_state(store, ann, newsletter, "unsubscribed")
    set_state(store, bob, promotions, "subscribed")
    assert ann.id is not None and bob.id is not None

    with store.read() as session:
        assert subscriptions.stored_states(session, [ann.id, bob.id]) == {
            (ann.id, newsletter.id): "unsubscribed",
            (bob.id, promotions.id): "subscribed",
        }
        assert subscriptions.stored_states(session, []) == {}


# --- set_state_for: the one service the console, the CLI and scripts call ----------------


def test_set_state_for_finds_the_person_and_group_by_name_and_writes_one_event(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    newsletter, _, ann, _ = people

    with store.write() as session:
        done = subscriptions.set_state_for(
            session=session,
            identity="ann@example.com",
            group="newsletter",  # names compare case-insensitively
            status="unsubscribed",
            source="cli",
            actor=ACTOR,
            reason="asked by phone",
        )

    assert done.changed and done.event is not None
    assert (done.profile_id, done.identity) == (ann.id, "ann@example.com")
    assert (done.group_id, done.group_name) == (newsletter.id, "Newsletter")
    assert done.target == "group 'Newsletter'"
    assert stored(store, ann, newsletter) == "unsubscribed"
    [event] = changes(store, ann)
    assert event == done.event
    assert event.properties["Reason"] == "asked by phone"
    assert event.properties["Source"] == "cli"


def test_set_state_for_takes_ids_and_all_email(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    _, promotions, _, bob = people
    assert bob.id is not None and promotions.id is not None

    with store.write() as session:
        group_done = subscriptions.set_state_for(
            session=session, profile_id=bob.id, group_id=promotions.id, status="subscribed",
            source="console", actor=ACTOR,
        )  # fmt: skip
        channel_done = subscriptions.set_state_for(
            session=session, profile_id=bob.id, all_email=True, status="unsubscribed",
            source="console", actor=ACTOR,
        )  # fmt: skip

    assert group_done.changed and group_done.group_name == "Promotions"
    assert channel_done.changed and channel_done.group_id is None
    assert channel_done.target == "all email"
    with store.read() as session:
        assert session.get(Profile, bob.id).all_email == "unsubscribed"  # type: ignore[union-attr]
    assert [e.group_name for e in changes(store, bob)] == ["Promotions", None]


def test_set_state_for_says_when_nothing_changes(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    _, _, ann, _ = people

    with store.write() as session:
        done = subscriptions.set_state_for(
            session=session, identity=ann.identity, all_email=True, status="subscribed",
            source="cli", actor=ACTOR,
        )  # fmt: skip

    assert not done.changed and done.event is None
    assert changes(store) == []


@pytest.mark.parametrize(
    ("whom", "error", "words"),
    [
        ({"identity": "nobody@example.com", "group": "Newsletter"}, "UnknownProfile", "nobody"),
        ({"identity": "ann@example.com", "group": "Weekly"}, "UnknownGroup", "Weekly"),
        ({"identity": "ann@example.com", "group_id": 999}, "UnknownGroup", "999"),
        ({"profile_id": 999, "all_email": True}, "UnknownProfile", "999"),
        ({"group": "Newsletter"}, "InvalidInput", "identity or a profile id"),
        (
            {"identity": "ann@example.com", "profile_id": 1, "all_email": True},
            "InvalidInput",
            "identity or a profile id",
        ),
        ({"identity": "ann@example.com"}, "InvalidInput", "a group or all email"),
        (
            {"identity": "ann@example.com", "group": "Newsletter", "all_email": True},
            "InvalidInput",
            "a group or all email",
        ),
        (
            {"identity": "ann@example.com", "group": "Newsletter", "status": "maybe"},
            "InvalidInput",
            "maybe",
        ),
    ],
)
def test_set_state_for_refuses_what_it_cannot_find_and_writes_nothing(
    store: Store,
    people: tuple[Group, Group, Profile, Profile],
    whom: dict[str, Any],
    error: str,
    words: str,
) -> None:
    kwargs: dict[str, Any] = {"status": "unsubscribed", "source": "cli", "actor": ACTOR, **whom}

    with pytest.raises(SubgroupsError) as refused, store.write() as session:
        subscriptions.set_state_for(session=session, **kwargs)

    assert type(refused.value).__name__ == error
    assert words in refused.value.message
    assert changes(store) == []


def test_a_state_change_carries_the_groups_id_and_name(
    store: Store, people: tuple[Group, Group, Profile, Profile]
) -> None:
    newsletter, _, ann, _ = people
    assert ann.id is not None and newsletter.id is not None

    with store.write() as session:
        subscriptions.apply_changes(
            session=session,
            changes=[
                StateChange(
                    ann.id, ann.identity, group_id=newsletter.id, group_name="Newsletter",
                    old=None, new="unsubscribed",
                )
            ],
            source="import",
            actor=ACTOR,
        )  # fmt: skip

    [event] = changes(store, ann)
    assert (event.group_id, event.group_name) == (newsletter.id, "Newsletter")
    assert stored(store, ann, newsletter) == "unsubscribed"
