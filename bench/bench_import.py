"""Measure profile CSV import speed against bare sqlite3 (issue 10 goal: 50k rows/s).

    python bench/bench_import.py [--rows 200000] [--rounds 3] [--group-columns 5] [--fill 0.35]

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

Each round, side by side and in turns (which goes first alternates):

- ours: one call of ``app.core.csv_io.import_profiles`` of first.csv into a
  copy of the store with the groups only (read, check, plan, and write
  everything in one transaction with one ledger event per state change,
  commit included), then of second.csv into that store;
- bare: the same rows written into another copy by bare ``sqlite3``, with the
  same schema, indexes and PRAGMAs (WAL, synchronous NORMAL, foreign keys,
  a 64 MB page cache): ``csv.reader``, no checks, one executemany per table,
  the same profiles, stored states and ledger events (their properties as
  ours write them: compact JSON), one commit. The most any import could do on this machine.

rows/s is file rows per second of wall time; the ratio ours/bare is taken in
each round. CPU seconds of this process are shown too: on a machine shared
with other work they vary much less than wall time. The load average is
printed before and after each round. The exit code is 0 when the median of
our first.csv imports reaches 50k rows/s (wall). With ``--db URL`` (say
PostgreSQL) only ours runs, into that store, once. That store may be new or
one seeded with ``subgroups seed`` (its synthetic groups are used; e.g. the
10M store): the file's people are new to it as long as their identities
(``--prefix``, default C: C00000001 …) are not in it yet; a seeded store's
identities start with S.
"""

import argparse
import csv
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from app.core import csv_io, groups, ledger, synthetic  # noqa: E402
from app.core.models import (  # noqa: E402
    POLICY_OPT_OUT,
    SUBSCRIBED,
    Event,
    GroupState,
    Profile,
    json_text,
)
from app.core.store import Store, open_store  # noqa: E402
from app.core.subscriptions import change_properties  # noqa: E402

GOAL_ROWS_PER_S = 50_000
FIRST_NAMES = ("anna", "ben", "chloe", "david", "emma", "felix", "greta", "hugo", "ines", "jonas")
LAST_NAMES = ("meyer", "novak", "olsen", "petit", "quinn", "rossi", "schmidt", "tanaka", "ueda")
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
ACTOR = "bench"


def make_groups(store: Store, count: int) -> list[tuple[str, str]]:
    """Create the synthetic groups (those the store lacks); (name, policy) of each."""
    specs = synthetic.synthetic_group_specs(count)
    with store.write() as session:
        have = {g.name for g in groups.list_groups(session, status="all")}
        for spec in specs:
            if spec.name in have:  # a seeded store given with --db: its groups are used
                continue
            groups.create_group(
                session=session, name=spec.name, description=spec.description,
                policy=spec.policy, actor=ACTOR, source="import",
            )  # fmt: skip
    return [(spec.name, spec.policy) for spec in specs]


def write_files(
    folder: Path,
    *,
    rows: int,
    columns: list[tuple[str, str]],
    fill: float,
    prefix: str = "C",
    seed_value: int = 3,
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
            identity = f"{prefix}{n + 1:08d}"
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


def report(
    label: str, seconds: float, cpu: float, result: csv_io.ImportResult
) -> tuple[float, float]:
    plan = result.plan
    rate = plan.rows / seconds
    changes = len(plan.state_changes)
    print(
        f"  {label:<24} {seconds:6.2f} s {rate:>8,.0f} rows/s {changes / seconds:>8,.0f} changes/s"
        f"  | cpu {cpu:6.2f} s {plan.rows / cpu:>8,.0f} rows/s"
    )
    return rate, plan.rows / cpu


def bare_import(db: Path, path: Path) -> tuple[float, float, int]:
    """first.csv written by bare sqlite3 into a store with the groups only: (wall, cpu, rows)."""
    started, cpu = time.perf_counter(), time.process_time()
    con = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON"):
        con.execute(f"PRAGMA {pragma}")
    con.execute("PRAGMA cache_size = -65536")
    ids_of = {name: gid for gid, name in con.execute("SELECT id, name FROM subscription_group")}
    now = "2026-01-01 00:00:00.000000"
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        header = next(reader)
        rows = list(reader)
    group_ids = [ids_of[column[len("group:") :]] for column in header[6:]]
    con.execute("BEGIN IMMEDIATE")
    con.executemany(
        "INSERT INTO profile (identity, email, email_key, name, properties, all_email, "
        "created_at) VALUES (?, ?, ?, ?, ?, 'subscribed', ?)",
        [
            (r[0], r[1], r[1].lower(), r[2], json_text({"country": r[3], "plan": r[4]}), now)
            for r in rows
        ],
    )
    ids = dict(con.execute("SELECT identity, id FROM profile"))
    texts: dict[tuple[int | None, str], str] = {}

    def properties(gid: int | None, new: str) -> str:
        found = texts.get((gid, new))
        if found is None:
            found = texts[(gid, new)] = json_text(
                change_properties(
                    group_id=gid,
                    group_name=None if gid is None else str(gid),
                    old=SUBSCRIBED if gid is None else None,
                    new=new,
                    source="import",
                    actor=ACTOR,
                    campaign_id=None,
                    reason=None,
                )  # fmt: skip
            )
        return found

    states, events, channel = [], [], []
    name = ledger.CHANNEL_UNSUBSCRIBED
    for r in rows:
        pid = ids[r[0]]
        if r[5]:
            channel.append((pid,))
            events.append((now, name, r[0], pid, None, "import", ACTOR, properties(None, r[5])))
        for gid, cell in zip(group_ids, r[6:], strict=True):
            if cell:
                states.append((pid, gid, cell, now))
                events.append((now, name, r[0], pid, gid, "import", ACTOR, properties(gid, cell)))
    con.executemany("UPDATE profile SET all_email = 'unsubscribed' WHERE id = ?", channel)
    con.executemany(
        "INSERT INTO group_state (profile_id, group_id, state, updated_at) VALUES (?, ?, ?, ?)",
        states,
    )
    con.executemany(
        "INSERT INTO ledger_event (ts, name, identity, profile_id, group_id, source, actor, "
        "properties) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        events,
    )
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - started, time.process_time() - cpu, len(rows)


def fresh_copy(template: Path, db: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, db)
    return db


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--groups", type=int, default=50, help="groups in the store (max 50)")
    parser.add_argument("--group-columns", type=int, default=5, help="group columns in the file")
    parser.add_argument("--fill", type=float, default=0.35, help="share of group cells filled")
    parser.add_argument(
        "--db",
        help="a database URL or SQLite path (new, or a synthetic seeded store): ours only",
    )
    parser.add_argument(
        "--prefix",
        default="C",
        help="the file's identities start with this (another one for each run into one --db)",
    )
    parser.add_argument("--folder", help="where the files and stores go (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="subgroups-bench-import-", dir=args.folder))
    template = folder / "groups.db"
    store = open_store(args.db or str(template))
    try:
        all_groups = make_groups(store, args.groups)
        step = max(1, len(all_groups) // args.group_columns)
        columns = all_groups[::step][: args.group_columns]
        started = time.perf_counter()
        first, second = write_files(
            folder, rows=args.rows, columns=columns, fill=args.fill, prefix=args.prefix
        )
        size = first.stat().st_size
        print(
            f"{args.rows:,} rows, {len(columns)} group columns of {len(all_groups)} groups, "
            f"fill {args.fill:.0%}; first.csv {size / 1e6:.1f} MB "
            f"(written in {time.perf_counter() - started:.1f} s); cpus: {os.cpu_count()}"
        )
        if args.db:
            print(f"store {store.display_name}; load average before: {load()}")
            rate, _ = report("import first.csv", *timed(store, first, dry_run=False))
            report("import second.csv", *timed(store, second, dry_run=False))
            print(f"  store now: {counts(store)} (profiles, stored states, events)")
            print(f"load average after: {load()}")
            return 0 if rate >= GOAL_ROWS_PER_S else 1
        store.dispose()
        ours_rates, ratios, cpu_ratios = [], [], []
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}, load average before: {load()}")
            rates: dict[str, tuple[float, float]] = {}
            for who in ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours"):
                db = fresh_copy(template, folder / f"{who}.db")
                if who == "bare":
                    wall, cpu, rows = bare_import(db, first)
                    rates[who] = rows / wall, rows / cpu
                    print(
                        f"  {'bare sqlite3 first.csv':<24} {wall:6.2f} s {rows / wall:>8,.0f} "
                        f"rows/s {'':>19}  | cpu {cpu:6.2f} s {rows / cpu:>8,.0f} rows/s"
                    )
                    continue
                ours = open_store(str(db))
                try:
                    rates[who] = report("ours first.csv", *timed(ours, first, dry_run=False))
                    report("ours second.csv", *timed(ours, second, dry_run=False))
                finally:
                    ours.dispose()
            ours_rates.append(rates["ours"][0])
            ratios.append(rates["ours"][0] / rates["bare"][0])
            cpu_ratios.append(rates["ours"][1] / rates["bare"][1])
            print(
                f"  ours/bare {ratios[-1]:.2f} (cpu {cpu_ratios[-1]:.2f}); "
                f"load average after: {load()}"
            )
        rate = statistics.median(ours_rates)
        ok = rate >= GOAL_ROWS_PER_S
        print(
            f"median ours {rate:,.0f} rows/s, ours/bare {statistics.median(ratios):.2f} "
            f"(cpu {statistics.median(cpu_ratios):.2f}); "
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
