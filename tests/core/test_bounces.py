"""Bounces as the core keeps them (``app.core.bounces``): when soft bounces are "in a
row", what the explainer says of an undeliverable address, and the segment index
following bounces from the ledger and through its snapshot."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from landing_world import LandingWorld, build_world
from sqlmodel import col, select

from app.core import bounces, campaigns, explainer, profiles, segments
from app.core.models import Delivery
from app.core.segment_index import SegmentIndex
from app.core.snapshot_writer import write_snapshot
from app.core.store import Store

SOFT = bounces.Bounce("4.2.2", "failed", "smtp; 452 4.2.2 mailbox full", "ann@example.com")
HARD = bounces.Bounce("5.1.1", "failed", "smtp; 550 5.1.1 user unknown", "ann@example.com")
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def world(store: Store) -> LandingWorld:
    return build_world(store)


def _campaigns_sent_to(world: LandingWorld, profile_id: int, count: int) -> list[int]:
    """``count`` campaigns, each delivered to the person a day after the one before."""
    ids = []
    with world.store.write() as session:
        for n in range(count):
            made = campaigns.create_campaign(session=session, name=f"Weekly {n}", actor="tester")
            assert made.id is not None
            ids.append(made.id)
            session.add(
                Delivery(
                    campaign_id=made.id,
                    profile_id=profile_id,
                    sent_at=T0 + timedelta(days=n),
                    address_key="ann@example.com",
                )
            )
    return ids


def _bounce(world: LandingWorld, campaign_id: int | None, bounce: bounces.Bounce) -> dict:
    with world.store.write() as session:
        record = bounces.record_bounce(
            session, profile_id=world.ann, campaign_id=campaign_id, bounce=bounce
        )
    return record.properties


def test_a_message_delivered_between_soft_bounces_starts_the_count_again(
    world: LandingWorld,
) -> None:
    """Campaigns 0-3 went to Ann in turn. Bounces of 0 and 1 are two in a row; 2 was
    delivered and did not bounce, so the bounce of 3 counts as the first again."""
    sent = _campaigns_sent_to(world, world.ann, 4)
    assert _bounce(world, sent[0], SOFT)["Soft Bounces"] == 1
    assert _bounce(world, sent[1], SOFT)["Soft Bounces"] == 2
    after_gap = _bounce(world, sent[3], SOFT)
    assert after_gap["Soft Bounces"] == 1 and after_gap["Deliverable"] is True


def test_three_soft_bounces_in_a_row_without_delivery_records(world: LandingWorld) -> None:
    """With no delivery rows (nothing says a message came between), three count."""
    states = [_bounce(world, c, SOFT) for c in (world.campaign_none, world.campaign_groups, None)]
    assert [s["Soft Bounces"] for s in states] == [1, 2, 3]
    assert [s["Deliverable"] for s in states] == [True, True, False]


def test_a_batch_of_bounces_counts_a_person_s_in_order_and_skips_a_stranger(
    world: LandingWorld,
) -> None:
    """The listener's batch (``record_bounces``): Ann's three soft bounces of different
    campaigns in one transaction count 1, 2, 3 (the third makes her undeliverable), Bob's
    hard bounce makes him undeliverable, and a report naming a removed profile is refused
    without stopping the others. The events are in the ledger with the ids returned, in
    order, and the chain verifies."""
    from app.core import ledger_verify
    from app.core.errors import UnknownProfile
    from app.core.models import Event

    Report = bounces.BounceReport
    reports = [
        Report(world.ann, world.campaign_none, SOFT),
        Report(world.bob, world.campaign_none, HARD),
        Report(world.ann, world.campaign_groups, SOFT),
        Report(999_999, world.campaign_none, HARD),
        Report(world.ann, None, SOFT),
    ]
    with world.store.write() as session:
        results = bounces.record_bounces(session, reports)
    assert isinstance(results[3], UnknownProfile)
    written = [r for r in results if not isinstance(r, UnknownProfile)]
    assert [r.properties["Soft Bounces"] for r in written] == [1, 0, 2, 3]
    assert [r.properties["Deliverable"] for r in written] == [True, False, True, False]
    with world.store.read() as session:
        found = session.exec(select(Event).where(col(Event.name) == "Email Bounced")).all()
        stored = {e.id: e for e in found}
        assert sorted(stored) == [r.id for r in written]
        assert [stored[r.id].profile_id for r in written] == [
            world.ann, world.bob, world.ann, world.ann,
        ]  # fmt: skip
        assert bounces.undeliverable_among(session, [world.ann, world.bob]) == {
            world.ann, world.bob,
        }  # fmt: skip
    with world.store.engine.connect() as connection:
        assert ledger_verify.verify(connection).intact


def test_the_explainer_names_the_bounce_for_the_address_and_its_twins(
    world: LandingWorld,
) -> None:
    with world.store.write() as session:
        profiles.create_profile(session=session, identity="ann-2", email="ANN@example.com ")
    _bounce(world, world.campaign_none, HARD)
    with world.store.read() as session:
        campaign = campaigns.get_campaign_by_id(session, world.campaign_none)
    for identity, under in (("ann", ""), ("ann-2", " under profile ann")):
        why = explainer.explain(world.store, campaign, identity)
        assert not why.eligible
        step = next(s for s in why.steps if s.key == "undeliverable")
        assert step.label == "Deliverable address" and step.passed is False
        assert f"the address is undeliverable{under}: it bounced on" in step.detail
        assert why.reason.startswith("left out at 'Deliverable address'")
    bob = explainer.explain(world.store, campaign, "bob")
    assert next(s for s in bob.steps if s.key == "undeliverable").passed is True


def test_the_segment_index_follows_bounces_and_keeps_them_in_its_snapshot(
    world: LandingWorld,
) -> None:
    index = segments.index_for(world.store)
    with world.store.read() as session:
        index.refresh(session)
    assert world.ann not in index.undeliverable
    _bounce(world, world.campaign_none, SOFT)
    with world.store.read() as session:
        index.refresh(session)
    assert world.ann not in index.undeliverable, "one soft bounce is not enough"
    _bounce(world, world.campaign_none, HARD)
    with world.store.read() as session:
        index.refresh(session)
    assert list(index.undeliverable) == [world.ann]
    assert write_snapshot(world.store, index)
    fresh = SegmentIndex()
    with world.store.read() as session:
        fresh.build(session)
    assert fresh.snapshot_ledger_id is not None, "built from the snapshot"
    assert list(fresh.undeliverable) == [world.ann]


def test_a_version_11_store_gets_the_deliverability_table(tmp_path: Path) -> None:
    """Opening a store from before inbound mail adds the table; bounces then work on it."""
    from sqlalchemy import inspect, text

    from app.core import migrations
    from app.core.store import open_store

    path = tmp_path / "old.db"
    old = open_store(path)
    with old.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE deliverability")
        conn.execute(text("UPDATE schema_meta SET value = '11' WHERE key = 'schema_version'"))
    old.dispose()
    store = open_store(path, create=False)
    try:
        assert "deliverability" in inspect(store.engine).get_table_names()
        with store.engine.connect() as conn:
            assert migrations.schema_version(conn) == migrations.LATEST_VERSION
        world = build_world(store)
        assert _bounce(world, None, HARD)["Deliverable"] is False
    finally:
        store.dispose()
