"""The ledger's daily counts of subscription changes (``models.LedgerDay``), kept by
the database itself.

Insights over months of a busy ledger cannot read millions of events in a
second; they read one row per day, group, source, campaign and new state. A
trigger on ``ledger_event`` adds each "Channel Unsubscribed" event to its row
in the event's own transaction: every write path counts (the services, the
bulk import and seed, the landing server's batched writer), a rolled-back
change is never counted, and the counts match the ledger exactly.

A day is the event's UTC date. On SQLite the timestamp is stored as
``YYYY-MM-DD HH:MM:SS...`` in UTC, so its first ten characters are the day.
"""

from sqlalchemy import Connection

from app.core.event_names import CHANNEL_UNSUBSCRIBED

_ROW = "(day, group_id, source, campaign_id, state, events)"
_KEY = "(day, group_id, source, campaign_id, state)"

SQLITE_TRIGGER = (
    "CREATE TRIGGER IF NOT EXISTS ledger_event_counts_day AFTER INSERT ON ledger_event "
    f"WHEN NEW.name = '{CHANNEL_UNSUBSCRIBED}' BEGIN "
    f"INSERT INTO ledger_day {_ROW} VALUES (substr(NEW.ts, 1, 10), "
    "coalesce(NEW.group_id, 0), NEW.source, coalesce(NEW.campaign_id, 0), "
    """coalesce(json_extract(NEW.properties, '$."New State"'), ''), 1) """
    f"ON CONFLICT {_KEY} DO UPDATE SET events = events + 1; END"
)

# PostgreSQL: once per statement, over the rows it inserted (a transition table), so
# a COPY or a many-row insert adds each (day, group, source, campaign, state) once,
# in key order (concurrent writers then take the rows' locks in one order).
POSTGRES_TRIGGER = (
    "CREATE OR REPLACE FUNCTION subgroups_ledger_day() RETURNS trigger AS $$ BEGIN "
    f"INSERT INTO ledger_day {_ROW} "
    "SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD'), coalesce(group_id, 0), source, "
    "coalesce(campaign_id, 0), coalesce(properties::json ->> 'New State', ''), count(*) "
    f"FROM new_events WHERE name = '{CHANNEL_UNSUBSCRIBED}' "
    "GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5 "
    f"ON CONFLICT {_KEY} DO UPDATE SET events = ledger_day.events + EXCLUDED.events; "
    "RETURN NULL; END; $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS ledger_event_counts_day ON ledger_event",
    "CREATE TRIGGER ledger_event_counts_day AFTER INSERT ON ledger_event "
    "REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT "
    "EXECUTE FUNCTION subgroups_ledger_day()",
)

_BACKFILL = {
    "sqlite": (
        f"INSERT INTO ledger_day {_ROW} SELECT substr(ts, 1, 10), coalesce(group_id, 0), "
        "source, coalesce(campaign_id, 0), "
        """coalesce(json_extract(properties, '$."New State"'), ''), count(*) """
        f"FROM ledger_event WHERE name = '{CHANNEL_UNSUBSCRIBED}' GROUP BY 1, 2, 3, 4, 5"
    ),
    "postgresql": (
        f"INSERT INTO ledger_day {_ROW} SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD'), "
        "coalesce(group_id, 0), source, coalesce(campaign_id, 0), "
        "coalesce(properties::json ->> 'New State', ''), count(*) "
        f"FROM ledger_event WHERE name = '{CHANNEL_UNSUBSCRIBED}' GROUP BY 1, 2, 3, 4, 5"
    ),
}


def install(conn: Connection) -> None:
    """Create the trigger that keeps ``ledger_day`` (the table must exist)."""
    if conn.dialect.name == "postgresql":
        for statement in POSTGRES_TRIGGER:
            conn.exec_driver_sql(statement)
    else:
        conn.exec_driver_sql(SQLITE_TRIGGER)


def backfill(conn: Connection) -> None:
    """Count the events already in the ledger (an upgrade: one pass over it)."""
    conn.exec_driver_sql("DELETE FROM ledger_day")
    conn.exec_driver_sql(_BACKFILL["postgresql" if conn.dialect.name == "postgresql" else "sqlite"])
