"""Insights against a hand count: unsubscribes by group, source, campaign and reason,
and each group's net change per day, on SQLite and PostgreSQL.

The counts come from the ledger's daily counts, kept by a trigger in each
event's own transaction; these tests also check that they agree with the
ledger itself, whatever path wrote the events.
"""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.core import campaigns, groups, insights, ledger_days, profiles, subscriptions
from app.core.errors import InvalidInput
from app.core.models import Delivery, Event, Profile
from app.core.store import Store

ACTOR = "tester"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def ago(days: int, hours: int = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


@pytest.fixture
def world(store: Store) -> dict[str, int]:
    """Two groups, six people, one campaign with 400 messages sent, and this story:

    day -2: ann leaves News (one_click, campaign), bob leaves News (landing_page, campaign)
    day -5: cid leaves Deals (cli), dan leaves all email (console)
    day -40: eve leaves News (import)        -- outside a 30-day window, inside 90
    day -1: fay joins Deals (cli), ann rejoins News (landing_page)
    """
    with store.write() as session:
        news = groups.create_group(session=session, name="News", actor=ACTOR)
        deals = groups.create_group(session=session, name="Deals", actor=ACTOR)
        sale = campaigns.create_campaign(session=session, name="Sale", actor=ACTOR)
        people = {
            name: profiles.create_profile(session=session, identity=name, email=f"{name}@x.test")
            for name in ("ann", "bob", "cid", "dan", "eve", "fay")
        }
        for person in people.values():
            session.add(
                Delivery(campaign_id=sale.id, profile_id=person.id, sent_at=ago(3), batch=0)
            )
        for n in range(394):  # 400 sent in all, to people not in this story
            extra = profiles.create_profile(session=session, identity=f"x{n}")
            session.add(Delivery(campaign_id=sale.id, profile_id=extra.id, sent_at=ago(3)))

        def change(
            who: str, group: object, status: str, source: str, when: datetime, **kw: object
        ) -> None:
            subscriptions.set_state(
                session=session, profile=people[who], group=group, status=status,  # type: ignore[arg-type]
                source=source, actor=ACTOR, now=when, **kw,  # type: ignore[arg-type]
            )  # fmt: skip

        change("ann", news, "unsubscribed", "one_click", ago(2), campaign_id=sale.id)
        change("bob", news, "unsubscribed", "landing_page", ago(2, 3), campaign_id=sale.id)
        change("cid", deals, "unsubscribed", "cli", ago(5))
        change("dan", None, "unsubscribed", "console", ago(5))
        change("eve", news, "unsubscribed", "import", ago(40))
        change("fay", deals, "subscribed", "cli", ago(1))
        change("ann", news, "subscribed", "landing_page", ago(1))
    assert news.id and deals.id and sale.id
    return {"news": news.id, "deals": deals.id, "sale": sale.id}


def by(store: Store, key: str, days: int) -> list[dict[str, object]]:
    with store.read() as session:
        return [
            row.to_json(key)
            for row in insights.unsubscribes_by(session, by=key, days=days, now=NOW)
        ]


def test_unsubscribes_by_group_match_the_hand_count(store: Store, world: dict[str, int]) -> None:
    assert by(store, "group", 30) == [
        {"group": "News", "unsubscribes": 2, "id": world["news"]},
        {"group": "(all email)", "unsubscribes": 1, "id": None},
        {"group": "Deals", "unsubscribes": 1, "id": world["deals"]},
    ]
    assert by(store, "group", 90)[0] == {"group": "News", "unsubscribes": 3, "id": world["news"]}


def test_unsubscribes_by_source_list_every_source(store: Store, world: dict[str, int]) -> None:
    counts = {row["source"]: row["unsubscribes"] for row in by(store, "source", 30)}

    assert counts == {
        "one_click": 1, "landing_page": 1, "console": 1, "cli": 1,
        "mailto": 0, "complaint": 0, "bounce": 0, "import": 0,
    }  # fmt: skip
    assert {row["source"]: row["unsubscribes"] for row in by(store, "source", 90)}["import"] == 1


def test_unsubscribes_by_campaign_per_thousand_sent(store: Store, world: dict[str, int]) -> None:
    assert by(store, "campaign", 30) == [
        {
            "campaign": "Sale",
            "unsubscribes": 2,
            "id": world["sale"],
            "sent": 400,
            "per_thousand_sent": 5.0,
        }
    ]


def test_a_one_day_window_holds_only_today(store: Store, world: dict[str, int]) -> None:
    assert by(store, "group", 1) == []


def test_net_change_per_group_and_day(store: Store, world: dict[str, int]) -> None:
    with store.read() as session:
        span, series = insights.group_series(session, days=7, now=NOW)
    assert span[-1] == NOW.date() and len(span) == 7
    news = next(s for s in series if s.name == "News")
    deals = next(s for s in series if s.name == "Deals")
    # Days -6 .. 0: News loses two on day -2 and gains ann back on day -1.
    assert news.net == [0, 0, 0, 0, -2, 1, 0]
    assert news.unsubscribes == [0, 0, 0, 0, 2, 0, 0]
    assert deals.net == [0, -1, 0, 0, 0, 1, 0]


def test_the_daily_counts_agree_with_a_recount_of_the_ledger(
    store: Store, world: dict[str, int]
) -> None:
    """Later writes count too; the upgrade's backfill, one pass over the ledger, agrees."""
    with store.write() as session:
        people = session.exec(
            text("SELECT id FROM profile WHERE identity LIKE 'x%' LIMIT 10")
        ).all()
        targets = [session.get(Profile, pid) for (pid,) in people]
        for person in targets:
            assert person is not None
            subscriptions.set_state(
                session=session, profile=person, group=groups.get_group(session, world["deals"]),
                status="unsubscribed", source="import", actor=ACTOR, now=ago(0),
            )  # fmt: skip
    query = (
        "SELECT day, group_id, source, campaign_id, state, events FROM ledger_day "
        "ORDER BY 1, 2, 3, 4, 5"
    )
    with store.engine.connect() as conn:
        kept = conn.execute(text(query)).all()
    with store.engine.begin() as conn:
        ledger_days.backfill(conn)
    with store.engine.connect() as conn:
        recounted = conn.execute(text(query)).all()
    assert kept == recounted
    assert by(store, "source", 1)[0] == {"source": "import", "unsubscribes": 10}


def test_a_bad_window_or_key_is_refused(store: Store, world: dict[str, int]) -> None:
    with store.read() as session, pytest.raises(InvalidInput, match="--days 0"):
        insights.unsubscribes_by(session, by="group", days=0, now=NOW)
    with store.read() as session, pytest.raises(InvalidInput, match="--by colour"):
        insights.unsubscribes_by(session, by="colour", days=30, now=NOW)


def test_a_rolled_back_change_is_not_counted_and_a_many_row_insert_is(
    store: Store, world: dict[str, int]
) -> None:
    before = by(store, "source", 30)
    with pytest.raises(RuntimeError), store.write() as session:
        person = profiles.create_profile(session=session, identity="gone")
        subscriptions.set_state(
            session=session, profile=person, group=groups.get_group(session, world["news"]),
            status="unsubscribed", source="mailto", actor=ACTOR, now=ago(1),
        )  # fmt: skip
        raise RuntimeError("the transaction fails after the change")
    assert by(store, "source", 30) == before

    props = {"New State": "unsubscribed", "Group": "News", "Actor": ACTOR}
    rows = [
        {"ts": ago(1), "name": "Channel Unsubscribed", "source": "bounce", "actor": ACTOR,
         "group_id": world["news"], "properties": props}
        for _ in range(25)
    ]  # fmt: skip
    rows.append({"ts": ago(1), "name": "Group Created", "source": "cli", "actor": ACTOR,
                 "group_id": None, "properties": {}})  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(Event.__table__.insert(), rows)  # type: ignore[attr-defined]
    counts = {row["source"]: row["unsubscribes"] for row in by(store, "source", 30)}
    assert counts["bounce"] == 25
