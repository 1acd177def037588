"""Sample data, synthetic stores and the demo's traffic simulator, on real stores."""

import csv
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core import groups, profiles, seed, synthetic
from app.core.errors import RuleRefused
from app.core.ledger import (
    CHANNEL_UNSUBSCRIBED,
    GROUP_ARCHIVED,
    GROUP_CREATED,
    SAMPLE_DATA_LOADED,
)
from app.core.models import (
    POLICIES,
    STATUS_ARCHIVED,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Event,
    Group,
    GroupState,
    Profile,
)
from app.core.profiles import effective_state
from app.core.simulator import TrafficSimulator
from app.core.store import Store
from app.core.subscriptions import change_properties

ACTOR = "tester"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")


def sample_rows() -> list[dict[str, str]]:
    with (seed.sample_data_dir() / seed.PROFILES_FILE).open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def sample_groups() -> list[dict[str, object]]:
    return json.loads((seed.sample_data_dir() / seed.GROUPS_FILE).read_text(encoding="utf-8"))


def counts(session: Session) -> tuple[int, int, int, int]:
    """Groups, profiles, stored states and events in the store."""
    return tuple(  # type: ignore[return-value]
        int(session.exec(select(func.count()).select_from(table)).one())
        for table in (Group, Profile, GroupState, Event)
    )


def assert_states_explained(session: Session) -> int:
    """Every stored state is the New State of the latest event for it; returns the event count."""
    latest: dict[tuple[int | None, int | None], str] = {}
    events = session.exec(
        select(Event).where(col(Event.name) == CHANNEL_UNSUBSCRIBED).order_by(col(Event.id))
    ).all()
    for event in events:
        latest[(event.profile_id, event.group_id)] = event.properties["New State"]
    stored = {(row.profile_id, row.group_id): row.state for row in session.exec(select(GroupState))}
    assert {key: state for key, state in latest.items() if key[1] is not None} == stored
    for profile in session.exec(select(Profile)):
        assert profile.all_email == latest.get((profile.id, None), SUBSCRIBED), profile.identity
    return len(events)


# --- the sample data --------------------------------------------------------------


def test_sample_files_are_believable_and_safe() -> None:
    """A dozen groups, both policies, one archived, markup-like text; example domains only."""
    specs = sample_groups()
    assert 10 <= len(specs) <= 14
    assert {spec["policy"] for spec in specs} == set(POLICIES)
    assert [spec["status"] for spec in specs].count(STATUS_ARCHIVED) == 1
    assert any("[" in str(spec["description"]) for spec in specs)
    rows = sample_rows()
    assert 2500 <= len(rows) <= 3500
    header = list(rows[0])
    assert header[:6] == ["identity", "email", "name", "country", "plan", "all_email"]
    assert header[6:] == [f"group:{spec['name']}" for spec in specs]
    for row in rows:
        domain = row["email"].split("@")[1]
        assert domain in EXAMPLE_DOMAINS or domain.endswith(tuple("." + d for d in EXAMPLE_DOMAINS))
    assert len({row["email"] for row in rows}) == len(rows)
    assert len({row["country"] for row in rows}) >= 8
    assert len({row["name"] for row in rows}) > len(rows) // 3
    opted_out = sum(row["all_email"] == UNSUBSCRIBED for row in rows) / len(rows)
    assert 0.01 < opted_out < 0.08


def test_committed_csv_is_what_the_seeded_generator_makes() -> None:
    specs = seed.read_group_specs(seed.sample_data_dir() / seed.GROUPS_FILE)
    header, rows = seed.generate_sample_profiles(specs=specs)
    path = seed.sample_data_dir() / seed.PROFILES_FILE
    with path.open(encoding="utf-8", newline="") as fh:
        assert list(csv.reader(fh)) == [header, *rows]


def test_load_sample_data_creates_groups_with_admin_events(store: Store) -> None:
    summary = seed.load_sample_data(store=store, actor=ACTOR, now=NOW)
    specs = sample_groups()
    with store.read() as session:
        stored = groups.list_groups(session, status="all")
        assert summary.groups == len(stored) == len(specs)
        by_name = {group.name: group for group in stored}
        for spec in specs:
            group = by_name[str(spec["name"])]
            assert (group.description, group.policy, group.status, group.shown_on_landing_page) == (
                spec["description"],
                spec["policy"],
                spec["status"],
                spec["shown_on_landing_page"],
            )
        names = Counter(session.exec(select(Event.name)).all())
        assert names[GROUP_CREATED] == len(specs)
        assert names[GROUP_ARCHIVED] == 1
        assert names[SAMPLE_DATA_LOADED] == 1
        assert "Deals & [limited] offers" in by_name["Promotions"].description


def test_load_sample_data_writes_every_state_of_the_csv_with_its_history(store: Store) -> None:
    started = time.perf_counter()
    summary = seed.load_sample_data(store=store, actor=ACTOR, now=NOW)
    assert time.perf_counter() - started < 10
    rows = sample_rows()
    with store.read() as session:
        assert summary.profiles == len(rows) == counts(session)[1]
        profiles = {p.identity: p for p in session.exec(select(Profile))}
        group_ids = {g.name: g.id for g in session.exec(select(Group))}
        stored = {(s.profile_id, s.group_id): s.state for s in session.exec(select(GroupState))}
        expected = {}
        for row in rows:
            profile = profiles[row["identity"]]
            assert (profile.email, profile.name) == (row["email"], row["name"])
            assert profile.properties == {"country": row["country"], "plan": row["plan"]}
            assert profile.all_email == (row["all_email"] or SUBSCRIBED)
            for column, value in row.items():
                if column.startswith("group:") and value:
                    expected[(profile.id, group_ids[column[len("group:") :]])] = value
        assert stored == expected
        assert summary.states == len(expected)
        assert assert_states_explained(session) == summary.events


def test_sample_history_is_spread_in_time_and_tells_stories(sqlite_store: Store) -> None:
    seed.load_sample_data(store=sqlite_store, actor=ACTOR, now=NOW)
    with sqlite_store.read() as session:
        events = session.exec(
            select(Event).where(col(Event.name) == CHANNEL_UNSUBSCRIBED).order_by(col(Event.id))
        ).all()
        stamps = [event.ts for event in events]
        assert stamps == sorted(stamps), "ledger ids follow time"
        assert NOW - timedelta(days=121) < stamps[0] < NOW - timedelta(days=100)
        assert NOW - timedelta(days=20) < stamps[-1] <= NOW
        assert len({stamp.date() for stamp in stamps}) > 100
        assert {event.source for event in events} == {"import"}
        assert {event.actor for event in events} == {ACTOR}
        per_pair = Counter((event.profile_id, event.group_id) for event in events)
        stories = [pair for pair, n in per_pair.items() if n > 1]
        assert len(stories) > 50, "some people changed their minds"
        assert any(event.properties["Reason"] for event in events)
        resubscribes = [
            e
            for e in events
            if e.properties["Old State"] == UNSUBSCRIBED and e.properties["Resubscribed"]
        ]
        assert resubscribes
        archived = session.exec(select(Group).where(col(Group.status) == STATUS_ARCHIVED)).one()
        archive_event = session.exec(select(Event).where(col(Event.name) == GROUP_ARCHIVED)).one()
        assert archived.archived_at == archive_event.ts
        assert archive_event.id is not None
        for event in events:
            if event.group_id == archived.id:
                assert event.id is not None and event.id < archive_event.id
                assert event.ts < archive_event.ts


def test_loading_twice_is_refused_and_changes_nothing(sqlite_store: Store) -> None:
    with sqlite_store.read() as session:
        assert seed.store_is_empty(session)
    seed.load_sample_data(store=sqlite_store, actor=ACTOR, now=NOW)
    with sqlite_store.read() as session:
        assert not seed.store_is_empty(session)
        before = counts(session)
    with pytest.raises(RuleRefused, match="empty store"):
        seed.load_sample_data(store=sqlite_store, actor=ACTOR, now=NOW)
    with pytest.raises(RuleRefused, match="empty store"):
        synthetic.seed_synthetic(store=sqlite_store, profiles=10, actor=ACTOR, now=NOW)
    with sqlite_store.read() as session:
        assert counts(session) == before


def test_a_store_with_only_a_group_is_not_empty(sqlite_store: Store) -> None:
    with sqlite_store.write() as session:
        groups.create_group(session=session, name="Newsletter", actor=ACTOR)
    with sqlite_store.read() as session:
        assert not seed.store_is_empty(session)
        before = counts(session)
    with pytest.raises(RuleRefused, match="1 groups and 0 profiles"):
        seed.load_sample_data(store=sqlite_store, actor=ACTOR, now=NOW)
    with sqlite_store.read() as session:
        assert counts(session) == before


# --- synthetic stores -------------------------------------------------------------


def test_seed_synthetic_gives_about_five_states_per_profile_each_with_its_event(
    store: Store,
) -> None:
    seen: list[tuple[int, int]] = []
    summary = synthetic.seed_synthetic(
        store=store,
        profiles=2000,
        actor=ACTOR,
        now=NOW,
        chunk_size=700,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(700, 2000), (1400, 2000), (2000, 2000)]
    with store.read() as session:
        n_groups, n_profiles, n_states, _ = counts(session)
        assert (n_groups, n_profiles) == (50, 2000) == (summary.groups, summary.profiles)
        assert 4.7 < n_states / n_profiles < 5.3
        assert summary.states == n_states
        assert {g.policy for g in session.exec(select(Group))} == set(POLICIES)
        group_events = session.exec(
            select(func.count())
            .select_from(Event)
            .where(col(Event.name) == CHANNEL_UNSUBSCRIBED, col(Event.group_id).is_not(None))
        ).one()
        assert group_events == n_states
        assert assert_states_explained(session) == summary.events
        opted_out = session.exec(
            select(func.count()).select_from(Profile).where(col(Profile.all_email) == UNSUBSCRIBED)
        ).one()
        assert 0 < opted_out < 100


def test_synthetic_events_have_the_same_shape_as_the_service_writes(store: Store) -> None:
    synthetic.seed_synthetic(
        store=store, profiles=50, groups=4, states_per_profile=2, actor=ACTOR, now=NOW
    )
    with store.read() as session:
        group_by_id = {g.id: g for g in session.exec(select(Group))}
        events = session.exec(select(Event).where(col(Event.name) == CHANNEL_UNSUBSCRIBED)).all()
        assert events
        for event in events:
            group = group_by_id.get(event.group_id)
            state = session.get(GroupState, (event.profile_id, event.group_id)) if group else None
            assert event.properties == change_properties(
                group_id=group.id if group else None,
                group_name=group.name if group else None,
                old=None if group else SUBSCRIBED,
                new=event.properties["New State"],
                source="import",
                actor=ACTOR,
                campaign_id=None,
                reason=None,
            )
            assert event.ts.tzinfo is not None
            assert NOW - timedelta(days=121) < event.ts < NOW
            if state is not None:
                assert state.updated_at == event.ts


def test_seed_synthetic_checks_its_arguments(sqlite_store: Store) -> None:
    from app.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="groups"):
        synthetic.seed_synthetic(store=sqlite_store, profiles=10, groups=51, actor=ACTOR)
    with pytest.raises(InvalidInput, match="states per profile"):
        synthetic.seed_synthetic(
            store=sqlite_store, profiles=10, groups=3, states_per_profile=4, actor=ACTOR
        )
    with sqlite_store.read() as session:
        assert seed.store_is_empty(session)


# --- the traffic simulator --------------------------------------------------------


def simulator_events(store: Store) -> list[Event]:
    with store.read() as session:
        return list(session.exec(select(Event).where(col(Event.source) == "simulator")).all())


def test_simulator_writes_live_events_and_stops_cleanly(sqlite_store: Store) -> None:
    seed.load_sample_data(store=sqlite_store, actor=ACTOR, now=NOW)
    simulator = TrafficSimulator(sqlite_store, interval=(0.01, 0.03), seed=7, inbound_share=0.0)
    simulator.start()
    try:
        deadline = time.monotonic() + 5
        while len(simulator_events(sqlite_store)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stopped = time.monotonic()
        simulator.stop()
    assert time.monotonic() - stopped < 1
    assert not simulator.running
    events = simulator_events(sqlite_store)
    assert len(events) >= 3
    assert all(e.name == CHANNEL_UNSUBSCRIBED and e.actor == "simulator" for e in events)
    assert simulator.changes == len(events)
    time.sleep(0.1)
    assert len(simulator_events(sqlite_store)) == len(events), "nothing is written after stop()"
    with sqlite_store.read() as session:
        assert_states_explained(session)


def test_simulator_step_flips_the_effective_state(
    sqlite_store: Store, fixed_clock: datetime
) -> None:
    seed.load_sample_data(store=sqlite_store, actor=ACTOR, now=fixed_clock)
    simulator = TrafficSimulator(
        sqlite_store, seed=3, channel_share=0.0, reason_share=1.0, inbound_share=0.0
    )
    with sqlite_store.read() as session:
        stored = {(s.profile_id, s.group_id): s.state for s in session.exec(select(GroupState))}
        policies = {g.id: g.policy for g in session.exec(select(Group))}
    for _ in range(20):
        record = simulator.step()
        assert record is not None and record.group_id is not None
        assert record.properties["Source"] == "simulator"
        assert record.properties["Reason"]
        with sqlite_store.read() as session:
            profile = session.exec(
                select(Profile).where(col(Profile.identity) == record.identity)
            ).one()
            group = session.get(Group, record.group_id)
            assert group is not None and group.status != STATUS_ARCHIVED
            assert profile.id is not None and group.id is not None
            key = (profile.id, group.id)
            old = effective_state(policies[group.id], stored.get(key))
            row = session.get(GroupState, key)
            assert row is not None and row.state != old
            assert record.properties["New State"] == row.state
            stored[key] = row.state


def test_simulator_sends_mail_back_through_the_inbound_services(sqlite_store: Store) -> None:
    """Mailto unsubscribes, bounces and complaints, each with its own Source, as the
    listener writes them: the states they set are explained by the ledger."""
    seed.load_sample_data(store=sqlite_store, actor=ACTOR, now=NOW)
    simulator = TrafficSimulator(sqlite_store, seed=5, inbound_share=1.0)
    records = [simulator.step() for _ in range(60)]
    written = [r for r in records if r is not None]
    sources = {r.properties["Source"] for r in written}
    assert sources == {"mailto", "bounce", "complaint"}
    for record in written:
        assert record.actor == "simulator"
        if record.properties["Source"] == "bounce":
            assert record.name == "Email Bounced"
            assert record.properties["Bounce Type"] in ("hard", "soft")
        else:
            assert record.name == CHANNEL_UNSUBSCRIBED
            assert record.properties["New State"] == UNSUBSCRIBED
        if record.properties["Source"] == "complaint":
            assert record.group_id is None
    with sqlite_store.read() as session:
        assert_states_explained(session)
        hard = [r for r in written if r.properties.get("Bounce Type") == "hard"]
        assert hard and all(
            profiles.profile_view(session, str(r.identity)).deliverable is False for r in hard
        )


def test_simulator_on_an_empty_store_changes_nothing(sqlite_store: Store) -> None:
    assert TrafficSimulator(sqlite_store, seed=1).step() is None


def test_simulator_thread_survives_a_failing_change(sqlite_store: Store) -> None:
    seed.load_sample_data(store=sqlite_store, actor=ACTOR, now=NOW)

    class FlakySimulator(TrafficSimulator):
        failures = 2

        def step(self):  # type: ignore[no-untyped-def]
            if self.failures:
                self.failures -= 1
                raise RuntimeError("database hiccup")
            return super().step()

    simulator = FlakySimulator(sqlite_store, interval=(0.0, 0.01), seed=2)
    with simulator:
        deadline = time.monotonic() + 5
        while simulator.changes < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert simulator.running
    assert simulator.skipped >= 2 and simulator.changes >= 2
    assert not simulator.running
