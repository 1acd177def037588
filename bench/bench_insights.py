"""Measure insights over a big ledger (issue 12 goal: <= 1 s over 5M events), and what
keeping the ledger's daily counts costs a write.

    python bench/bench_insights.py --db COPY_OF_A_SEEDED_STORE [--runs 5] [--compare]
    python bench/bench_insights.py --writes [--events 20000] [--runs 5]

Reads (``--db``, e.g. a copy of /work/stores/1m/master.db: opening it upgrades it,
which counts its ledger once into ``ledger_day``): interleaved in each run, the
console's Insights read (``insights.insights``: the daily chart, by source, by
campaign, by group and the reasons) over 30 and over 90 days, and each
``subgroups insights --by`` read. With ``--compare``, the same 90-day count by
source read straight from the ledger instead (``GROUP BY`` over the events in the
window through an index on ``(name, ts)``, made on the copy for the occasion):
the other design the issue names.

Writes (``--writes``, a temporary SQLite store): ``--events`` subscription
changes inserted in batches of 500 as the bulk paths insert them, into a ledger
with the trigger that keeps the daily counts and into one without it, the two
interleaved in each run; printed: CPU seconds each (medians) and the ratio.

Wall and CPU seconds are printed as medians, with the load average before and after.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from app.core import insights, ledger_days  # noqa: E402
from app.core.event_names import CHANNEL_UNSUBSCRIBED  # noqa: E402
from app.core.models import json_text  # noqa: E402
from app.core.store import Store, open_store  # noqa: E402


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def print_table(results: dict[str, list[tuple[float, float]]]) -> None:
    print(f"{'measure':<44} {'wall s (median)':>16} {'cpu s (median)':>15} {'max wall':>9}")
    for name, samples in results.items():
        walls = [w for w, _ in samples]
        cpus = [c for _, c in samples]
        print(
            f"{name:<44} {statistics.median(walls):>16.3f} {statistics.median(cpus):>15.3f} "
            f"{max(walls):>9.3f}"
        )


def read_from_the_ledger(store: Store, days: int) -> list[tuple[str, int]]:
    """By source, counted from the events themselves (the design not taken)."""
    since = (datetime.now(UTC) - timedelta(days=days - 1)).date().isoformat()
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT source, count(*) FROM ledger_event INDEXED BY ix_bench_name_ts "
                "WHERE name = :n AND ts >= :s "
                """AND json_extract(properties, '$."New State"') = 'unsubscribed' """
                "GROUP BY source"
            ),
            {"n": CHANNEL_UNSUBSCRIBED, "s": since},
        ).all()
    return [(str(s), int(n)) for s, n in rows]


def bench_reads(db: str, runs: int, compare: bool) -> None:
    started = time.perf_counter()
    store = open_store(db, create=False)
    print(f"opened (and upgraded) {db} in {time.perf_counter() - started:.1f} s")
    with store.engine.connect() as conn:
        events = conn.execute(text("SELECT max(id) FROM ledger_event")).scalar()
        day_rows = conn.execute(text("SELECT count(*) FROM ledger_day")).scalar()
    print(f"ledger: {events:,} events; ledger_day: {day_rows:,} rows")
    if compare:
        started = time.perf_counter()
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE INDEX IF NOT EXISTS ix_bench_name_ts ON ledger_event (name, ts)"
            )
        print(f"made ix_bench_name_ts for --compare in {time.perf_counter() - started:.1f} s")

    def section(days: int) -> Callable[[], object]:
        def work() -> object:
            with store.read() as session:
                return insights.insights(session, days=days)

        return work

    def by(key: str, days: int) -> Callable[[], object]:
        def work() -> object:
            with store.read() as session:
                return insights.unsubscribes_by(session, by=key, days=days)

        return work

    measures: dict[str, Callable[[], object]] = {
        "console section, 30 days": section(30),
        "console section, 90 days": section(90),
        **{f"insights --by {key} --days 90": by(key, 90) for key in insights.BY},
    }
    if compare:
        measures["by source, 90 days, from the ledger (index)"] = lambda: read_from_the_ledger(
            store, 90
        )
    print(f"load average before: {load()}")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in measures}
    for _ in range(runs):
        for name, work in measures.items():
            results[name].append(timed(work))
    print(f"load average after:  {load()}")
    print_table(results)
    if compare:
        with store.read() as session:
            rollup = {r.key: r.unsubscribes for r in insights.unsubscribes_by(
                session, by="source", days=90)}  # fmt: skip
        direct = dict(read_from_the_ledger(store, 90))
        same = all(rollup.get(k, 0) == n for k, n in direct.items())
        print(f"the two designs agree on the 90-day counts by source: {same}")
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX IF EXISTS ix_bench_name_ts")
    store.dispose()


def _rows(start: int, count: int) -> list[dict[str, object]]:
    now = datetime.now(UTC)
    props = {
        "Channel": "Email", "Group": "News", "Group ID": 1, "Subscription Type": "Group",
        "Resubscribed": False, "Old State": None, "New State": "unsubscribed",
        "Source": "import", "Campaign ID": None, "Actor": "bench", "Reason": None,
    }  # fmt: skip
    return [
        {
            "ts": (now - timedelta(minutes=n % 43_200)).strftime("%Y-%m-%d %H:%M:%S.%f"),
            "pid": start + n,
            "gid": 1 + n % 50,
            "src": ("import", "one_click", "landing_page")[n % 3],
            "props": json_text(props),
        }
        for n in range(count)
    ]


INSERT = text(
    "INSERT INTO ledger_event (ts, name, identity, profile_id, group_id, campaign_id, source, "
    f"actor, properties) VALUES (:ts, '{CHANNEL_UNSUBSCRIBED}', NULL, :pid, :gid, NULL, :src, "
    "'bench', :props)"
)


def bench_writes(events: int, runs: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-insights-"))
    with_trigger = open_store(folder / "with.db")
    without = open_store(folder / "without.db")
    with without.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER ledger_event_counts_day")
    stores = {"insert with the daily-count trigger": with_trigger, "insert without it": without}
    print(f"load average before: {load()}")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in stores}
    for run in range(runs):
        for name, store in stores.items():

            def work(store: Store = store, run: int = run) -> None:
                for batch in range(0, events, 500):
                    rows = _rows(run * events + batch, min(500, events - batch))
                    with store.engine.begin() as conn:
                        conn.execute(INSERT, rows)

            results[name].append(timed(work))
    print(f"load average after:  {load()}")
    print(f"{events:,} events per run, batches of 500, {runs} runs interleaved")
    print_table(results)
    cpu = {n: statistics.median(c for _, c in s) for n, s in results.items()}
    ratio = cpu["insert with the daily-count trigger"] / cpu["insert without it"]
    print(f"CPU ratio with / without the trigger: {ratio:.2f}")
    with with_trigger.engine.begin() as conn:
        kept = conn.execute(text("SELECT sum(events) FROM ledger_day")).scalar()
        ledger_days.backfill(conn)
        recounted = conn.execute(text("SELECT sum(events) FROM ledger_day")).scalar()
    print(f"daily counts kept {kept:,}; a recount of the ledger gives {recounted:,}")
    for store in stores.values():
        store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a store to read (a copy: opening upgrades it)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare", action="store_true", help="also count from the ledger")
    parser.add_argument("--writes", action="store_true", help="the trigger's cost on inserts")
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    if args.writes:
        bench_writes(args.events, args.runs)
    if args.db:
        bench_reads(args.db, args.runs, args.compare)
    if not (args.writes or args.db):
        parser.error("give --db STORE, --writes, or both")


if __name__ == "__main__":
    main()
