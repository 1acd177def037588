"""The ledger partitioned by month on PostgreSQL (schema 17, issue 13).

A busy store writes millions of events a month; one table holding years of
them makes each index deeper and each maintenance pass (VACUUM, a rebuilt
index, an archive of old months) a pass over everything. On PostgreSQL
``ledger_event`` is a declaratively partitioned table, ``PARTITION BY RANGE
(ts)``: one partition per UTC month (``ledger_event_2026_11``) and a DEFAULT
partition (``ledger_event_default``) for events whose month has none yet.

- **Months made ahead.** Each time a store is opened (``migrations.upgrade``)
  ``maintain`` makes the partitions from last month to ``MONTHS_AHEAD``
  months ahead that are missing. Opening a store whose partitions are all
  there reads the catalog only.
- **History written at once.** A writer of many past events (the synthetic
  seed) makes their months first (``make_months``).
- **The default partition is emptied.** An event whose month had no
  partition (a clock far off, a store left unopened for months) lands in the
  default partition; the next open moves it into its own month's partition,
  unchanged (same id, same hashes), so the chain still verifies and the daily
  counts (``ledger_days``) are not counted twice (rows are moved straight
  into the partition, which the parent's statement trigger does not see).
- **One at a time.** The work runs under a transaction-level advisory lock,
  so two processes opening the store at once make each month once.
- **Keys.** A partitioned table's unique keys must include the partition key:
  the primary key is ``(id, ts)``. Ids still come from the one sequence, in
  the order the chain's head lock gives them (``ledger_chain.lock_tail``), so
  the id stays the ledger's cursor everywhere.
- **Append-only everywhere.** The row trigger that refuses UPDATE and DELETE
  (``migrations.LEDGER_GUARD_POSTGRES``) is made on the parent; PostgreSQL
  clones it onto every partition, the ones made later included.

SQLite keeps one table: nothing here runs there.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import Connection, text

from app.core import clock, models

PARENT = "ledger_event"
DEFAULT = "ledger_event_default"
MONTHS_BEHIND = 1
MONTHS_AHEAD = 3
# pg_advisory_xact_lock key of partition upkeep (the upgrade lock is 727001).
LOCK_KEY = 727017
APPEND_ONLY_TRIGGER = "ledger_event_append_only"


@dataclass
class Upkeep:
    """What ``maintain`` did: the partitions it made, and the events it moved into them."""

    made: list[str] = field(default_factory=list)
    moved: int = 0


def month_start(day: date) -> date:
    return date(day.year, day.month, 1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    """``ledger_event_YYYY_MM``: the partition of the events of that UTC month."""
    return f"{PARENT}_{month.year:04d}_{month.month:02d}"


def wanted_months(today: date) -> list[date]:
    """The months a store keeps ready: last month to ``MONTHS_AHEAD`` months ahead."""
    first = add_months(month_start(today), -MONTHS_BEHIND)
    return [add_months(first, n) for n in range(MONTHS_BEHIND + MONTHS_AHEAD + 1)]


def _bound(month: date) -> str:
    # A literal with its zone: the same instant whatever the session's TimeZone.
    return f"'{month.isoformat()} 00:00:00+00'"


def is_partitioned(conn: Connection) -> bool:
    """True when this PostgreSQL store's ledger is a partitioned table."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": PARENT}
    ).scalar()
    return kind == "p"


def partitions(conn: Connection) -> list[str]:
    """The names of the ledger's partitions (the default one included), sorted."""
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t) ORDER BY c.relname"
        ),
        {"t": PARENT},
    )
    return [str(name) for name in rows.scalars()]


def _months_in_default(conn: Connection) -> list[date]:
    rows = conn.exec_driver_sql(
        f"SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC') FROM {DEFAULT} ORDER BY 1"
    ).scalars()
    return [month_start(value.date()) for value in rows]


def _default_has_rows(conn: Connection) -> bool:
    return conn.exec_driver_sql(f"SELECT 1 FROM {DEFAULT} LIMIT 1").first() is not None


def _today() -> date:
    return clock.now().astimezone(UTC).date()


def maintain(conn: Connection, *, today: date | None = None, also: Iterable[date] = ()) -> Upkeep:
    """Make the missing months of the window (and ``also`` these) and empty the default
    partition.

    Idempotent; cheap when there is nothing to do (a catalog read and a
    one-row probe of the default partition). Does nothing on SQLite or on a
    store whose ledger is not partitioned (yet).
    """
    done = Upkeep()
    if not is_partitioned(conn):
        return done
    window = [*wanted_months(today or _today()), *(month_start(m) for m in also)]
    ready = {partition_name(month) for month in window} <= set(partitions(conn))
    if ready and not _default_has_rows(conn):
        return done
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    existing = set(partitions(conn))  # again: another process may have made them meanwhile
    stranded = _months_in_default(conn)
    if not set(map(partition_name, set(window) | set(stranded))) - existing:
        return done
    # The parent first, as a new partition needs it anyway: then a writer that holds the
    # parent and routes a row to the default partition is waited for, never deadlocked with.
    conn.exec_driver_sql(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
    for month in sorted(set(window) | set(stranded)):
        name = partition_name(month)
        if name in existing:
            continue
        if month in stranded:
            done.moved += _make_moving_default_rows(conn, month)
        else:
            _make(conn, month)
        done.made.append(name)
    return done


def make_months(conn: Connection, first: datetime, last: datetime) -> Upkeep:
    """Make the partitions of the UTC months from ``first`` to ``last`` that are missing.

    A writer about to write history (the synthetic seed's 150 days) calls it
    first, so its events go straight into their months rather than waiting
    in the default partition for the next open to move them.
    """
    month, end = month_start(first.astimezone(UTC).date()), month_start(last.astimezone(UTC).date())
    months = []
    while month <= end:
        months.append(month)
        month = add_months(month, 1)
    return maintain(conn, also=months)


def _make(conn: Connection, month: date) -> None:
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {partition_name(month)} PARTITION OF {PARENT} "
        f"FOR VALUES FROM ({_bound(month)}) TO ({_bound(add_months(month, 1))})"
    )


def _make_moving_default_rows(conn: Connection, month: date) -> int:
    """Make the month's partition, moving its events out of the default partition.

    PostgreSQL refuses a new partition while the default one holds rows that
    belong to it: they are set aside, deleted from the default partition (its
    append-only trigger disabled for that one statement, inside this
    transaction: no other session ever sees it off), and inserted unchanged
    into the new partition.
    """
    where = f"ts >= {_bound(month)} AND ts < {_bound(add_months(month, 1))}"
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE ledger_event_moving ON COMMIT DROP AS "
        f"SELECT * FROM {DEFAULT} WHERE {where}"
    )
    conn.exec_driver_sql(f"ALTER TABLE {DEFAULT} DISABLE TRIGGER {APPEND_ONLY_TRIGGER}")
    moved = conn.exec_driver_sql(f"DELETE FROM {DEFAULT} WHERE {where}").rowcount
    conn.exec_driver_sql(f"ALTER TABLE {DEFAULT} ENABLE TRIGGER {APPEND_ONLY_TRIGGER}")
    _make(conn, month)
    conn.exec_driver_sql(
        f"INSERT INTO {partition_name(month)} SELECT * FROM ledger_event_moving ORDER BY id"
    )
    conn.exec_driver_sql("DROP TABLE ledger_event_moving")
    return int(moved)


def partition_ledger(conn: Connection, *, today: date | None = None) -> bool:
    """Turn a PostgreSQL store's plain ``ledger_event`` into the partitioned one, in place.

    Every event is kept as it is (id, content, hashes); the id sequence is
    kept, so new events go on from the last id. The indexes are made again
    from the model; the append-only and daily-count triggers, which went with
    the old table, are the caller's to make again (``migrations``). False
    (nothing done) on SQLite or when the ledger is partitioned already.
    """
    if conn.dialect.name != "postgresql" or is_partitioned(conn):
        return False
    conn.exec_driver_sql(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
    sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": PARENT}).scalar()
    if sequence is not None:  # owned by the old table, it would go with it
        conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY NONE")
    conn.exec_driver_sql(
        f"CREATE TABLE {PARENT}_partitioned (LIKE {PARENT} INCLUDING DEFAULTS) "
        "PARTITION BY RANGE (ts)"
    )
    conn.exec_driver_sql(f"CREATE TABLE {DEFAULT} PARTITION OF {PARENT}_partitioned DEFAULT")
    held = conn.exec_driver_sql(
        f"SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC') FROM {PARENT}"
    ).scalars()
    months = {month_start(value.date()) for value in held}
    for month in sorted(months | set(wanted_months(today or _today()))):
        conn.exec_driver_sql(
            f"CREATE TABLE {partition_name(month)} PARTITION OF {PARENT}_partitioned "
            f"FOR VALUES FROM ({_bound(month)}) TO ({_bound(add_months(month, 1))})"
        )
    # One pass over the old table; PostgreSQL routes each row to its month. The
    # keys and indexes are built afterwards, one sorted build per partition.
    conn.exec_driver_sql(f"INSERT INTO {PARENT}_partitioned SELECT * FROM {PARENT} ORDER BY id")
    conn.exec_driver_sql(f"DROP TABLE {PARENT}")
    conn.exec_driver_sql(f"ALTER TABLE {PARENT}_partitioned RENAME TO {PARENT}")
    conn.exec_driver_sql(f"ALTER TABLE {PARENT} ADD CONSTRAINT {PARENT}_pkey PRIMARY KEY (id, ts)")
    for index in models.Event.__table__.indexes:  # type: ignore[attr-defined]
        index.create(conn)
    if sequence is not None:
        conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY {PARENT}.id")
    return True


def where_is(conn: Connection, event_id: int) -> str | None:
    """The partition holding the event with this id (None: no such event, or not partitioned)."""
    if not is_partitioned(conn):
        return None
    found = conn.execute(
        text(f"SELECT tableoid::regclass::text FROM {PARENT} WHERE id = :i"), {"i": event_id}
    ).scalar()
    return None if found is None else str(found)


def partition_of(ts: datetime) -> str:
    """The name of the monthly partition an event written at ``ts`` belongs in."""
    return partition_name(month_start(ts.astimezone(UTC).date()))
