"""Measure event to follower: how long after a separate process commits a ledger
event the console's follower has read it (issue 10 goal: p95 <= 150 ms).

    python bench/bench_wakeups.py [--events 200] [--url URL | --db PATH]

Side by side in one run, on one store (a temporary SQLite file, or ``--url``,
e.g. a PostgreSQL URL, or ``--db``, an existing store such as a seeded 10M
one: the writer adds its ``Bench`` events to that store's ledger):

- **old**: the follower the console had before, reading ``id > last`` every 300 ms;
- **new**: the follower waiting on ``LedgerWakeups`` (SQLite: ``PRAGMA
  data_version`` every 50 ms on one kept connection; PostgreSQL: LISTEN/NOTIFY)
  and reading only when it changed.

For each, a separate ``python`` process commits ``--events`` events one at a
time, 20-80 ms apart (random, so the writes do not beat in step with a poll),
each carrying the wall-clock time just before its commit; the follower notes
when it read each one. Printed: p50 / p95 / max of the delay, and how many
ledger reads the follower made. The load average is printed before and after.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.core import ledger  # noqa: E402
from app.core.ledger_wakeups import LedgerWakeups  # noqa: E402
from app.core.store import Store, open_store  # noqa: E402

OLD_POLL_SECONDS = 0.3

WRITER = """
import random, sys, time
from app.core import ledger
from app.core.store import open_store
store = open_store(sys.argv[1])
random.seed(int(sys.argv[3]))
for n in range(int(sys.argv[2])):
    time.sleep(random.uniform(0.02, 0.08))
    with store.write() as session:
        ledger.record(session, name="Bench", source="cli", actor="bench",
                      properties={"sent": time.time()})
store.dispose()
"""


def follow(store: Store, mode: str, events: int, seed: int) -> tuple[list[float], int]:
    """Delays in ms (read time minus commit time) for ``events`` events; and the reads made."""
    stop = threading.Event()
    delays: list[float] = []
    reads = 0
    wakeups = LedgerWakeups(store.engine) if mode == "new" else None
    with store.read() as session:
        follower = ledger.LedgerFollower(after_id=ledger.latest_id(session))

    def loop() -> None:
        nonlocal reads
        while True:
            if wakeups is None:
                if stop.wait(OLD_POLL_SECONDS):
                    return
            elif not wakeups.wait(stop):
                return
            reads += 1
            with store.read() as session:
                fresh = follower.poll(session)
            seen = time.time()
            delays.extend((seen - e.properties["sent"]) * 1000 for e in fresh)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=root)
    subprocess.run(
        [sys.executable, "-c", WRITER, store.url, str(events), str(seed)], env=env, check=True
    )
    while len(delays) < events:
        time.sleep(0.05)
    stop.set()
    thread.join()
    if wakeups is not None:
        wakeups.close()
    return delays, reads


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument(
        "--url", "--db", help="a store URL or SQLite path (default: a temporary SQLite file)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(args.url or str(Path(tmp) / "bench.db"))
        print(f"store: {store.display_name}")
        print(f"load average before: {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()})")
        results = {}
        for seed, mode in enumerate(("old", "new")):
            results[mode] = follow(store, mode, args.events, seed)
        print(f"{'follower':<34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'ledger reads':>13}")
        labels = {
            "old": "old: read every 300 ms",
            "new": "new: wake-ups (data_version/NOTIFY)",
        }
        for mode, (delays, reads) in results.items():
            print(
                f"{labels[mode]:<34} {statistics.median(delays):8.1f} "
                f"{quantile(delays, 0.95):8.1f} {max(delays):8.1f} {reads:13d}"
            )
        old, new = results["old"][0], results["new"][0]
        print(f"p95 new / old: {quantile(new, 0.95) / quantile(old, 0.95):.2f}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        store.dispose()
        return 0 if quantile(new, 0.95) <= 150 else 1


if __name__ == "__main__":
    sys.exit(main())
