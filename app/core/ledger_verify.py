"""Checking the ledger's hash chain (``subgroups events verify``), and filling it in.

The ledger is read in id order, a page at a time, straight from the
driver; each event's content hash is computed again from its row
(``ledger_chain``) and compared with the stored one, and its chain hash
with the hash of its predecessor's chain hash and its content hash. The
first event where either differs is named.

``backfill`` (the upgrade to schema version 12) computes both for a ledger
written before the chain existed.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from app.core import ledger_chain as chain

PAGE = 50_000
_SQLITE_TS_LENGTH = len("2026-01-01 00:00:00.000000")


@dataclass(frozen=True)
class BrokenLink:
    """The first event whose content or link does not match its hashes."""

    id: int
    ts: datetime
    name: str
    problem: str

    def describe(self) -> str:
        """One line naming the event (its id, UTC time and name) and what does not match."""
        when = self.ts.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"event {self.id} ({when}, {self.name!r}): {self.problem}"


@dataclass(frozen=True)
class ChainReport:
    """What ``verify`` found: how many events it checked, and the first broken one."""

    events: int
    broken: BrokenLink | None

    @property
    def intact(self) -> bool:
        return self.broken is None


def _select(connection: Connection) -> str:
    properties = "properties::text" if connection.dialect.name == "postgresql" else "properties"
    placeholder = "%s" if connection.dialect.paramstyle != "qmark" else "?"
    return (
        "SELECT id, ts, name, identity, profile_id, group_id, campaign_id, source, actor, "
        f"{properties}, content_hash, chain_hash FROM ledger_event "
        f"WHERE id > {placeholder} ORDER BY id LIMIT {PAGE}"
    )


def _pages(connection: Connection) -> Iterator[Sequence[Any]]:
    """The ledger's rows in id order, a page at a time, as the driver gives them."""
    sql = _select(connection)
    cursor = connection.connection.cursor()
    try:
        after = 0
        while True:
            cursor.execute(sql, (after,))
            rows = cursor.fetchall()
            if not rows:
                return
            yield rows
            after = rows[-1][0]
    finally:
        cursor.close()


def _ts_form_of_stored(value: Any) -> str:
    """``ts_form`` of a time as the driver hands it back (SQLite: its text)."""
    if isinstance(value, str):
        if len(value) == _SQLITE_TS_LENGTH and value[10] == " ":
            return value[:10] + "T" + value[11:] + "Z"
        return chain.ts_form(datetime.fromisoformat(value))
    return chain.ts_form(value)


class ContentHasher:
    """Content hashes of stored rows, with the forms of repeating values cached."""

    def __init__(self) -> None:
        self.ts = chain.FormCache(_ts_form_of_stored)
        self.texts = chain.FormCache(chain.text_form)
        self.properties = chain.FormCache(chain.properties_form_of_text)

    def __call__(self, row: Any) -> bytes:
        _, ts, name, identity, profile_id, group_id, campaign_id, source, actor, props = row[:10]
        texts = self.texts
        return chain.content_hash(
            ts=self.ts(ts),
            name=texts(name),
            identity=chain.identity_form(identity),
            profile_id=profile_id,
            group_id=group_id,
            campaign_id=campaign_id,
            source=texts(source),
            actor=texts(actor),
            properties=self.properties(props),
        )


def verify(connection: Connection, *, progress: Callable[[int], None] | None = None) -> ChainReport:
    """Check every event's content hash and link, in id order; stop at the first broken one."""
    hasher = ContentHasher()
    previous = chain.GENESIS
    checked = 0
    sha256 = chain._sha256
    for rows in _pages(connection):
        for row in rows:
            stored_content, stored_chain = row[10], row[11]
            if stored_content is None or stored_chain is None:
                return ChainReport(checked, _broken(row, "has no hash (not in the chain)"))
            content = hasher(row)
            if content != bytes(stored_content):
                return ChainReport(checked, _broken(row, "content does not match its content hash"))
            previous = sha256(previous + content).digest()
            if previous != bytes(stored_chain):
                problem = (
                    "its link does not match the event before it "
                    "(an event before it was removed, or a chain hash was changed)"
                )
                return ChainReport(checked, _broken(row, problem))
            checked += 1
        if progress is not None:
            progress(checked)
    return ChainReport(checked, None)


def _broken(row: Any, problem: str) -> BrokenLink:
    ts = row[1]
    if isinstance(ts, str):  # SQLite's text, UTC
        ts = datetime.fromisoformat(ts).replace(tzinfo=UTC)
    return BrokenLink(id=int(row[0]), ts=ts.astimezone(UTC), name=str(row[2]), problem=problem)


def backfill(connection: Connection, *, progress: Callable[[int], None] | None = None) -> int:
    """Compute the chain for every event, in id order; returns how many events.

    The hashes go to a temporary table first (COPY on PostgreSQL), then into
    the ledger with one UPDATE … FROM: millions of single-row updates would
    cost far more. The caller lifts the ledger's append-only guard around it.
    """
    postgres = connection.dialect.name == "postgresql"
    binary = "BYTEA" if postgres else "BLOB"
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE chain_backfill "
        f"(id BIGINT PRIMARY KEY, content_hash {binary}, chain_hash {binary})"
    )
    hasher = ContentHasher()
    previous = chain.GENESIS
    sha256 = chain._sha256
    total = 0
    raw = connection.connection
    for rows in _pages(connection):
        out = []
        for row in rows:
            content = hasher(row)
            previous = sha256(previous + content).digest()
            out.append((row[0], content, previous))
        cursor = raw.cursor()
        try:
            if postgres:
                sql = "COPY chain_backfill (id, content_hash, chain_hash) FROM STDIN"
                with cursor.copy(sql) as copy:
                    for item in out:
                        copy.write_row(item)
            else:
                cursor.executemany("INSERT INTO chain_backfill VALUES (?, ?, ?)", out)
        finally:
            cursor.close()
        total += len(out)
        if progress is not None:
            progress(total)
    connection.exec_driver_sql(
        "UPDATE ledger_event SET content_hash = b.content_hash, chain_hash = b.chain_hash "
        "FROM chain_backfill b WHERE ledger_event.id = b.id"
    )
    connection.exec_driver_sql("DROP TABLE chain_backfill")
    return total
