"""The consent ledger: append-only in the database itself, read back in order.

The live event log pane polls ``events_after`` with the last id it saw; the
CLI's ``subgroups events`` and the pane's filters use ``recent_events``.
"""

from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.core import groups, ledger, profiles, subscriptions
from app.core.models import Event, Group
from app.core.store import Store

ACTOR = "ada"


def create(store: Store, name: str) -> Group:
    with store.write() as session:
        return groups.create_group(session=session, name=name, actor=ACTOR)


def describe(store: Store, group: Group, description: str) -> None:
    assert group.id is not None
    with store.write() as session:
        groups.update_group(
            session=session, group_id=group.id, description=description, actor=ACTOR
        )


def ledger_rows(store: Store) -> list[tuple[int, str, dict[str, object]]]:
    with store.engine.connect() as conn:
        return [
            (row.id, row.name, row.properties)
            for row in conn.execute(
                text("SELECT id, name, properties FROM ledger_event ORDER BY id")
            )
        ]


# --- Append-only ---------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_event SET name = 'Nothing Happened'",
        "UPDATE ledger_event SET properties = '{}' WHERE name = 'Group Created'",
        "DELETE FROM ledger_event",
        "DELETE FROM ledger_event WHERE id = 1",
    ],
    ids=["update-all", "update-properties", "delete-all", "delete-one"],
)
def test_the_database_refuses_to_change_or_delete_events(store: Store, statement: str) -> None:
    create(store, "Newsletter")
    create(store, "Promotions")
    before = ledger_rows(store)

    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text(statement))

    assert ledger_rows(store) == before


def test_the_orm_cannot_edit_or_delete_an_event_either(store: Store) -> None:
    create(store, "Newsletter")
    before = ledger_rows(store)

    with pytest.raises(DBAPIError, match="append-only"), store.write() as session:
        event = session.get(Event, before[0][0])
        assert event is not None
        event.name = "Edited"
        session.add(event)
    with pytest.raises(DBAPIError, match="append-only"), store.write() as session:
        event = session.get(Event, before[0][0])
        session.delete(event)

    assert ledger_rows(store) == before


def test_an_unknown_source_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="'carrier pigeon'"), store.write() as session:
        ledger.record(
            session, name="Group Created", source="carrier pigeon", actor=ACTOR, properties={}
        )
    assert ledger_rows(store) == []


# --- Reading: events_after (the live pane) and recent_events (filters) --------


def test_events_after_returns_later_events_oldest_first(
    store: Store, fixed_clock: datetime
) -> None:
    with store.read() as session:
        assert ledger.latest_id(session) == 0
        assert ledger.events_after(session, after_id=0) == []
    names = [f"Group {i}" for i in range(5)]
    for name in names:
        create(store, name)

    with store.read() as session:
        everything = ledger.events_after(session, after_id=0)
        last = ledger.latest_id(session)
        later = ledger.events_after(session, after_id=everything[1].id)
        first_two = ledger.events_after(session, after_id=0, limit=2)
        nothing_new = ledger.events_after(session, after_id=last)

    assert [e.properties["Group"] for e in everything] == names
    assert [e.id for e in everything] == sorted(e.id for e in everything)
    assert [e.ts for e in everything] == sorted(e.ts for e in everything)
    assert last == everything[-1].id
    assert later == everything[2:]
    assert first_two == everything[:2]
    assert nothing_new == []


def test_a_poller_sees_events_committed_after_its_last_look(store: Store) -> None:
    create(store, "Newsletter")
    with store.read() as session:
        seen = ledger.latest_id(session)

    create(store, "Promotions")
    with store.write() as session:
        profile = profiles.create_profile(session=session, identity="ann@example.com")
        group = groups.find_group(session, "Newsletter")
        subscriptions.set_state(
            session=session,
            profile=profile,
            group=group,
            status="unsubscribed",
            source="landing_page",
            actor="ann@example.com",
        )

    with store.read() as session:
        new = ledger.events_after(session, after_id=seen)
    assert [(e.name, e.properties["Group"]) for e in new] == [
        ("Group Created", "Promotions"),
        ("Channel Unsubscribed", "Newsletter"),
    ]
    assert new[1].identity == "ann@example.com"


def test_recent_events_returns_the_newest_oldest_first(store: Store) -> None:
    for i in range(6):
        create(store, f"Group {i}")

    with store.read() as session:
        newest = ledger.recent_events(session, limit=3)

    assert [e.properties["Group"] for e in newest] == ["Group 3", "Group 4", "Group 5"]


def test_recent_events_filters_by_event_name(store: Store) -> None:
    newsletter = create(store, "Newsletter")
    create(store, "Promotions")
    describe(store, newsletter, "Weekly")
    assert newsletter.id is not None
    with store.write() as session:
        groups.archive_group(session=session, group_id=newsletter.id, actor=ACTOR)

    with store.read() as session:
        created = ledger.recent_events(session, name="Group Created")
        archived = ledger.recent_events(session, name="Group Archived")
        none = ledger.recent_events(session, name="Campaign Sent")

    assert [e.properties["Group"] for e in created] == ["Newsletter", "Promotions"]
    assert [e.group_id for e in archived] == [newsletter.id]
    assert none == []


def test_recent_events_filters_by_group_name_at_the_time(store: Store) -> None:
    offers = create(store, "Offers")
    create(store, "Newsletter")
    describe(store, offers, "Deals of the week")
    assert offers.id is not None
    with store.write() as session:
        groups.update_group(session=session, group_id=offers.id, name="Deals", actor=ACTOR)

    with store.read() as session:
        as_offers = ledger.recent_events(session, group="OFFERS")
        as_deals = ledger.recent_events(session, group="deals")
        updates_as_offers = ledger.recent_events(session, group="Offers", name="Group Updated")

    assert [e.name for e in as_offers] == ["Group Created", "Group Updated"]
    assert [e.name for e in as_deals] == ["Group Updated"]
    assert as_deals[0].properties["Previous Name"] == "Offers"
    assert [e.properties["Changes"] for e in updates_as_offers] == [
        {"Description": ["", "Deals of the week"]}
    ]


def test_a_busy_group_does_not_hide_a_quiet_ones_events(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    quiet = create(store, "Quiet")
    busy = create(store, "Busy")
    describe(store, quiet, "rarely changes")
    for i in range(45):
        describe(store, busy, f"change {i}")
    # Read in small pages so the search has to go back over several of them.
    monkeypatch.setattr(ledger, "GROUP_SCAN_PAGE", 7)

    with store.read() as session:
        quiet_events = ledger.recent_events(session, limit=2, group="Quiet")
        busy_events = ledger.recent_events(session, limit=3, group="Busy")
        only_one = ledger.recent_events(session, limit=1, group="Quiet")
        unknown = ledger.recent_events(session, limit=5, group="Nobody")

    assert [e.name for e in quiet_events] == ["Group Created", "Group Updated"]
    assert [e.properties["Changes"]["Description"][1] for e in busy_events] == [
        "change 42",
        "change 43",
        "change 44",
    ]
    assert [e.name for e in only_one] == ["Group Updated"]
    assert unknown == []


def test_profile_history_is_newest_first(store: Store) -> None:
    newsletter = create(store, "Newsletter")
    with store.write() as session:
        ann = profiles.create_profile(session=session, identity="ann@example.com")
        bob = profiles.create_profile(session=session, identity="bob@example.com")
    for profile, status in [(ann, "unsubscribed"), (bob, "unsubscribed"), (ann, "subscribed")]:
        with store.write() as session:
            subscriptions.set_state(
                session=session,
                profile=profile,
                group=newsletter,
                status=status,
                source="console",
                actor=ACTOR,
            )
    assert ann.id is not None

    with store.read() as session:
        history = ledger.profile_events(session, profile_id=ann.id)
        filtered = ledger.recent_events(session, profile_id=ann.id)

    assert [e.properties["New State"] for e in history] == ["subscribed", "unsubscribed"]
    assert {e.identity for e in history} == {"ann@example.com"}
    assert filtered == list(reversed(history))


def test_an_event_as_json(store: Store, fixed_clock: datetime) -> None:
    create(store, "<b>News</b>")

    with store.read() as session:
        (event,) = ledger.recent_events(session)

    assert event.group_name == "<b>News</b>"
    assert event.to_json() == {
        "id": event.id,
        "ts": "2026-11-20T09:00:00+00:00",
        "name": "Group Created",
        "identity": None,
        "properties": event.properties,
    }


def test_event_properties_are_stored_compact_and_read_back_whole(store: Store) -> None:
    """A ledger event's JSON has no padding (a tenth of an imported event) and reads back equal."""
    group = create(store, "News: daily, weekly")
    with store.write() as session:
        profile = profiles.create_profile(session=session, identity="ann", properties={"a": "b c"})
        assert group.id is not None
        subscriptions.apply_changes(
            session=session,
            changes=[(profile.id, "ann", group.id, group.name, None, "unsubscribed", None, None)],
            source="import",
            actor=ACTOR,
        )
    with store.engine.connect() as conn:
        stored = [
            str(row[0])
            for row in conn.execute(
                text(
                    "SELECT CAST(properties AS TEXT) FROM ledger_event UNION ALL "
                    "SELECT CAST(properties AS TEXT) FROM profile"
                )
            )
        ]
    assert len(stored) == 3
    assert not [s for s in stored if '", ' in s or '": ' in s], stored
    # The text inside values keeps its spaces and punctuation.
    assert '"Group":"News: daily, weekly"' in stored[1] and stored[2] == '{"a":"b c"}'
    with store.read() as session:
        created, changed = ledger.recent_events(session)
        ann = profiles.get_profile(session, "ann")
    assert (created.name, changed.name) == ("Group Created", "Channel Unsubscribed")
    assert changed.properties["Group"] == "News: daily, weekly"
    assert changed.properties["New State"] == "unsubscribed"
    assert changed.properties["Old State"] is None and changed.properties["Reason"] is None
    assert ann.properties == {"a": "b c"}
