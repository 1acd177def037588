"""Measure segment counts at scale (issue 3 goal: p50 at most 50 ms after warm-up,
for a count with two or three group clauses on 1M profiles, 50 groups, ~5M states).

    python bench/bench_segments.py [--profiles 1000000] [--db PATH] [--runs 200] [--keep]

The store is seeded with ``app.core.synthetic.seed_synthetic`` (50 groups, every
fourth one opt-in, about five stored states per profile, each with its ledger
event), or reused with ``--db PATH`` (seeded first if missing or empty).

What is timed, each through the services the console and the CLI call:

- warm-up: the first ``segments.count`` on a freshly opened store (the
  segment index reads every profile and stored state);
- ``segments.count`` for rules of two and three group clauses, and the
  three-clause rule with a property clause (country equals DE), ``--runs``
  times each after warm-up (p50 / p95 / max). A call opens a read session,
  catches the index up with the ledger (two small queries when nothing
  changed) and does the bitset work; the bitset work alone
  (``SegmentIndex.count``) is shown beside it;
- the property clause cold: its answer comes from the database once, then
  from the index's cache until profiles change; the cache is emptied before
  each of these runs;
- following one change: another Store (another process, as far as the index
  knows) flips one stored state and commits; then one ``segments.count``
  (which applies the event) is timed, and the answer checked;
- for reference, the same two-clause count as one plain SQL query with NOT
  EXISTS subqueries (what counting without the index costs), checked against
  the engine's answer.

Exit code 0 when both group-clause p50s meet the goal, 1 otherwise.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, text  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from app.core import groups, profiles, segments, subscriptions  # noqa: E402
from app.core.models import Group, GroupState, Profile  # noqa: E402
from app.core.seed import store_is_empty  # noqa: E402
from app.core.segment_rules import GroupsCondition, PropertyCondition, SegmentRule  # noqa: E402
from app.core.store import Store, open_store  # noqa: E402
from app.core.synthetic import seed_synthetic  # noqa: E402

GOAL_MS = 50.0
ACTOR = "bench"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def timed(func: Callable[[], object], runs: int) -> list[float]:
    """Milliseconds per call, ``runs`` calls."""
    result = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        result.append((time.perf_counter() - started) * 1000)
    return result


def line(label: str, ms: Sequence[float]) -> str:
    return (
        f"  {label:<44} p50 {statistics.median(ms):8.2f} ms   p95 {percentile(ms, 95):8.2f} ms"
        f"   max {max(ms):8.2f} ms   (n={len(ms)})"
    )


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def prepare(path: Path, profiles_wanted: int) -> float | None:
    """Seed the store at ``path`` if it is empty; the seeding time in seconds, else None."""
    store = open_store(str(path))
    try:
        with store.read() as session:
            if not store_is_empty(session):
                return None
        print(f"Seeding {profiles_wanted:,} profiles over 50 groups into {path} …", flush=True)
        last = [time.perf_counter()]

        def progress(done: int, total: int) -> None:
            now = time.perf_counter()
            if now - last[0] > 15 or done == total:
                last[0] = now
                print(f"  {done:,} / {total:,}", flush=True)

        summary = seed_synthetic(
            store=store, profiles=profiles_wanted, actor=ACTOR, progress=progress
        )
        print(
            f"Seeded {summary.profiles:,} profiles, {summary.states:,} stored states and "
            f"{summary.events:,} ledger events in {summary.seconds:.1f} s "
            f"({summary.profiles / summary.seconds:,.0f} profiles/s).",
            flush=True,
        )
        return summary.seconds
    finally:
        store.dispose()


def not_exists_sql(store: Store, include: Sequence[int], exclude: int) -> tuple[int, float]:
    """Include ANY ``include`` and Exclude ``exclude`` (all opt-out) as one SQL count."""

    def left(group_id: int) -> str:
        return (
            "EXISTS (SELECT 1 FROM group_state gs WHERE gs.profile_id = p.id "
            f"AND gs.group_id = {int(group_id)} AND gs.state = 'unsubscribed')"
        )

    subscribed_to_any = " OR ".join(f"NOT {left(g)}" for g in include)
    sql = f"SELECT count(*) FROM profile p WHERE ({subscribed_to_any}) AND {left(exclude)}"
    with store.read() as session:
        started = time.perf_counter()
        value = int(session.execute(text(sql)).scalar() or 0)
        return value, (time.perf_counter() - started) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=1_000_000, help="profiles to seed")
    parser.add_argument("--db", type=Path, help="an SQLite store to reuse (seeded if empty)")
    parser.add_argument("--runs", type=int, default=200, help="timed counts per rule")
    parser.add_argument("--cold-runs", type=int, default=10, help="timed cold property counts")
    parser.add_argument("--changes", type=int, default=20, help="timed single-change follows")
    parser.add_argument("--sql-runs", type=int, default=3, help="timed plain SQL counts")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    args = parser.parse_args(argv)

    workdir = None
    if args.db is None:
        workdir = Path(tempfile.mkdtemp(prefix="bench-segments-"))
        path = workdir / "segments.db"
    else:
        path = args.db
    print(load())
    try:
        seed_seconds = prepare(path, args.profiles)
        return measure(path, args, seed_seconds)
    finally:
        if workdir is not None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif workdir is not None:
            print(f"Store kept at {path}")


def measure(path: Path, args: argparse.Namespace, seed_seconds: float | None) -> int:
    store = open_store(str(path))
    other = open_store(str(path))
    try:
        with store.read() as session:
            n_profiles = profiles.count_profiles(session)
            n_states = int(session.exec(select(func.count()).select_from(GroupState)).one())
            active = [g for g in groups.list_groups(session) if g.status == "active"]
        by_id = sorted(active, key=lambda g: g.id or 0)
        opt_out = [g for g in by_id if g.policy == "opt-out"]
        opt_in = [g for g in by_id if g.policy == "opt-in"]
        a, b, c, d = opt_out[0], opt_out[1], opt_out[2], opt_out[3]
        e = opt_in[0]
        print(
            f"Store: {path} ({path.stat().st_size / 2**30:.2f} GiB), {n_profiles:,} profiles, "
            f"{len(active)} active groups, {n_states:,} stored states"
        )
        two = SegmentRule(
            (
                GroupsCondition("include", (a.id or 0, b.id or 0), "any"),
                GroupsCondition("exclude", (c.id or 0,), "any"),
            )
        )
        three = SegmentRule(
            (*two.conditions, GroupsCondition("include", (d.id or 0, e.id or 0), "all"))
        )
        with_property = three.add(PropertyCondition("country", "equals", ("DE",)))
        with store.read() as session:
            for label, rule in (
                ("2 clauses", two),
                ("3 clauses", three),
                ("+ property", with_property),
            ):
                print(f"  {label}: {segments.sentence(session, rule)}")

        # Warm-up: the first count builds the index.
        started = time.perf_counter()
        first = segments.count(store, two)
        warm_up = time.perf_counter() - started
        index = segments.index_for(store)
        index_mb = (
            sum(len(bits.serialize()) for bits in index.stored.values())
            + len(index.everyone.serialize())
            + len(index.email_unsubscribed.serialize())
        ) / 2**20
        print(
            f"Warm-up (first count, builds the index): {warm_up:.2f} s; index ≈ {index_mb:.1f} MB"
        )
        clauses = ", ".join(f"{n:,}" for n in first.clauses)
        print(f"  two-clause count: {first.total:,} (clauses {clauses})")

        results: dict[str, list[float]] = {}
        results["count, 2 group clauses"] = timed(lambda: segments.count(store, two), args.runs)
        results["count, 3 group clauses"] = timed(lambda: segments.count(store, three), args.runs)
        segments.count(store, with_property)  # fills the property cache
        results["count, 3 groups + property (warm)"] = timed(
            lambda: segments.count(store, with_property), args.runs
        )
        with store.read() as session:
            results["  bitset work only, 2 clauses"] = timed(
                lambda: index.count(two, session), args.runs
            )
            results["  bitset work only, 3 clauses"] = timed(
                lambda: index.count(three, session), args.runs
            )

        def cold() -> None:
            index._property_cache.clear()
            segments.count(store, with_property)

        results["count, 3 groups + property (cold)"] = timed(cold, args.cold_runs)

        # Following one change made by another process.
        with other.read() as session:
            person = session.exec(select(Profile).order_by(col(Profile.id)).limit(1)).one()
            group = session.get(Group, c.id)
        applying: list[float] = []
        left_c = SegmentRule((GroupsCondition("exclude", (c.id or 0,)),))
        expected = segments.count(store, left_c).total
        for n in range(args.changes):
            new = "unsubscribed" if n % 2 == 0 else "subscribed"
            with other.write() as session:
                event = subscriptions.set_state(
                    session=session, profile=person, group=group, status=new, source="console",
                    actor=ACTOR, reason="bench",
                )  # fmt: skip
            if event is not None:
                expected += 1 if new == "unsubscribed" else -1
            started = time.perf_counter()
            got = segments.count(store, left_c).total
            applying.append((time.perf_counter() - started) * 1000)
            if got != expected:
                print(f"  MISMATCH after change {n}: engine {got:,}, expected {expected:,}")
        results["count right after another process's change"] = applying

        sql_ms: list[float] = []
        sql_value = 0
        for _ in range(args.sql_runs):
            sql_value, sql_one = not_exists_sql(store, (a.id or 0, b.id or 0), c.id or 0)
            sql_ms.append(sql_one)
        engine_value = segments.count(store, two).total
        results["plain SQL NOT EXISTS count, 2 clauses"] = sql_ms

        print()
        print(f"Results ({load()}):")
        for label, ms in results.items():
            print(line(label, ms))
        agree = (
            "agrees"
            if sql_value == engine_value
            else f"DISAGREES ({sql_value:,} vs {engine_value:,})"
        )
        print(f"  SQL count {sql_value:,} {agree} with the engine")
        print()
        verdicts = []
        for label in ("count, 2 group clauses", "count, 3 group clauses"):
            p50 = statistics.median(results[label])
            ok = p50 <= GOAL_MS
            verdicts.append(ok)
            print(
                f"{'PASS' if ok else 'FAIL'}  {label}: p50 {p50:.2f} ms (goal ≤ {GOAL_MS:.0f} ms)"
            )
        if seed_seconds is not None:
            print(f"Seeding took {seed_seconds:.1f} s.")
        return 0 if all(verdicts) and sql_value == engine_value else 1
    finally:
        store.dispose()
        other.dispose()


if __name__ == "__main__":
    sys.exit(main())
