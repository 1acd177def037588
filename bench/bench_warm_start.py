"""Measure the segment index's warm start (issue 10, ask 1).

    python bench/bench_warm_start.py --db PATH [--profiles 1000000] [--rounds 7] [--runs 200]
        [--before-src DIR]

The store at ``--db`` is seeded with ``subgroups seed --profiles N`` if it is
missing (the seed also writes the index snapshot). What is measured:

- fresh processes, interleaved round by round (the order alternates): a
  ``subgroups segments count --include A,B --json`` process against a plain
  ``subgroups groups list --json`` process; medians and their ratio (goal:
  at most 1.3x). With ``--before-src DIR`` (a checkout of the code before
  this change, e.g. main), the same two commands of that code run in the same
  rounds against a schema-8 copy of the store (made next to it once: the
  copy loses the snapshot table), for a before/after in one run; with
  ``--before-same-store`` that code runs on the store itself (both read the
  same schema and snapshot: for changes after the snapshot came in);
- in one process, interleaved: the first count of a freshly opened store
  from the snapshot (warm) against the same with the snapshot ignored (cold:
  read from the tables through raw cursors);
- the warm count p50 / p95 over ``--runs`` counts (goal: p50 at most 2 ms).

The load average (``os.getloadavg``) is printed before and after. Exit code 0
when both goals are met, 1 otherwise.
"""

import argparse
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core import groups, segments  # noqa: E402
from app.core.segment_index import SegmentIndex  # noqa: E402
from app.core.segment_rules import GroupsCondition, SegmentRule  # noqa: E402
from app.core.store import open_store  # noqa: E402

RATIO_GOAL = 1.3
P50_GOAL_MS = 2.0


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cli(src: Path, db: Path, *args: str) -> tuple[float, str]:
    """Seconds for one fresh ``python -m app`` process of the code in ``src``; its output."""
    seconds, _cpu, out = run_cli_cpu(src, db, *args)
    return seconds, out


def run_cli_cpu(src: Path, db: Path, *args: str) -> tuple[float, float, str]:
    """Wall and CPU seconds of one fresh ``python -m app`` process; its output."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cpu = children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "app", "--db", str(db), *args],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, children_cpu() - cpu, done.stdout


def schema_8_copy(db: Path) -> Path:
    """A copy of the store as schema 8 left it (no snapshot table), for the code before."""
    copy = db.with_name(db.stem + ".v8" + db.suffix)
    if not copy.exists():
        shutil.copyfile(db, copy)
        conn = sqlite3.connect(copy)
        try:
            conn.execute("DROP TABLE IF EXISTS index_snapshot")
            conn.execute("UPDATE schema_meta SET value = '8' WHERE key = 'schema_version'")
            conn.commit()
        finally:
            conn.close()
    return copy


def fresh_processes(args: argparse.Namespace, names: list[str]) -> float:
    include = ",".join(names)
    kinds: list[tuple[str, Path, Path, list[str]]] = [
        ("groups list --json", ROOT, args.db, ["groups", "list", "--json"]),
        ("segments count", ROOT, args.db, ["segments", "count", "--include", include, "--json"]),
    ]
    if args.before_src:
        before_db = args.db if args.before_same_store else schema_8_copy(args.db)
        kinds += [
            (
                "before: groups list --json",
                args.before_src,
                before_db,
                ["groups", "list", "--json"],
            ),
            (
                "before: segments count",
                args.before_src,
                before_db,
                ["segments", "count", "--include", include, "--json"],
            ),
        ]
    times: dict[str, list[float]] = {k[0]: [] for k in kinds}
    cpus: dict[str, list[float]] = {k[0]: [] for k in kinds}
    outputs: dict[str, str] = {}
    for round_number in range(args.rounds):
        order = kinds if round_number % 2 == 0 else list(reversed(kinds))
        for label, src, db, argv in order:
            seconds, cpu, out = run_cli_cpu(src, db, *argv)
            times[label].append(seconds)
            cpus[label].append(cpu)
            outputs[label] = out
    print(
        f"\nFresh processes ({args.rounds} interleaved rounds; wall median / min s, "
        "CPU (user + sys) median s):"
    )
    for label, values in times.items():
        print(
            f"  {label:32} {statistics.median(values):6.3f} / {min(values):6.3f}"
            f"   CPU {statistics.median(cpus[label]):6.3f}"
        )
    ratio = statistics.median(times["segments count"]) / statistics.median(
        times["groups list --json"]
    )
    cpu_ratio = statistics.median(cpus["segments count"]) / statistics.median(
        cpus["groups list --json"]
    )
    print(
        f"  after:  segments count / groups list = {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU "
        f"(goal <= {RATIO_GOAL}x, on wall)"
    )
    if args.before_src:
        before = statistics.median(times["before: segments count"]) / statistics.median(
            times["before: groups list --json"]
        )
        print(f"  before: segments count / groups list = {before:.2f}x")
        same = outputs["segments count"] == outputs["before: segments count"]
        print(f"  same answer before and after: {same}")
    return ratio


def first_counts(args: argparse.Namespace, rule: SegmentRule) -> None:
    warm: list[float] = []
    cold: list[float] = []
    totals = set()
    original = SegmentIndex._build_from_snapshot
    for round_number in range(args.rounds):
        for kind in ("warm", "cold") if round_number % 2 == 0 else ("cold", "warm"):
            if kind == "cold":
                SegmentIndex._build_from_snapshot = lambda *_a, **_k: False  # type: ignore[method-assign]
            store = open_store(args.db, create=False)
            try:
                started = time.perf_counter()
                totals.add(segments.count(store, rule).total)
                (warm if kind == "warm" else cold).append(time.perf_counter() - started)
            finally:
                SegmentIndex._build_from_snapshot = original  # type: ignore[method-assign]
                store.dispose()
    print(f"\nFirst count in a process ({args.rounds} interleaved, median / min s):")
    print(f"  warm (snapshot + replay) {statistics.median(warm):6.3f} / {min(warm):6.3f}")
    print(f"  cold (raw cursors)       {statistics.median(cold):6.3f} / {min(cold):6.3f}")
    print(f"  cold / warm = {statistics.median(cold) / statistics.median(warm):.1f}x")
    print(f"  one answer throughout: {len(totals) == 1}")


def warm_p50(args: argparse.Namespace, rule: SegmentRule) -> float:
    store = open_store(args.db, create=False)
    try:
        segments.count(store, rule)
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            segments.count(store, rule)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        store.dispose()
    times.sort()
    p50, p95 = times[len(times) // 2], times[int(len(times) * 0.95)]
    print(f"\nWarm count ({args.runs} runs): p50 {p50:.2f} ms, p95 {p95:.2f} ms")
    print(f"  (goal p50 <= {P50_GOAL_MS} ms)")
    return p50


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--before-src", type=Path, default=None)
    parser.add_argument(
        "--before-same-store",
        action="store_true",
        help="run --before-src's code on the store itself (same schema), not a schema-8 copy",
    )
    args = parser.parse_args()
    if not args.db.exists():
        print(f"Seeding {args.profiles:,} profiles into {args.db} ...")
        run_cli(ROOT, args.db, "seed", "--profiles", str(args.profiles))
    print(f"Load average before: {load()}")
    store = open_store(args.db, create=False)
    try:
        with store.read() as session:
            names = [g.name for g in groups.list_groups(session)][:2]
    finally:
        store.dispose()
    ratio = fresh_processes(args, names)
    store = open_store(args.db, create=False)
    try:
        with store.read() as session:
            rule = SegmentRule(
                (GroupsCondition("include", segments.resolve_groups(session, names)),)
            )
    finally:
        store.dispose()
    first_counts(args, rule)
    p50 = warm_p50(args, rule)
    print(f"\nLoad average after: {load()}")
    return 0 if ratio <= RATIO_GOAL and p50 <= P50_GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
