"""Synthetic stores for measuring at scale: N profiles over up to 50 groups.

``seed_synthetic`` fills an empty store with generated profiles, each with
a handful of stored states, every state written with its ledger event by
``subscriptions.apply_changes`` (so each is explained by its latest event),
a chunk of profiles per transaction. ``bench/`` measures on these stores.

At 10M profiles (50M states, 50M events) it stays near 250 MB: rows are
made a chunk at a time, the cyclic collector is paused (nothing here makes
cycles), and on SQLite the plain indexes are held back and built once at
the end (``deferred_indexes``: a seed killed half-way leaves a mark, and the
next open builds them).
"""

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from app.core import actors, bulk, clock, deferred_indexes, ledger, ledger_partitions, migrations
from app.core.errors import InvalidInput
from app.core.models import (
    POLICY_OPT_IN,
    POLICY_OPT_OUT,
    STATUS_ACTIVE,
    SUBSCRIBED,
    UNSUBSCRIBED,
)
from app.core.seed import (
    HISTORY_DAYS,
    PLANS,
    SOURCE,
    GroupSpec,
    Progress,
    SeedSummary,
    create_groups,
    email_spelling,
    flipped,
    name_pools,
    refuse_unless_empty,
    weighted,
)
from app.core.store import Store
from app.core.subscriptions import StateChange, apply_changes

SYNTHETIC_CHUNK = 20_000  # profiles per transaction

# fmt: off
SYNTHETIC_TOPICS = (
    "Newsletter", "Product updates", "Promotions", "Events", "Digest",
    "Partner offers", "Surveys", "Tips", "Release notes", "Beta program",
)
# fmt: on
SYNTHETIC_REGIONS = ("Americas", "EMEA", "APAC", "LATAM", "Nordics")


def synthetic_group_specs(count: int) -> list[GroupSpec]:
    """``count`` (at most 50) believable group names, every fourth one opt-in."""
    names = [f"{topic} · {region}" for region in SYNTHETIC_REGIONS for topic in SYNTHETIC_TOPICS]
    return [
        GroupSpec(
            name=name,
            description=f"Synthetic group {index + 1} for measuring at scale.",
            policy=POLICY_OPT_IN if index % 4 == 3 else POLICY_OPT_OUT,
            shown_on_landing_page=True,
            status=STATUS_ACTIVE,
        )
        for index, name in enumerate(names[:count])
    ]


def seed_synthetic(
    *,
    store: Store,
    profiles: int,
    groups: int = 50,
    states_per_profile: int = 5,
    actor: str,
    now: datetime | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    chunk_size: int = SYNTHETIC_CHUNK,
    on_build: Callable[[], None] | None = None,
) -> SeedSummary:
    """Fill an empty store with ``profiles`` profiles over ``groups`` groups, for measuring.

    Each profile gets about ``states_per_profile`` stored states (between two
    fewer and two more), each with its ledger event; 2% have left all email.
    One transaction per ``chunk_size`` profiles, so a million profiles never
    sit in memory at once; an interrupted seed keeps the chunks it finished.
    ``on_build`` is called when the rows are written and the indexes are
    about to be built (minutes at 10M profiles).
    """
    if profiles < 0:
        raise InvalidInput(f"profiles must be 0 or more, not {profiles}", field="profiles")
    if not 1 <= groups <= len(SYNTHETIC_TOPICS) * len(SYNTHETIC_REGIONS):
        raise InvalidInput(f"groups must be between 1 and 50, not {groups}", field="groups")
    if not 0 <= states_per_profile <= groups:
        raise InvalidInput(
            f"states per profile must be between 0 and {groups}, not {states_per_profile}",
            field="states_per_profile",
        )
    started = time.perf_counter()
    now = now or clock.now()
    rng = random.Random(seed)
    start = now - timedelta(days=HISTORY_DAYS)
    span = (now - start).total_seconds() - 60
    # Every country alike here; names with their e-mail spelling worked out once.
    pools = [
        (
            pool.country,
            [(name, email_spelling(name)) for name in pool.first_names],
            [(name, email_spelling(name)) for name in pool.last_names],
        )
        for pool in name_pools()
    ]
    plans, plan_weights = weighted(PLANS)
    with store.write() as session:
        actors.require(session, actors.EDITOR, "seeding the store")
        refuse_unless_empty(session)
        created = create_groups(
            session, synthetic_group_specs(groups), actor=actor, at=start - timedelta(days=30)
        )
        # PostgreSQL: the history's months made now, not moved out of the default partition later.
        ledger_partitions.make_months(session.connection(), start - timedelta(days=30), now)
    # Likely final state: opt-out groups mostly collect unsubscribes, opt-in ones subscribes.
    likely = [UNSUBSCRIBED if g.policy == POLICY_OPT_OUT else SUBSCRIBED for g in created]
    # Each group as a state change names it: its id and name.
    refs = [(g.id, g.name) for g in created]
    low, high = max(0, states_per_profile - 2), min(groups, states_per_profile + 2)
    states = events = 0
    with bulk.paused_gc(), deferred_indexes.deferred(store.engine, on_build=on_build):
        for chunk_start in range(0, profiles, chunk_size):
            chunk_end = min(profiles, chunk_start + chunk_size)
            # Each chunk covers its own slice of the 120 days, so ledger ids follow time.
            slice_start = start + timedelta(seconds=span * chunk_start / max(profiles, 1))
            slice_span = span * (chunk_end - chunk_start) / max(profiles, 1)
            rows: list[bulk.NewProfileRow] = []
            for n in range(chunk_start, chunk_end):
                country, firsts, lasts = rng.choice(pools)
                first, first_ascii = rng.choice(firsts)
                last, last_ascii = rng.choice(lasts)
                rows.append(
                    bulk.NewProfileRow(
                        identity=f"S{n + 1:07d}",
                        email=f"{first_ascii}.{last_ascii}.{n + 1}@example.net",
                        name=f"{first} {last}",
                        properties={
                            "country": country,
                            "plan": rng.choices(plans, plan_weights)[0],
                        },
                        all_email=SUBSCRIBED,
                        created_at=start - timedelta(days=30 * rng.random()),
                    )
                )
            with store.write() as session, bulk.large_page_cache(session):
                ids = bulk.insert_profiles(session=session, profiles=rows)
                changes: list[StateChange] = []
                for row in rows:
                    identity = row.identity
                    profile_id = ids[identity]
                    for index in rng.sample(range(groups), rng.randint(low, high)):
                        state = likely[index] if rng.random() < 0.75 else flipped(likely[index])
                        ts = slice_start + timedelta(seconds=slice_span * rng.random())
                        changes.append(
                            StateChange(profile_id, identity, *refs[index], None, state, None, ts)
                        )
                    if rng.random() < 0.02:
                        ts = slice_start + timedelta(seconds=slice_span * rng.random())
                        changes.append(
                            StateChange(
                                profile_id, identity, None, None, SUBSCRIBED, UNSUBSCRIBED, None, ts
                            )
                        )
                changes.sort(key=lambda change: change.ts or now)
                events += apply_changes(
                    session=session, changes=changes, source=SOURCE, actor=actor, now=now
                )
                states += sum(1 for change in changes if change.group_id is not None)
            if progress:
                progress(chunk_end, profiles)
    with store.write() as session:
        ledger.record(
            session,
            name=ledger.SAMPLE_DATA_LOADED,
            source=SOURCE,
            actor=actor,
            now=now,
            properties={
                "Groups": groups,
                "Profiles": profiles,
                "States": states,
                "Synthetic": True,
            },
        )
    with store.engine.begin() as conn:
        migrations.analyze(conn)  # the planner's statistics for the rows just written
    return SeedSummary(
        groups=groups,
        profiles=profiles,
        states=states,
        events=events,
        seconds=time.perf_counter() - started,
    )
