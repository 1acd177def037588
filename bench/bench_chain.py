"""The ledger's hash chain at scale (issue 12 ask 4 goal: ``events verify`` over 5M events <= 10 s).

    python bench/bench_chain.py --store DIR/store.db [--master /work/stores/1m/master.db]
                                [--rounds 3] [--workers 1,2]

With ``--master``, the master store (and its -wal/-shm) is copied to
``--store`` first (never written to), and opening the copy upgrades it
to this schema: the time of the upgrade is printed, and of the chain's
backfill within it (schema step 12: every event hashed, in id order, and
the hashes written with one UPDATE ... FROM), in events/s.

Then, ``--rounds`` times, interleaved, ``ledger_verify.verify_store`` over the
whole ledger with each worker count of ``--workers`` (1: one process reads
and checks every event): wall seconds, events/s and this process's CPU
seconds (the workers' CPU is their children's: shown as "children"), with the
load average before and after each run. Exit 0 when the best verify round is
within 10 s of wall time.
"""

import argparse
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core import ledger_verify  # noqa: E402
from app.core.store import open_store  # noqa: E402

GOAL_SECONDS = 10.0


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def copy_master(master: Path, store: Path) -> None:
    store.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(master) + suffix)
        target = Path(str(store) + suffix)
        target.unlink(missing_ok=True)
        if source.exists():
            shutil.copyfile(source, target)


def upgrade(store_path: Path) -> None:
    timings: dict[str, float] = {}
    original = ledger_verify.backfill

    def timed_backfill(connection, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        last = original(connection, **kwargs)
        timings["backfill"] = time.perf_counter() - started
        timings["events"] = connection.exec_driver_sql(
            "SELECT count(*) FROM ledger_event"
        ).scalar_one()
        return last

    ledger_verify.backfill = timed_backfill  # type: ignore[assignment]
    print(f"upgrading a copy of the master: load before {load()}", flush=True)
    started, (own0, _) = time.perf_counter(), cpu()
    store = open_store(store_path, create=False)
    wall, (own1, _) = time.perf_counter() - started, cpu()
    store.dispose()
    ledger_verify.backfill = original  # type: ignore[assignment]
    events = int(timings.get("events", 0))
    backfill = timings.get("backfill", 0.0)
    print(
        f"upgrade: {wall:.1f} s wall, {own1 - own0:.1f} s CPU, of which the chain's backfill "
        f"{backfill:.1f} s for {events:,} events ({events / backfill if backfill else 0:,.0f}/s); "
        f"load after {load()}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="the store to verify (a copy)")
    parser.add_argument("--master", type=Path, help="copy this store to --store first")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    args = parser.parse_args()
    if args.master is not None:
        if args.master.resolve() == args.store.resolve():
            parser.error("--store must be a copy, not the master")
        copy_master(args.master, args.store)
        upgrade(args.store)
    worker_counts = [int(x) for x in args.workers.split(",")]
    store = open_store(args.store, create=False)
    results: dict[int, list[float]] = {n: [] for n in worker_counts}
    try:
        for round_number in range(args.rounds):
            order = worker_counts if round_number % 2 == 0 else list(reversed(worker_counts))
            for workers in order:
                before = load()
                started, (own0, kids0) = time.perf_counter(), cpu()
                with store.engine.connect() as connection:
                    report = ledger_verify.verify_store(store.url, connection, workers=workers)
                wall, (own1, kids1) = time.perf_counter() - started, cpu()
                results[workers].append(wall)
                state = "intact" if report.intact else f"BROKEN: {report.broken}"
                print(
                    f"round {round_number + 1}, {workers} worker(s): {report.events:,} events, "
                    f"chain {state}; {wall:.2f} s wall, {report.events / wall:,.0f} events/s, "
                    f"CPU {own1 - own0:.2f} s (+ children {kids1 - kids0:.2f} s); "
                    f"load {before} -> {load()}",
                    flush=True,
                )
    finally:
        store.dispose()
    for workers, walls in results.items():
        print(
            f"{workers} worker(s): median {statistics.median(walls):.2f} s, best {min(walls):.2f} s"
        )
    best = min(min(walls) for walls in results.values())
    print(f"goal <= {GOAL_SECONDS:.0f} s: {'met' if best <= GOAL_SECONDS else 'NOT met'}")
    return 0 if best <= GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
