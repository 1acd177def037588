"""The database side of a CSV import under other schemas and settings (issue 10 goal).

    python bench/bench_import_writes.py [--rows 200000] [--rounds 3] [--variants a,b,...]

What the writes of ``bench_import.py``'s first.csv cost (200k new customers,
1.75 state changes and ledger events a row) when bare sqlite3 writes them,
with no checks and no planning, under each variant of the schema or the
write settings. Each variant gets a fresh copy of a store holding the 50
synthetic groups; the variants run in turns (the order reversed every other
round) so a busy machine weighs on all alike. CPU seconds of this process are
the number to compare on a shared machine; the load average is printed.

Variants:

- ``v9``: the schema before version 11 (an index on ``profile.email``, the
  ledger's name index on every event, JSON written with spaces);
- ``v10``: the schema and JSON of this version (no ``profile.email`` index, a
  name index for the names other than "Channel Unsubscribed", compact JSON);
- ``v10-norowid``: v10 with ``group_state`` a WITHOUT ROWID table (one b-tree
  fewer per state; not taken: rebuilding the table took 49 s at 5M states);
- ``v10-deferred``: v10 with the plain indexes dropped before the writes and
  built after them in the same transaction, as the seed does;
- ``v10-cache256``: v10 with a 256 MB page cache (and temp_store MEMORY)
  instead of the import's 64 MB.
"""

import argparse
import csv
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_import import fresh_copy, load, make_groups, write_files  # noqa: E402

from app.core.models import json_text  # noqa: E402
from app.core.store import open_store  # noqa: E402

NOW = "2026-01-01 00:00:00.000000"
NAME = "Channel Unsubscribed"
PLAIN = {
    "ix_profile_email": "profile (email)",
    "ix_profile_email_key": "profile (email_key)",
    "ix_group_state_group_state_profile": "group_state (group_id, state, profile_id)",
    "ix_ledger_event_name": "ledger_event (name)",
    "ix_ledger_event_other_names": f"ledger_event (name) WHERE name <> '{NAME}'",
    "ix_ledger_event_profile": "ledger_event (profile_id, id)",
}
STATES_WITHOUT_ROWID = (
    "CREATE TABLE group_state (profile_id INTEGER NOT NULL, group_id INTEGER NOT NULL, "
    "state VARCHAR(16) NOT NULL, updated_at DATETIME NOT NULL, "
    "PRIMARY KEY (profile_id, group_id), FOREIGN KEY(profile_id) REFERENCES profile (id), "
    "FOREIGN KEY(group_id) REFERENCES subscription_group (id)) WITHOUT ROWID"
)


def as_v9(con: sqlite3.Connection) -> None:
    con.execute("CREATE INDEX IF NOT EXISTS ix_profile_email ON profile (email)")
    con.execute("DROP INDEX IF EXISTS ix_ledger_event_other_names")
    con.execute("CREATE INDEX IF NOT EXISTS ix_ledger_event_name ON ledger_event (name)")


def without_rowid(con: sqlite3.Connection) -> None:
    con.execute("DROP TABLE group_state")
    con.execute(STATES_WITHOUT_ROWID)
    name = "ix_group_state_group_state_profile"
    con.execute(f"CREATE INDEX {name} ON {PLAIN[name]}")


VARIANTS: dict[str, dict[str, Any]] = {
    "v9": {"schema": as_v9, "json": json.dumps},
    "v10": {},
    "v10-norowid": {"schema": without_rowid},
    "v10-deferred": {"deferred": True},
    "v10-cache256": {"cache_kib": 256 * 1024, "temp_memory": True},
}


def write(db: Path, path: Path, variant: dict[str, Any]) -> tuple[float, float, dict[str, float]]:
    """first.csv's rows written by bare sqlite3: wall, CPU and wall per part."""
    to_json: Callable[[Any], str] = variant.get("json", json_text)
    started, cpu = time.perf_counter(), time.process_time()
    con = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON"):
        con.execute(f"PRAGMA {pragma}")
    con.execute(f"PRAGMA cache_size = -{variant.get('cache_kib', 64 * 1024)}")
    if variant.get("temp_memory"):
        con.execute("PRAGMA temp_store = MEMORY")
    ids_of = {name: gid for gid, name in con.execute("SELECT id, name FROM subscription_group")}
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        header = next(reader)
        rows = list(reader)
    group_ids = [ids_of[column[len("group:") :]] for column in header[6:]]
    parts: dict[str, float] = {}
    mark = time.perf_counter()

    def part(name: str) -> None:
        nonlocal mark
        parts[name] = time.perf_counter() - mark
        mark = time.perf_counter()

    con.execute("BEGIN IMMEDIATE")
    held: list[str] = []
    if variant.get("deferred"):
        present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        for name in PLAIN:
            if name in present:
                con.execute(f"DROP INDEX {name}")
                held.append(name)
    con.executemany(
        "INSERT INTO profile (identity, email, email_key, name, properties, all_email, "
        "created_at) VALUES (?, ?, ?, ?, ?, 'subscribed', ?)",
        [
            (r[0], r[1], r[1].lower(), r[2], to_json({"country": r[3], "plan": r[4]}), NOW)
            for r in rows
        ],
    )
    part("profiles")
    ids = dict(con.execute("SELECT identity, id FROM profile"))
    texts: dict[tuple[int | None, str], str] = {}

    def properties(gid: int | None, new: str) -> str:
        found = texts.get((gid, new))
        if found is None:
            found = texts[(gid, new)] = to_json(
                {
                    "Channel": "Email",
                    "Group": None if gid is None else f"Group {gid}",
                    "Group ID": gid,
                    "Subscription Type": "Channel" if gid is None else "Group",
                    "Resubscribed": new == "subscribed",
                    "Old State": None,
                    "New State": new,
                    "Source": "import",
                    "Campaign ID": None,
                    "Actor": "bench",
                    "Reason": None,
                }  # fmt: skip
            )
        return found

    states, events, channel = [], [], []
    for r in rows:
        pid = ids[r[0]]
        if r[5]:
            channel.append((pid,))
            events.append((NOW, NAME, r[0], pid, None, "import", "bench", properties(None, r[5])))
        for gid, cell in zip(group_ids, r[6:], strict=True):
            if cell:
                states.append((pid, gid, cell, NOW))
                events.append((NOW, NAME, r[0], pid, gid, "import", "bench", properties(gid, cell)))
    con.executemany("UPDATE profile SET all_email = 'unsubscribed' WHERE id = ?", channel)
    part("python")
    con.executemany(
        "INSERT INTO group_state (profile_id, group_id, state, updated_at) VALUES (?, ?, ?, ?)",
        states,
    )
    part("states")
    con.executemany(
        "INSERT INTO ledger_event (ts, name, identity, profile_id, group_id, source, actor, "
        "properties) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        events,
    )
    part("events")
    for name in held:
        con.execute(f"CREATE INDEX {name} ON {PLAIN[name]}")
    part("build")
    con.execute("COMMIT")
    part("commit")
    con.close()
    return time.perf_counter() - started, time.process_time() - cpu, parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--folder", help="where the file and stores go (default: a temp folder)")
    args = parser.parse_args()
    names = args.variants.split(",")
    folder = Path(tempfile.mkdtemp(prefix="subgroups-bench-writes-", dir=args.folder))
    try:
        template = folder / "groups.db"
        store = open_store(str(template))
        try:
            all_groups = make_groups(store, 50)
        finally:
            store.dispose()
        first, _ = write_files(folder, rows=args.rows, columns=all_groups[::10][:5], fill=0.35)
        cpus: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}, load average before: {load()}")
            for name in names if round_ % 2 == 0 else names[::-1]:
                variant = VARIANTS[name]
                db = fresh_copy(template, folder / "variant.db")
                con = sqlite3.connect(db)
                if "schema" in variant:
                    variant["schema"](con)
                con.commit()
                con.close()
                wall, cpu, parts = write(db, first, variant)
                cpus[name].append(cpu)
                shown = " ".join(f"{k} {v:.2f}" for k, v in parts.items() if v >= 0.005)
                print(
                    f"  {name:<14} wall {wall:6.2f} s  cpu {cpu:5.2f} s "
                    f"{args.rows / cpu:>8,.0f} rows/s  | {shown}  "
                    f"{db.stat().st_size / 1e6:.0f} MB"
                )
        print(f"load average after: {load()}")
        for name, values in cpus.items():
            ordered = sorted(values)
            median = ordered[len(ordered) // 2]
            print(f"  {name:<14} median cpu {median:5.2f} s ({args.rows / median:,.0f} rows/s)")
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
