"""Measure the ledger partitioned by month on PostgreSQL (issue 13, ask 4).

    python bench/bench_partitions.py --pg URL [--rounds 7] [--single 300] [--batch 3000]
        [--events 500000]

``URL`` is a PostgreSQL SQLAlchemy URL (``postgresql+psycopg://...``); the
benchmark works in schemas of its own (named after its pid) and drops them.
What is measured:

- the append rate to the partitioned ledger (schema 17) against the same
  store with one plain ``ledger_event`` table (as schema 15 made it), both
  written by the real write path (``ledger.record``: the hash chain's head
  lock, the daily-count trigger), interleaved round by round with the order
  alternating: ``--single`` transactions of one event each (a console or CLI
  change), and one transaction of ``--batch`` events; medians and the ratio
  partitioned / plain (goal: no slower, ratio >= 0.9);
- what a store open pays for the partitions when there is nothing to make
  (``ledger_partitions.maintain``: a catalog read and a one-row probe);
- the time of step 17 on a schema-15 store of ``--events`` events spread over
  six months (``open_store``: the copy into monthly partitions, the keys and
  indexes, the triggers, ANALYZE).

The load average (``os.getloadavg``) is printed before and after.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, make_url, text  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

from app.core import (  # noqa: E402
    ledger,
    ledger_chain,
    ledger_days,
    ledger_partitions,
    migrations,
)
from app.core.migrations import STORE_ID_KEY  # noqa: E402
from app.core.store import Store, open_store  # noqa: E402

RATIO_GOAL = 0.9


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def schema_url(url: str, schema: str) -> str:
    with_path = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return with_path.render_as_string(hide_password=False)


def reset(url: str, schema: str, *, drop_only: bool = False) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        if not drop_only:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()


def plain_store(url: str) -> Store:
    """A store as schema 15 made it: one plain ``ledger_event`` table (not upgraded)."""
    store = open_store(url, migrate=False)
    with store.engine.begin() as conn:
        SQLModel.metadata.create_all(conn)
        ledger_chain.start_head(conn)
        migrations._guard_ledger(conn)
        ledger_days.install(conn)
        migrations._give_store_id(conn)
        migrations._stamp(conn, 15)
    # What open_store does besides upgrading: the store id kept at hand (links, wake-ups).
    store.cache[STORE_ID_KEY] = store.store_id
    return store


def append_single(store: Store, count: int) -> float:
    """Events per second, one transaction per event."""
    started = time.perf_counter()
    for n in range(count):
        with store.write() as session:
            ledger.record(
                session, name="Bench Event", source="cli", actor="bench", properties={"N": n}
            )
    return count / (time.perf_counter() - started)


def append_batch(store: Store, count: int) -> float:
    """Events per second, ``count`` events in one transaction."""
    started = time.perf_counter()
    with store.write() as session:
        for n in range(count):
            ledger.record(
                session, name="Bench Event", source="cli", actor="bench", properties={"N": n}
            )
    return count / (time.perf_counter() - started)


def fill_old_ledger(store: Store, events: int) -> None:
    """``events`` rows in a schema-15 ledger, spread over six months (raw SQL: the
    hashes are stand-ins of the right size; step 17 copies them as they are)."""
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ledger_event (ts, name, identity, profile_id, group_id, "
                "campaign_id, source, actor, properties, content_hash, chain_hash) "
                "SELECT timestamptz '2026-06-01 00:00+00' + (n * interval '182 days') / :e, "
                "'Channel Unsubscribed', 'person' || (n % 100000) || '@example.com', "
                "n % 100000, n % 50, NULL, 'import', 'bench', "
                '(\'{"Channel":"Email","Group ID":\' || (n % 50) || '
                '\',"New State":"unsubscribed"}\')::json, '
                "sha256(int4send(n)), sha256(int8send(n)) FROM generate_series(1, :e) AS n"
            ),
            {"e": events},
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=os.environ.get("SUBGROUPS_TEST_PG_URL"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--single", type=int, default=300)
    parser.add_argument("--batch", type=int, default=3000)
    parser.add_argument("--events", type=int, default=500_000)
    args = parser.parse_args()
    if not args.pg:
        print("give --pg URL (or set SUBGROUPS_TEST_PG_URL)", file=sys.stderr)
        return 2
    print(f"load average before: {load()}")
    names = {k: f"bench_partitions_{k}_{os.getpid()}" for k in ("parted", "plain", "upgrade")}
    for schema in names.values():
        reset(args.pg, schema)
    stores: dict[str, Store] = {}
    try:
        stores["partitioned"] = open_store(schema_url(args.pg, names["parted"]))
        stores["plain"] = plain_store(schema_url(args.pg, names["plain"]))
        rates: dict[str, dict[str, list[float]]] = {k: {"single": [], "batch": []} for k in stores}
        order = ["partitioned", "plain"]
        for round_number in range(args.rounds):
            for kind in order if round_number % 2 == 0 else order[::-1]:
                rates[kind]["single"].append(append_single(stores[kind], args.single))
                rates[kind]["batch"].append(append_batch(stores[kind], args.batch))
        met = True
        for mode in ("single", "batch"):
            parted = statistics.median(rates["partitioned"][mode])
            plain = statistics.median(rates["plain"][mode])
            ratio = parted / plain
            met &= ratio >= RATIO_GOAL
            print(
                f"append, {mode:6} ({args.single if mode == 'single' else args.batch} events, "
                f"median of {args.rounds}): partitioned {parted:,.0f}/s, plain {plain:,.0f}/s, "
                f"ratio {ratio:.2f} (goal >= {RATIO_GOAL})"
            )
        with stores["partitioned"].engine.begin() as conn:
            started = time.perf_counter()
            for _ in range(100):
                ledger_partitions.maintain(conn)
            upkeep_ms = (time.perf_counter() - started) * 10
        print(f"store open, partition upkeep with nothing to make: {upkeep_ms:.2f} ms")

        old_url = schema_url(args.pg, names["upgrade"])
        old = plain_store(old_url)
        fill_old_ledger(old, args.events)
        old.dispose()
        started = time.perf_counter()
        upgraded = open_store(old_url)
        seconds = time.perf_counter() - started
        with upgraded.engine.connect() as conn:
            kept = conn.execute(text("SELECT count(*) FROM ledger_event")).scalar()
            months = len(ledger_partitions.partitions(conn))
        upgraded.dispose()
        print(
            f"step 17 on {args.events:,} events over six months: {seconds:.1f} s "
            f"({kept:,} kept, {months} partitions; {datetime.now(UTC):%Y-%m-%d})"
        )
    finally:
        for store in stores.values():
            store.dispose()
        for schema in names.values():
            reset(args.pg, schema, drop_only=True)
    print(f"load average after: {load()}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
