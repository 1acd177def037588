"""No hot query scans the ledger or the states table (issue 10).

A store is seeded with the synthetic seeder (which ends with ANALYZE); the
real services run while a listener records the SQL they send; each recorded
SELECT is then explained on the same connection (EXPLAIN QUERY PLAN on
SQLite, EXPLAIN on PostgreSQL). A query about a few people must reach the
ledger and the states by person (or by event id), never through an index
that many rows share (an event name, a group); no hot query reads either
table whole.
"""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, event, text

from app.core import campaigns, eligibility, groups, ledger, one_click, profiles
from app.core.models import Campaign
from app.core.segment_index import SegmentIndex
from app.core.segment_rules import GroupsCondition, SegmentRule
from app.core.store import Store, open_store
from app.core.synthetic import seed_synthetic
from tests.conftest import PG_SCHEMA, PG_SKIP_REASON, PG_URL, pg_store_url, reset_pg_schema

PROFILES = 3000
HOT = ("ledger_event", "group_state")


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """A store with a few thousand synthetic profiles, their states and events."""
    if request.param == "sqlite":
        url = str(tmp_path_factory.mktemp("plans") / "store.db")
    else:
        if PG_URL is None:
            pytest.skip(PG_SKIP_REASON)
        # This run's own schema (two runs at once must not share one).
        url = pg_store_url(PG_URL, schema=f"{PG_SCHEMA}_plans")
        reset_pg_schema(url)
    store = open_store(url)
    seed_synthetic(store=store, profiles=PROFILES, actor="test")
    yield store
    store.dispose()
    if request.param != "sqlite":
        with create_engine(PG_URL or "").begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}_plans" CASCADE'))


@contextmanager
def recorded(store: Store) -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs sent to the database inside the block, with their parameters."""
    statements: list[tuple[str, Any]] = []

    def listen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)


def plans(store: Store, statements: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """(statement, its plan as text) for each statement touching the hot tables."""
    explain = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    found = []
    with store.engine.connect() as conn:
        names = _ledger_partitions(conn)
        for statement, parameters in statements:
            if not any(table in statement for table in HOT):
                continue
            rows = conn.exec_driver_sql(explain + statement, parameters).all()
            plan = "\n".join(str(row[-1]) for row in rows)
            for partition_name, parent_name in names.items():
                plan = re.sub(rf"\b{partition_name}\b", parent_name, plan)
            found.append((statement, plan))
    return found


# A partition of a few pages (the month that holds only the seed's "Group Created"
# events) is rightly read whole by the planner: only bigger ones count as the ledger.
SMALL_PARTITION = 200


def _ledger_partitions(conn: Connection) -> dict[str, str]:
    """PostgreSQL: each ledger partition holding events (``SMALL_PARTITION`` or more), and
    each of its indexes, to the parent's name (``ledger_event_2026_12_pkey`` ->
    ``ledger_event_pkey``)."""
    if conn.dialect.name != "postgresql":
        return {}
    found = conn.exec_driver_sql(
        "SELECT c.relname, p.relname, c.relkind FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = 'ledger_event' OR p.oid IN (SELECT indexrelid FROM pg_index "
        "WHERE indrelid = 'ledger_event'::regclass)"
    ).all()
    holding = {
        str(name)
        for (name,) in conn.exec_driver_sql(
            "SELECT tableoid::regclass::text FROM ledger_event GROUP BY 1 "
            f"HAVING count(*) >= {SMALL_PARTITION}"
        )
    }
    names = {}
    for child, parent, kind in found:
        table = child if kind != "i" else _table_of(conn, child)
        if table in holding:
            names[str(child)] = str(parent)
    return names


def _table_of(conn: Connection, index: str) -> str:
    return str(
        conn.exec_driver_sql(
            "SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = %s::regclass",
            (index,),
        ).scalar()
    )


# SQLite: a plan line reading a hot table whole ("SCAN group_state", with or
# without an index), or searching it by a key many rows share.
SQLITE_SCAN = re.compile(r"SCAN (ledger_event|group_state)\b")
SQLITE_BY_PERSON = re.compile(
    r"SEARCH (ledger_event|group_state) USING .*\((profile_id|rowid|id)[=<>]"
)
PG_SCAN = re.compile(r"Seq Scan on (ledger_event|group_state)\b")
# PostgreSQL: indexes a per-person read may use.
PG_BY_PERSON = ("ledger_event_pkey", "ix_ledger_event_profile", "group_state_pkey")


def problems(store: Store, run: Callable[[], object], *, per_person: bool) -> list[str]:
    """What is wrong with the plans of the queries ``run`` sends."""
    with recorded(store) as statements:
        run()
    assert statements, "the service sent no query"
    wrong = []
    for statement, plan in plans(store, statements):
        lines = plan.splitlines()
        if store.engine.dialect.name == "sqlite":
            bad = [
                line
                for line in lines
                if SQLITE_SCAN.search(line) and (per_person or "COVERING INDEX" not in line)
            ]
            if per_person:
                bad += [
                    line
                    for line in lines
                    if re.search(r"SEARCH (ledger_event|group_state)\b", line)
                    and not SQLITE_BY_PERSON.search(line)
                ]
        else:
            # A count over every row (no WHERE) reads them all whichever way.
            whole = not per_person and " WHERE " not in statement
            bad = [line for line in lines if PG_SCAN.search(line) and not whole]
            if per_person:
                bad += [
                    line
                    for line in lines
                    if re.search(r"Index.* Scan .*on (ledger_event|group_state)\b", line)
                    and not any(f" {name} " in line for name in PG_BY_PERSON)
                ]
        if bad:
            wrong.append(f"{' '.join(statement.split())}\n  -> " + "\n  -> ".join(bad))
    return wrong


def _some_identity(store: Store) -> str:
    with store.read() as session:
        return str(session.execute(text("SELECT identity FROM profile WHERE id = 7")).scalar())


def test_profile_view_reads_the_persons_history_by_person(seeded: Store) -> None:
    identity = _some_identity(seeded)

    def run() -> None:
        with seeded.read() as session:
            view = profiles.profile_view(session, identity)
            assert view.history

    assert problems(seeded, run, per_person=True) == []


def test_landing_batch_reads_states_by_person(seeded: Store) -> None:
    with seeded.read() as session:
        group_ids = sorted(groups.group_counts(session))[:3]
    with seeded.write() as session:
        campaign = campaigns.create_campaign(
            session=session, name="plans", actor="test", do_not_send_to=group_ids
        )
        campaign_id = campaign.id

    def run() -> None:
        with seeded.write() as session:
            done = one_click.one_click_many(
                session=session, requests=[(pid, campaign_id) for pid in range(10, 60)]
            )
            assert len(done) == 50

    assert problems(seeded, run, per_person=True) == []


def test_eligibility_batch_reads_states_by_person(seeded: Store) -> None:
    with seeded.read() as session:
        group_ids = sorted(groups.group_counts(session))[:4]
    campaign = Campaign(
        name="check", only_subscribed_to=group_ids[:2], do_not_send_to=group_ids[2:]
    )

    def run() -> None:
        with seeded.read() as session:
            eligibility.eligible_now(session, campaign, list(range(100, 130)))

    assert problems(seeded, run, per_person=True) == []


def test_event_follower_reads_by_event_id(seeded: Store) -> None:
    with seeded.read() as session:
        last = ledger.latest_id(session)

    def run() -> None:
        with seeded.read() as session:
            assert ledger.events_after(session, after_id=last - 20)

    assert problems(seeded, run, per_person=True) == []


def test_group_counts_and_index_build_never_read_a_table_whole(seeded: Store) -> None:
    def run() -> None:
        with seeded.read() as session:
            counts = groups.group_counts(session)
            index = SegmentIndex()
            index.build(session)
            rule = SegmentRule(conditions=(GroupsCondition(group_ids=tuple(sorted(counts)[:2])),))
            assert index.count(rule, session).total > 0

    assert problems(seeded, run, per_person=False) == []


def test_campaign_list_reaches_attributed_unsubscribes_by_campaign(seeded: Store) -> None:
    """The campaign table's unsubscribe counts: through the campaign index, not every event."""

    def run() -> None:
        with seeded.read() as session:
            campaigns.list_campaigns(session)

    with recorded(seeded) as statements:
        run()
    ledger_plans = [
        plan for statement, plan in plans(seeded, statements) if "ledger_event" in statement
    ]
    assert ledger_plans, "the campaign list read no attributed events"
    for plan in ledger_plans:
        if seeded.engine.dialect.name == "sqlite":
            assert re.search(r"SEARCH ledger_event USING INDEX ix_ledger_event_campaign", plan), (
                plan
            )
        else:
            assert "ix_ledger_event_campaign" in plan and not PG_SCAN.search(plan), plan


def test_events_by_an_admin_name_are_found_through_the_name_index(seeded: Store) -> None:
    """``events --name "Group Created"``: through the index of the names other than the one
    nearly every event has (version 11), not by paging back through the whole ledger."""

    def run() -> None:
        with seeded.read() as session:
            found = ledger.recent_events(session, name=ledger.GROUP_CREATED, limit=20)
            assert found and {e.name for e in found} == {ledger.GROUP_CREATED}

    with recorded(seeded) as statements:
        run()
    ledger_plans = [
        plan for statement, plan in plans(seeded, statements) if "ledger_event" in statement
    ]
    assert ledger_plans, "no events were read"
    for plan in ledger_plans:
        assert "ix_ledger_event_other_names" in plan and not PG_SCAN.search(plan), plan
        assert not SQLITE_SCAN.search(plan), plan


def test_every_channel_unsubscribed_event_is_still_found_by_name(seeded: Store) -> None:
    """The name index leaves out "Channel Unsubscribed": that filter still finds them all."""
    with seeded.read() as session:
        total = int(
            session.execute(
                text("SELECT count(*) FROM ledger_event WHERE name = 'Channel Unsubscribed'")
            ).scalar_one()
        )
        found = ledger.recent_events(session, name=ledger.CHANNEL_UNSUBSCRIBED, limit=total + 10)
    assert total > PROFILES and len(found) == total
    assert {e.name for e in found} == {ledger.CHANNEL_UNSUBSCRIBED}
