"""Issue 10, "no plan that scans": the profile view's history and the landing's
per-batch state read, before and after, side by side in one run.

    python bench/bench_plans.py [--profiles 200000] [--db PATH] [--runs 50] [--before-runs N]

A SQLite store is seeded with the synthetic seeder (which ends with ANALYZE).
Then, on one connection, each query is timed two ways:

- before: the plan main's planner chose, forced with ``INDEXED BY`` (SQLite
  has no statistics on a store main made, and main's queries filter by the
  event name / the group): the person's channel events through the event-name
  index; the batch's states through the (group, state, profile) index;
- after: the query the code runs now, as the planner plans it: the person's
  events through (profile_id, id) with the name checked in Python; the batch's
  states by profile id only (the primary key), the groups checked in Python.

At 10M a forced "before" query takes tens of seconds: ``--before-runs N``
times those two rows N times only (default: ``--runs``). The whole
``profiles.profile_view`` and ``one_click.one_click_many`` (one
batch of 50, rolled back) are timed too, as they run now. Prints p50/p95 and
the load average before and after.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlmodel import Session  # noqa: E402

from app.core import campaigns, groups, one_click, profiles  # noqa: E402
from app.core.store import open_store  # noqa: E402
from app.core.synthetic import seed_synthetic  # noqa: E402

HISTORY_BEFORE = (
    "SELECT * FROM ledger_event INDEXED BY ix_ledger_event_name "
    "WHERE profile_id = ? AND name = 'Channel Unsubscribed' ORDER BY id DESC"
)
HISTORY_AFTER = "SELECT * FROM ledger_event WHERE profile_id = ? ORDER BY id DESC"
BATCH = 50


def states_before(ids: list[int], gids: list[int]) -> str:
    return (
        "SELECT profile_id, group_id, state FROM group_state "
        "INDEXED BY ix_group_state_group_state_profile "
        f"WHERE profile_id IN ({','.join(map(str, ids))}) "
        f"AND group_id IN ({','.join(map(str, gids))})"
    )


def states_after(ids: list[int]) -> str:
    return (
        "SELECT profile_id, group_id, state FROM group_state "
        f"WHERE profile_id IN ({','.join(map(str, ids))})"
    )


def timed(runs: int, fn: Callable[[int], object]) -> tuple[float, float]:
    """p50 and p95 in ms of ``fn(run)``."""
    times = []
    for run in range(runs):
        start = time.perf_counter()
        fn(run)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--before-runs", type=int, help="runs of the forced 'before' plans")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="bench-plans-")) / "store.db"
    store = open_store(db)
    with store.read() as session:
        seeded = bool(groups.group_counts(session))
    if not seeded:
        started = time.perf_counter()
        seed_synthetic(store=store, profiles=args.profiles, actor="bench")
        print(f"seeded {args.profiles:,} profiles in {time.perf_counter() - started:.1f} s")
    # The "before" plan walked the name index on every event, which version 11
    # replaced by one on the other names only: made again here to compare.
    with store.write() as session:
        session.connection().exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_ledger_event_name ON ledger_event (name)"
        )
    print(f"load average before: {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()})")
    rng = random.Random(1)
    before_runs = args.before_runs or args.runs
    with store.read() as session:
        conn = session.connection()
        max_id = int(conn.exec_driver_sql("SELECT max(id) FROM profile").scalar() or 0)
        gids = sorted(groups.group_counts(session))[:3]
        people = [rng.randint(1, max_id) for _ in range(args.runs)]
        batches = [sorted(rng.sample(range(1, max_id + 1), BATCH)) for _ in range(args.runs)]
        identities = [
            str(conn.exec_driver_sql(f"SELECT identity FROM profile WHERE id = {p}").scalar())
            for p in people
        ]
        rows = {
            "profile history, before": timed(
                before_runs, lambda r: conn.exec_driver_sql(HISTORY_BEFORE, (people[r],)).all()
            ),
            "profile history, after": timed(
                args.runs, lambda r: conn.exec_driver_sql(HISTORY_AFTER, (people[r],)).all()
            ),
            "landing batch states, before": timed(
                before_runs, lambda r: conn.exec_driver_sql(states_before(batches[r], gids)).all()
            ),
            "landing batch states, after": timed(
                args.runs, lambda r: conn.exec_driver_sql(states_after(batches[r])).all()
            ),
            "profile_view (whole, now)": timed(
                args.runs, lambda r: profiles.profile_view(session, identities[r])
            ),
        }
    with store.write() as session:
        campaign = campaigns.create_campaign(
            session=session,
            name=f"bench plans {time.time_ns()}",  # a reused --db keeps the earlier ones
            actor="bench",
            do_not_send_to=gids,
        )
        campaign_id = campaign.id

    def one_batch(r: int) -> None:
        with store.engine.connect() as conn, Session(bind=conn) as session:
            one_click.one_click_many(
                session=session, requests=[(p, campaign_id) for p in batches[r]]
            )
            session.rollback()

    rows["one_click_many, 50 (whole, now)"] = timed(args.runs, one_batch)
    for name, (p50, p95) in rows.items():
        print(f"{name:34} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    store.dispose()


if __name__ == "__main__":
    main()
