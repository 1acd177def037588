"""Schema versions and in-place upgrades.

A new store gets the current schema from the models at once and is stamped
with the latest version (the same "create_all, then stamp head" Alembic
recommends for fresh databases). An older store runs each numbered step after
its version, in order, in one transaction that holds the write lock, so two
processes opening the same old store at once upgrade it exactly once.

Rule for a step: it may create a table from its model only while that model
is unchanged since the step was written; any later change to that table gets
its own step with explicit DDL.
"""

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Connection, Engine, inspect, text
from sqlmodel import SQLModel

from app.core import (
    clock,
    deferred_indexes,
    ledger_chain,
    ledger_days,
    ledger_partitions,
    ledger_verify,
    models,
)
from app.core.errors import StoreUnavailable
from app.core.schema_version import LATEST_VERSION

# schema_meta keys: the store's own random id (links and the default outbox are
# bound to it), and the last day links signed before that binding may carry.
STORE_ID_KEY = "store_id"
LEGACY_LINKS_KEY = "unbound_links_until"

# The one change the guard lets through: erasing a person (``erasure``) turns an
# event's identity into ``erased:<digest>`` and its personal properties into
# digests; every other column, the hashes included, stays as it was. ``events
# verify`` checks that the content still matches its hash.
_ERASURE_ONLY = (
    "OLD.profile_id IS NOT NULL AND substr(NEW.identity, 1, 7) = 'erased:' AND NEW.id = OLD.id "
    "AND NEW.ts IS OLD.ts AND NEW.name IS OLD.name AND NEW.profile_id IS OLD.profile_id "
    "AND NEW.group_id IS OLD.group_id AND NEW.campaign_id IS OLD.campaign_id "
    "AND NEW.source IS OLD.source AND NEW.actor IS OLD.actor "
    "AND NEW.content_hash IS OLD.content_hash AND NEW.chain_hash IS OLD.chain_hash"
)
LEDGER_GUARD_SQLITE = (
    "CREATE TRIGGER IF NOT EXISTS ledger_event_no_update BEFORE UPDATE ON ledger_event "
    f"WHEN NOT ({_ERASURE_ONLY}) "
    "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS ledger_event_no_delete BEFORE DELETE ON ledger_event "
    "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
)
LEDGER_GUARD_POSTGRES = (
    "CREATE OR REPLACE FUNCTION subgroups_ledger_append_only() RETURNS trigger AS $$ "
    "BEGIN IF TG_OP = 'UPDATE' AND "
    + _ERASURE_ONLY.replace(" IS OLD.", " IS NOT DISTINCT FROM OLD.")
    + " THEN RETURN NEW; END IF; "
    "RAISE EXCEPTION 'the ledger is append-only'; END; $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS ledger_event_append_only ON ledger_event",
    "CREATE TRIGGER ledger_event_append_only BEFORE UPDATE OR DELETE ON ledger_event "
    "FOR EACH ROW EXECUTE FUNCTION subgroups_ledger_append_only()",
)


def _guard_ledger(conn: Connection) -> None:
    """Make the database itself refuse to change or delete ledger events."""
    statements = LEDGER_GUARD_POSTGRES if conn.dialect.name == "postgresql" else LEDGER_GUARD_SQLITE
    for statement in statements:
        conn.exec_driver_sql(statement)


def _v2_tables_for_later_sections(conn: Connection) -> None:
    """Version 2: segments, campaigns, deliveries and the landing page settings."""
    for model in models.TABLES_V2:
        # SQLModel sets __table__ on each table class; its types do not declare it.
        model.__table__.create(conn, checkfirst=True)  # type: ignore[union-attr]


def _v3_wider_name_keys(conn: Connection) -> None:
    """Version 3: case-folded name keys may be longer than the names ("ß" → "ss").

    SQLite does not enforce VARCHAR lengths, so only PostgreSQL has work to do.
    """
    if conn.dialect.name != "postgresql":
        return
    for table, width in (("subscription_group", 256), ("segment", 256), ("campaign", 512)):
        conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN name_key TYPE VARCHAR({width})")


def _v4_covering_group_state_index(conn: Connection) -> None:
    """Version 4: (group, state) → profile ids answered from the index alone.

    Building the segment index on 1M profiles read each of 5M states through
    the old (group_id, state) index: 21-26 s; with this one about half.
    """
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_group_state_group_state_profile "
        "ON group_state (group_id, state, profile_id)"
    )
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_group_state_group_state")


def _v5_address_keys_and_send_leases(conn: Connection) -> None:
    """Version 5: one address is one recipient; a send remembers where it delivers.

    - ``profile.email_key`` (indexed): the address stripped and lower-cased. SQL's
      ``lower(trim())`` fills it; rows where Python's ``email_key`` says otherwise
      (non-ASCII letters, whitespace other than spaces) are then corrected one by one,
      so every key is what the write paths compute.
    - ``campaign.destination``, ``lease_holder``, ``lease_beat_at``: where the send
      delivers, and who is sending it now (host:pid) with its last heartbeat.
    - ``delivery.address_key``, unique per campaign: an address is claimed once.
      Rows from earlier sends get their profile's key; where such a send already
      mailed one address twice, only the first row keeps it.
    """
    timestamp = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    # Step 2 makes campaign and delivery from today's models: they may have these already.
    for table, column, kind in (
        ("profile", "email_key", "VARCHAR(320)"),
        ("campaign", "destination", "VARCHAR(1100)"),
        ("campaign", "lease_holder", "VARCHAR(300)"),
        ("campaign", "lease_beat_at", timestamp),
        ("delivery", "address_key", "VARCHAR(320)"),
    ):
        if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    conn.exec_driver_sql(
        "UPDATE profile SET email_key = NULLIF(lower(trim(email)), '') WHERE email IS NOT NULL"
    )
    fixes = [
        {"k": models.email_key(email), "i": pid}
        for pid, email, key in conn.execute(
            text("SELECT id, email, email_key FROM profile WHERE email IS NOT NULL")
        )
        if models.email_key(email) != key
    ]
    if fixes:
        conn.execute(text("UPDATE profile SET email_key = :k WHERE id = :i"), fixes)
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_profile_email_key ON profile (email_key)")
    _v5_destinations_of_unfinished_sends(conn)
    conn.exec_driver_sql(
        "UPDATE delivery SET address_key = "
        "(SELECT p.email_key FROM profile p WHERE p.id = delivery.profile_id)"
    )
    conn.exec_driver_sql(
        "UPDATE delivery SET address_key = NULL WHERE address_key IS NOT NULL AND id NOT IN "
        "(SELECT min(id) FROM delivery WHERE address_key IS NOT NULL "
        "GROUP BY campaign_id, address_key)"
    )
    conn.exec_driver_sql(
        "CREATE UNIQUE INDEX IF NOT EXISTS ux_delivery_campaign_address "
        "ON delivery (campaign_id, address_key)"
    )


def _v5_destinations_of_unfinished_sends(conn: Connection) -> None:
    """A send left paused or sending keeps the outbox its first run named in the ledger
    ("Outbox": a folder, or "SMTP server host:port"), so its resume goes there too. A
    relative folder (from an unknown working directory) is left unknown."""
    rows = conn.execute(
        text(
            "SELECT c.id, e.properties FROM campaign c JOIN ledger_event e "
            "ON e.campaign_id = c.id AND e.name = 'Campaign Send Started' "
            "WHERE c.status IN ('sending', 'paused') AND c.destination IS NULL ORDER BY e.id"
        )
    ).all()
    found: dict[int, str] = {}
    for campaign_id, properties in rows:
        if campaign_id in found:
            continue  # the first run's outbox
        values = json.loads(properties) if isinstance(properties, str) else properties or {}
        outbox = str(values.get("Outbox") or "")
        if outbox.startswith("SMTP server "):
            found[campaign_id] = "smtp:" + outbox.removeprefix("SMTP server ").lower()
        elif outbox and Path(outbox).is_absolute():
            found[campaign_id] = f"maildir:{Path(outbox).resolve()}"
    for campaign_id, destination in found.items():
        conn.execute(
            text("UPDATE campaign SET destination = :d WHERE id = :i"),
            {"d": destination, "i": campaign_id},
        )


def _set_meta(conn: Connection, key: str, value: str) -> None:
    """Add a schema_meta fact unless the store has it already (never replaced)."""
    found = conn.execute(text("SELECT 1 FROM schema_meta WHERE key = :k"), {"k": key}).scalar()
    if found is None:
        conn.execute(
            text("INSERT INTO schema_meta (key, value) VALUES (:k, :v)"), {"k": key, "v": value}
        )


def _give_store_id(conn: Connection) -> None:
    """The store's own random id: links and the default outbox are bound to it."""
    _set_meta(conn, STORE_ID_KEY, uuid.uuid4().hex)


def _v6_store_id(conn: Connection) -> None:
    """Version 6: the store gets its own id, and links are bound to it (issue 8).

    Links this store signed before (version 1 tokens, bound to no store) may
    be in inboxes: they keep working for their validity if issued on or before
    today. A store made after this step accepts no unbound link.
    """
    _give_store_id(conn)
    _set_meta(conn, LEGACY_LINKS_KEY, clock.now().date().isoformat())


def _v7_ledger_by_person(conn: Connection) -> None:
    """Version 7: a person's events are found by person, newest first (issue 10).

    The profile view read a person's history through the event-name index,
    which nearly every event shares (2.1 s for 15 rows at 5M events). The
    ledger gets (profile_id, id) in place of (profile_id, group_id, id), and
    loses the index on group_id alone, which no query needs and a planner may
    walk for a whole group. The name index stays: ``events --name`` and the
    log's filter use it.
    """
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_ledger_event_profile ON ledger_event (profile_id, id)"
    )
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_ledger_event_profile_group")
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_ledger_event_group_id")


def _v8_campaign_attribution(conn: Connection) -> None:
    """Version 8: a campaign's unsubscribes are found by campaign (issue 10).

    The campaign table counts the opt-outs each campaign caused; it reached
    them through the event-name index, which nearly every event shares. A
    partial index holds only the events that name a campaign.
    """
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_ledger_event_campaign ON ledger_event (campaign_id) "
        "WHERE campaign_id IS NOT NULL"
    )


def _v9_index_snapshots(conn: Connection) -> None:
    """Version 9: the segment index's snapshots, so a process starts warm (issue 10)."""
    models.IndexSnapshot.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


def _v10_admins(conn: Connection) -> None:
    """Version 10: the admins who may use the console over SSH, with their roles (issue 11)."""
    models.Admin.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


def _v11_fewer_index_entries_per_import_row(conn: Connection) -> None:
    """Version 11: indexes an imported row no longer pays for (issue 10).

    Profiles lose the index on the address as written: no query looks a
    profile up by ``email`` (addresses are compared by ``email_key``, its own
    index; search reads ``email`` with LIKE '%...%', which no index serves).
    The ledger's name index keeps only the names other than "Channel
    Unsubscribed", which nearly every event has: a query by that name finds
    them newest first through the ledger itself. Each imported profile and
    state change wrote an entry to each (20 MB per 200k rows). Building the
    new name index reads the ledger once (about 10 s at 5M events).
    """
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_profile_email")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_ledger_event_other_names ON ledger_event (name) "
        f"WHERE {models.OTHER_NAMES}"
    )
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_ledger_event_name")


def _v12_ledger_hash_chain(conn: Connection) -> None:
    """Version 12: each event carries the SHA-256 of its content and of its link, and
    erased people's addresses are kept as keyed hashes (issue 12).

    ``ledger_event`` gains ``content_hash`` and ``chain_hash`` (``ledger_chain``),
    computed here for every event already written, in id order, and
    ``ledger_chain_head`` keeps the newest link. The
    append-only guard is lifted for this one UPDATE and put back at once, in
    the same transaction.
    """
    binary = "BYTEA" if conn.dialect.name == "postgresql" else "BLOB"
    columns = {c["name"] for c in inspect(conn).get_columns("ledger_event")}
    for column in ("content_hash", "chain_hash"):
        if column not in columns:
            conn.exec_driver_sql(f"ALTER TABLE ledger_event ADD COLUMN {column} {binary}")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS ledger_event_append_only ON ledger_event")
    else:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS ledger_event_no_update")
    models.LedgerChainHead.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]
    conn.exec_driver_sql("DELETE FROM ledger_chain_head")
    ledger_chain.start_head(conn, ledger_verify.backfill(conn))
    _guard_ledger(conn)  # with the one change erasure may make
    models.AddressSuppression.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


def _v13_store_settings(conn: Connection) -> None:
    """Version 13: store-wide settings (inbound domain, DKIM), one row per key (issue 12)."""
    models.StoreSetting.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


def _v14_deliverability(conn: Connection) -> None:
    """Version 14: what bounces said of each address (issue 12, inbound mail)."""
    models.Deliverability.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


def _v15_ledger_days(conn: Connection) -> None:
    """Version 15: the ledger's daily counts of subscription changes (issue 12, insights).

    A table with one row per day, group, source, campaign and new state, kept
    by a trigger in each event's own transaction (``ledger_days``); the events
    already written are counted here, in one pass over the ledger (about 10 s
    at 5M events).
    """
    models.LedgerDay.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]
    ledger_days.backfill(conn)
    ledger_days.install(conn)


def _v16_shared_sends(conn: Connection) -> None:
    """Version 16: several sender processes share one send on PostgreSQL (issue 13):
    the senders taking part with their heartbeats, and the batches they claim
    (``send_batches``)."""
    models.SendSender.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]
    models.SendBatch.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


def _v17_partitioned_ledger(conn: Connection) -> None:
    """Version 17: on PostgreSQL the ledger is partitioned by month (issue 13).

    ``ledger_partitions.partition_ledger`` makes the partitioned table, copies
    every event into its month (ids, content and hashes unchanged), swaps the
    names, makes the indexes again and keeps the id sequence; the append-only
    guard and the daily-count trigger, which went with the old table, are
    made again on the new one (PostgreSQL clones the row trigger onto each
    partition). About 10 s per million events here. On SQLite: nothing.
    """
    if conn.dialect.name != "postgresql":
        return
    ledger_partitions.partition_ledger(conn)
    _guard_ledger(conn)
    ledger_days.install(conn)


def analyze(conn: Connection) -> None:
    """Give the planner fresh statistics (after an upgrade, a seed).

    Without them SQLite guesses that every index is selective and may walk
    one that most rows share. On SQLite each index is sampled (analysis_limit),
    so this stays quick at millions of rows. On PostgreSQL a bare ANALYZE would
    read every table of the database, other stores' schemas included (taking
    their locks, and deadlocking against their own ANALYZE): only this store's
    tables, those of the schema its search_path names first, are analyzed.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA analysis_limit = 1000")
        conn.exec_driver_sql("ANALYZE")
        return
    tables = conn.exec_driver_sql(
        "SELECT quote_ident(table_name) FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
        "ORDER BY table_name"
    ).scalars()
    names = ", ".join(tables)
    if names:
        conn.exec_driver_sql(f"ANALYZE {names}")


# version -> the step that brings a store from version-1 to version.
STEPS: dict[int, Callable[[Connection], None]] = {
    2: _v2_tables_for_later_sections,
    3: _v3_wider_name_keys,
    4: _v4_covering_group_state_index,
    5: _v5_address_keys_and_send_leases,
    6: _v6_store_id,
    7: _v7_ledger_by_person,
    8: _v8_campaign_attribution,
    9: _v9_index_snapshots,
    10: _v10_admins,
    11: _v11_fewer_index_entries_per_import_row,
    12: _v12_ledger_hash_chain,
    13: _v13_store_settings,
    # 12 is another branch's step (issue 12); the merge fills it in.
    14: _v14_deliverability,
    15: _v15_ledger_days,
    16: _v16_shared_sends,
    17: _v17_partitioned_ledger,
}
if max(STEPS) != LATEST_VERSION:  # pragma: no cover - caught by any test that imports this
    raise RuntimeError(
        f"migrations end at version {max(STEPS)} but schema_version says {LATEST_VERSION}"
    )


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # Serialise upgrades between processes; SQLite's IMMEDIATE begin does it there.
        conn.execute(text("SELECT pg_advisory_xact_lock(727001)"))


def schema_version(conn: Connection, *, name: str = "the store") -> int | None:
    """The stored schema version, or None when the store has no schema yet.

    A version that is not a whole number is refused (``StoreUnavailable``)
    rather than guessed at.
    """
    if not inspect(conn).has_table("schema_meta"):
        return None
    value = conn.execute(
        text("SELECT value FROM schema_meta WHERE key = 'schema_version'")
    ).scalar()
    if value is None:
        return None
    text_value = str(value).strip()
    if not text_value.isascii() or not text_value.isdigit():
        raise StoreUnavailable(
            f"{name} has a schema version that is not a number ({str(value)[:40]!r}); "
            "it is not a store this subgroups can open"
        )
    return int(text_value)


def _stamp(conn: Connection, version: int) -> None:
    updated = conn.execute(
        text("UPDATE schema_meta SET value = :v WHERE key = 'schema_version'"), {"v": str(version)}
    ).rowcount
    if not updated:
        conn.execute(
            text("INSERT INTO schema_meta (key, value) VALUES ('schema_version', :v)"),
            {"v": str(version)},
        )


class Upgraded(NamedTuple):
    """What ``upgrade`` did: the schema version the store is now at, and whether it made it."""

    version: int
    created: bool


def upgrade(engine: Engine, *, name: str, create: bool = True) -> Upgraded:
    """Create or upgrade the schema of the database behind ``engine``.

    ``name`` is the store as a user would name it (a path, or a URL without
    its password), for messages. A new store (no schema yet) is made only
    with ``create``; the answer's ``created`` then says so. Without it, "no
    store at ..." and nothing is made.
    """
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    with engine.begin() as conn:
        _lock(conn)
        version = schema_version(conn, name=f"--db {name}")
        if version is None:
            existing = set(inspect(conn).get_table_names())
            if existing:
                raise StoreUnavailable(
                    f"--db {name} is a database but not a subgroups store "
                    f"(it has tables such as {sorted(existing)[0]!r}); give a new path"
                )
            if not create:
                raise StoreUnavailable(f"no store at {name}")
            SQLModel.metadata.create_all(conn)
            ledger_partitions.partition_ledger(conn)  # PostgreSQL: by month (step 17)
            ledger_chain.start_head(conn)
            _guard_ledger(conn)
            ledger_days.install(conn)
            _give_store_id(conn)
            _stamp(conn, LATEST_VERSION)
            return Upgraded(version=LATEST_VERSION, created=True)
        if version > LATEST_VERSION:
            raise StoreUnavailable(
                f"--db {name} has schema version {version}, newer than this "
                f"subgroups understands ({LATEST_VERSION}); upgrade subgroups"
            )
        # Steps in order; a number no step has (taken by work merged elsewhere) is skipped.
        for step_version in sorted(v for v in STEPS if v > version):
            STEPS[step_version](conn)
            _stamp(conn, step_version)
        # A seed stopped half-way left its indexes unbuilt: built now (refused while it runs).
        rebuilt = deferred_indexes.restore(conn, name=name)
        # PostgreSQL: the coming months' partitions, and the default partition emptied.
        ledger_partitions.maintain(conn)
        if version < LATEST_VERSION or rebuilt:
            analyze(conn)
        return Upgraded(version=LATEST_VERSION, created=False)
