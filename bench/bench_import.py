"""Measure profile CSV import speed (issue 3 goal: at least 20k rows/s with the ledger written).

    python bench/bench_import.py [--rows 200000] [--group-columns 5] [--fill 0.35] [--keep]

The store gets the 50 synthetic groups of ``seed_synthetic`` (no profiles).
Two files are generated (seeded, so the same every run):

- ``first.csv``: ``--rows`` new customers: identity, email, name, country,
  plan, all_email (2% unsubscribed) and ``--group-columns`` group columns
  spread over the 50 groups; each group cell is filled with probability
  ``--fill`` (three in four with the group's likely choice). The default,
  5 columns at 0.35, gives 1.75 stored states per row: about what
  ``sample_data/profiles.csv`` holds (1.73 per row over 12 columns).
- ``second.csv``: the same identities with every group cell drawn again and
  one name in ten changed: a fresh CRM export imported into a store that
  already holds these people. Its cells that would resubscribe an explicit
  unsubscribe are kept (the default protection).

Four timings, each one call of ``app.core.csv_io.import_profiles`` (read,
check, plan, and for a real import write everything in one transaction
with one ledger event per state change, commit included):

1. dry run of first.csv into the empty store;
2. import of first.csv (creates the profiles, states and events);
3. dry run of second.csv into the filled store;
4. import of second.csv.

rows/s is file rows per second of wall time; changes/s counts state changes
(one ledger event each). CPU seconds of this process are shown too: on a
machine shared with other work they vary much less than wall time. The exit
code is 0 when both real imports reach 20k rows/s (wall).
"""

import argparse
import csv
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from app.core import csv_io, groups, synthetic  # noqa: E402
from app.core.models import POLICY_OPT_OUT, Event, GroupState, Profile  # noqa: E402
from app.core.store import Store, open_store  # noqa: E402

GOAL_ROWS_PER_S = 20_000
FIRST_NAMES = ("anna", "ben", "chloe", "david", "emma", "felix", "greta", "hugo", "ines", "jonas")
LAST_NAMES = ("meyer", "novak", "olsen", "petit", "quinn", "rossi", "schmidt", "tanaka", "ueda")
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
ACTOR = "bench"


def make_groups(store: Store, count: int) -> list[tuple[str, str]]:
    """Create the synthetic groups; (name, policy) of each."""
    specs = synthetic.synthetic_group_specs(count)
    with store.write() as session:
        for spec in specs:
            groups.create_group(
                session=session, name=spec.name, description=spec.description,
                policy=spec.policy, actor=ACTOR, source="import",
            )  # fmt: skip
    return [(spec.name, spec.policy) for spec in specs]


def write_files(
    folder: Path, *, rows: int, columns: list[tuple[str, str]], fill: float, seed_value: int = 3
) -> tuple[Path, Path]:
    """first.csv (new customers) and second.csv (the same people, states drawn again)."""
    rng = random.Random(seed_value)
    header = ["identity", "email", "name", "country", "plan", "all_email"]
    header += [f"group:{name}" for name, _ in columns]
    likely = ["unsubscribed" if policy == POLICY_OPT_OUT else "subscribed" for _, policy in columns]
    other = {"subscribed": "unsubscribed", "unsubscribed": "subscribed"}
    countries = ("DE", "FR", "PL", "US", "GB", "SE", "ES", "IT")
    plans = ("free", "starter", "pro", "enterprise")

    def cells() -> list[str]:
        out = []
        for state in likely:
            if rng.random() >= fill:
                out.append("")
            else:
                out.append(state if rng.random() < 0.75 else other[state])
        return out

    first, second = folder / "first.csv", folder / "second.csv"
    with (
        first.open("w", newline="", encoding="utf-8") as a,
        second.open("w", newline="", encoding="utf-8") as b,
    ):
        wa, wb = csv.writer(a, lineterminator="\n"), csv.writer(b, lineterminator="\n")
        wa.writerow(header)
        wb.writerow(header)
        for n in range(rows):
            identity = f"C{n + 1:08d}"
            name = f"Customer {n + 1}"
            # Emails in no particular order, as in a real customer list.
            email = (
                f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}.{n + 1}@{rng.choice(DOMAINS)}"
            )
            base = [identity, email]
            country, plan = rng.choice(countries), rng.choice(plans)
            all_email = "unsubscribed" if rng.random() < 0.02 else ""
            wa.writerow([*base, name, country, plan, all_email, *cells()])
            renamed = f"{name} Jr." if rng.random() < 0.1 else name
            wb.writerow([*base, renamed, country, plan, all_email, *cells()])
    return first, second


def counts(store: Store) -> tuple[int, int, int]:
    with store.read() as session:
        return tuple(  # type: ignore[return-value]
            int(session.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (Profile, GroupState, Event)
        )


def timed(store: Store, path: Path, *, dry_run: bool) -> tuple[float, float, csv_io.ImportResult]:
    """Wall and CPU seconds of one import, and its result."""
    started, cpu = time.perf_counter(), time.process_time()
    result = csv_io.import_profiles(store=store, source=path, actor=ACTOR, dry_run=dry_run)
    return time.perf_counter() - started, time.process_time() - cpu, result


def report(label: str, seconds: float, cpu: float, result: csv_io.ImportResult) -> float:
    plan = result.plan
    rate = plan.rows / seconds
    changes = len(plan.state_changes)
    print(
        f"{label:<26} {seconds:6.2f} s {rate:>8,.0f} rows/s {changes / seconds:>8,.0f} changes/s"
        f"  | cpu {cpu:6.2f} s {plan.rows / cpu:>8,.0f} rows/s"
    )
    print(
        f"{'':<26} new {len(plan.new_profiles):,}, updated {len(plan.updated_profiles):,}, "
        f"state changes {changes:,}, kept unsubscribed {len(plan.kept_unsubscribed):,}"
    )
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--groups", type=int, default=50, help="groups in the store (max 50)")
    parser.add_argument("--group-columns", type=int, default=5, help="group columns in the file")
    parser.add_argument("--fill", type=float, default=0.35, help="share of group cells filled")
    parser.add_argument("--db", help="SQLite path or database URL for the store (must be new)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="subgroups-bench-import-"))
    store = open_store(args.db or str(folder / "bench.db"))
    try:
        all_groups = make_groups(store, args.groups)
        step = max(1, len(all_groups) // args.group_columns)
        columns = all_groups[::step][: args.group_columns]
        started = time.perf_counter()
        first, second = write_files(folder, rows=args.rows, columns=columns, fill=args.fill)
        size = first.stat().st_size
        print(
            f"{args.rows:,} rows, {len(columns)} group columns of {len(all_groups)} groups, "
            f"fill {args.fill:.0%}; first.csv {size / 1e6:.1f} MB "
            f"(written in {time.perf_counter() - started:.1f} s); store {store.display_name}"
        )
        print(f"load average before: {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()})")
        rates = []
        report("dry run, empty store", *timed(store, first, dry_run=True))
        rates.append(report("import, empty store", *timed(store, first, dry_run=False)))
        print(f"{'':<26} store now: {counts(store)} (profiles, stored states, events)")
        report("dry run, profiles exist", *timed(store, second, dry_run=True))
        rates.append(report("import, profiles exist", *timed(store, second, dry_run=False)))
        print(f"{'':<26} store now: {counts(store)} (profiles, stored states, events)")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        ok = all(rate >= GOAL_ROWS_PER_S for rate in rates)
        print(
            f"goal {GOAL_ROWS_PER_S:,} rows/s with the ledger written: {'PASS' if ok else 'FAIL'}"
        )
        return 0 if ok else 1
    finally:
        store.dispose()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
