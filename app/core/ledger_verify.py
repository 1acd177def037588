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


def _pages(
    connection: Connection, *, after: int = 0, last: int | None = None
) -> Iterator[Sequence[Any]]:
    """The ledger's rows in id order (ids above ``after``, up to ``last``), a page at a
    time, as the driver gives them."""
    sql = _select(connection)
    cursor = connection.connection.cursor()
    try:
        while True:
            cursor.execute(sql, (after,))
            rows = cursor.fetchall()
            if last is not None and rows and rows[-1][0] > last:
                rows = [row for row in rows if row[0] <= last]
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


NO_HASH = "has no hash (it is not in the chain)"
CONTENT_MISMATCH = "content does not match its content hash"
LINK_MISMATCH = (
    "its link does not match the event before it "
    "(an event before it was removed, or a chain hash was changed)"
)


def check_rows(
    rows: Sequence[Any], previous: bytes, hasher: ContentHasher
) -> tuple[bytes, int, BrokenLink | None]:
    """Check rows in id order after the chain hash ``previous``: the last chain hash,
    how many passed, and the first broken one.

    The hot loop of ``verify`` (millions of rows): ``hasher``'s work written out
    here, so each row costs a few dictionary lookups and three SHA-256 calls.
    Keep it in step with ``ledger_chain.content_hash`` (the tests compare them).
    """
    sha256 = chain._sha256
    template = chain._CONTENT
    identity_form = chain.identity_form
    ts_forms, ts_make = hasher.ts.values, hasher.ts
    texts, text_make = hasher.texts.values, hasher.texts
    props, props_make = hasher.properties.values, hasher.properties
    erased = chain.ERASED_IDENTITY
    checked = 0
    for row in rows:
        _, ts, name, identity, pid, gid, cid, source, actor, properties, stored, link = row
        if stored is None or link is None:
            return previous, checked, _broken(row, NO_HASH)
        # SQLite's text of a time ("2026-01-01 00:00:00.000000"), rarely repeated: made
        # here rather than cached; other forms through the cache.
        if ts.__class__ is str and len(ts) == _SQLITE_TS_LENGTH and ts[10] == " ":
            ts_form = ts[:10] + "T" + ts[11:] + "Z"
        else:
            ts_form = ts_forms.get(ts) or ts_make(ts)
        if identity is None:
            identity_text = "null"
        elif identity.startswith(erased):
            identity_text = identity_form(identity)
        else:
            identity_text = '"' + sha256(identity.encode("utf-8")).hexdigest() + '"'
        content = sha256(
            (
                template
                % (
                    texts.get(actor) or text_make(actor),
                    "null" if cid is None else cid,
                    "null" if gid is None else gid,
                    identity_text,
                    texts.get(name) or text_make(name),
                    "null" if pid is None else pid,
                    props.get(properties) or props_make(properties),
                    texts.get(source) or text_make(source),
                    ts_form,
                )
            ).encode("utf-8")
        ).digest()
        if content != stored:
            return previous, checked, _broken(row, CONTENT_MISMATCH)
        following = sha256(previous + content).digest()
        if following != link:
            return previous, checked, _broken(row, LINK_MISMATCH)
        previous = following
        checked += 1
    return previous, checked, None


def verify(connection: Connection, *, progress: Callable[[int], None] | None = None) -> ChainReport:
    """Check every event's content hash and link, in id order; stop at the first broken one."""
    hasher = ContentHasher()
    previous = chain.GENESIS
    checked = 0
    last: Any = None
    for rows in _pages(connection):
        previous, passed, broken = check_rows(rows, previous, hasher)
        checked += passed
        if broken is not None:
            return ChainReport(checked, broken)
        last = rows[-1]
        if progress is not None:
            progress(checked)
    return ChainReport(checked, _head_problem(connection, previous, last))


HEAD_MISMATCH = (
    "the ledger ends here but the chain's head does not: newer events were removed "
    "(or the head was changed)"
)


def _head_problem(connection: Connection, previous: bytes, last: Any) -> BrokenLink | None:
    """Whether the ledger ends where the chain's head says (its newest link)."""
    row = connection.exec_driver_sql(
        "SELECT chain_hash FROM ledger_chain_head WHERE id = 1"
    ).first()
    if row is not None and bytes(row[0]) == previous:
        return None
    if last is None:
        return BrokenLink(0, datetime.fromtimestamp(0, UTC), "(no event)", HEAD_MISMATCH)
    return _broken(last, HEAD_MISMATCH)


# Below this many events one process checks them all (starting others costs more).
PARALLEL_FROM = 400_000


def _id_range(connection: Connection) -> tuple[int, int, int]:
    row = connection.exec_driver_sql("SELECT min(id), max(id), count(*) FROM ledger_event").one()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def _verify_range(url: str, after: int, last: int) -> tuple[int, BrokenLink | None, bytes, Any]:
    """Check the events with ids in (after, last], in a process of its own: the first links
    to the stored chain hash of the event before it (checked by the range before)."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            before = connection.exec_driver_sql(
                "SELECT chain_hash FROM ledger_event WHERE id <= "
                f"{int(after)} ORDER BY id DESC LIMIT 1"
            ).first()
            previous = bytes(before[0]) if before and before[0] is not None else chain.GENESIS
            hasher = ContentHasher()
            checked = 0
            final: Any = None
            for rows in _pages(connection, after=after, last=last):
                previous, passed, broken = check_rows(rows, previous, hasher)
                checked += passed
                if broken is not None:
                    return checked, broken, previous, None
                final = tuple(rows[-1])
            return checked, None, previous, final
    finally:
        engine.dispose()


def verify_store(url: str, connection: Connection, *, workers: int | None = None) -> ChainReport:
    """``verify``, split by id range over ``workers`` processes for a large ledger
    (default: one per CPU, at most 4). The answer is the same: the count of events
    before the first broken one, and that one."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    low, high, count = _id_range(connection)
    wanted = workers if workers is not None else min(os.cpu_count() or 1, 4)
    if wanted <= 1 or count < PARALLEL_FROM:
        return verify(connection)
    cuts = [low - 1 + (high - low + 1) * k // wanted for k in range(wanted + 1)]
    with ProcessPoolExecutor(wanted, mp_context=get_context("spawn")) as pool:
        parts = [
            pool.submit(_verify_range, url, a, b) for a, b in zip(cuts, cuts[1:], strict=False)
        ]
        checked = 0
        previous, last = chain.GENESIS, None
        for part in parts:
            passed, broken, end, final = part.result()
            checked += passed
            if broken is not None:
                for rest in parts:
                    rest.cancel()
                return ChainReport(checked, broken)
            if final is not None:
                previous, last = end, final
    return ChainReport(checked, _head_problem(connection, previous, last))


def _broken(row: Any, problem: str) -> BrokenLink:
    ts = row[1]
    if isinstance(ts, str):  # SQLite's text, UTC
        ts = datetime.fromisoformat(ts).replace(tzinfo=UTC)
    return BrokenLink(id=int(row[0]), ts=ts.astimezone(UTC), name=str(row[2]), problem=problem)


def backfill(connection: Connection, *, progress: Callable[[int], None] | None = None) -> bytes:
    """Compute the chain for every event, in id order; returns the last chain hash.

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
    return previous
