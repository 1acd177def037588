"""The ledger's hash chain: each event carries the SHA-256 of its content and of its link.

``content_hash = sha256(content)``, where the content is the event's canonical
form: UTF-8 JSON, keys sorted, no spaces (``{"actor":…,"campaign_id":…,
"group_id":…,"identity":…,"name":…,"profile_id":…,"properties":…,
"source":…,"ts":…}``). ``ts`` is UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``;
``properties`` are the stored JSON object, keys sorted too.

Personal data enters the content only as its SHA-256 (hex): the ``identity``
and the ``Reason`` property (free text an admin may fill with anything). So
erasing a person (``erasure``) replaces those values with ``erased:<digest>``
(identity) or ``{"erased": "<digest>"}`` (a property) and every content hash
still matches.

``chain_hash = sha256(previous event's chain_hash || content_hash)`` (raw
bytes; the first event's predecessor is 32 zero bytes). The chain runs in id
order. Its newest link is kept in ``ledger_chain_head`` (one row): a writer
reads it inside its own transaction (``lock_tail``; on PostgreSQL ``FOR
UPDATE``, held until commit, so writers append one at a time and ids grow in
chain order; on SQLite the write transaction's file lock does that) and
moves it to its last event (``move_head``).

``ledger_verify`` finds any change of a row's content or of a hash, a removed
event (the next one's link breaks), and removed newest events (the ledger
no longer ends at the head).
"""

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlmodel import Session

GENESIS = bytes(32)
PERSONAL_PROPERTIES = ("Reason",)
ERASED_IDENTITY = "erased:"  # an erased identity: this prefix and the identity's digest
ERASED_KEY = "erased"  # an erased property: {"erased": digest}
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_CONTENT = (
    '{"actor":%s,"campaign_id":%s,"group_id":%s,"identity":%s,"name":%s,'
    '"profile_id":%s,"properties":%s,"source":%s,"ts":"%s"}'
)
_sha256 = hashlib.sha256


def digest(value: str) -> str:
    """The SHA-256 (hex) of a personal value, as the content holds it."""
    return _sha256(value.encode("utf-8")).hexdigest()


def is_erased_identity(identity: str | None) -> bool:
    return (
        identity is not None
        and identity.startswith(ERASED_IDENTITY)
        and len(identity) == len(ERASED_IDENTITY) + 64
    )


def identity_form(identity: str | None) -> str:
    """The identity as the content holds it: its digest as a JSON string, or null."""
    if identity is None:
        return "null"
    if is_erased_identity(identity):
        return '"' + identity[len(ERASED_IDENTITY) :] + '"'
    return '"' + _sha256(identity.encode("utf-8")).hexdigest() + '"'


def properties_form(properties: dict[str, Any]) -> str:
    """The properties as the content holds them: personal ones as digests, keys sorted."""
    values = dict(properties)
    for key in PERSONAL_PROPERTIES:
        value = values.get(key)
        if isinstance(value, str):
            values[key] = digest(value)
        elif isinstance(value, dict) and isinstance(value.get(ERASED_KEY), str):
            values[key] = value[ERASED_KEY]
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def properties_form_of_text(stored: str) -> str:
    """``properties_form`` of properties as stored (JSON text)."""
    return properties_form(json.loads(stored))


def ts_form(ts: datetime) -> str:
    """The time as the content holds it (UTC, microseconds)."""
    if ts.tzinfo is None:  # SQLite hands back naive UTC values
        return ts.strftime(_TS_FORMAT)
    return ts.astimezone(UTC).strftime(_TS_FORMAT)


def text_form(value: str | None) -> str:
    """A plain (not personal) string field as JSON."""
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


def int_form(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def content_hash(
    *,
    ts: str,
    name: str,
    identity: str,
    profile_id: int | None,
    group_id: int | None,
    campaign_id: int | None,
    source: str,
    actor: str,
    properties: str,
) -> bytes:
    """SHA-256 of the canonical content; every argument already in its form
    (``ts_form``, ``text_form`` for name/source/actor, ``identity_form``,
    ``properties_form``)."""
    content = _CONTENT % (
        actor,
        int_form(campaign_id),
        int_form(group_id),
        identity,
        name,
        int_form(profile_id),
        properties,
        source,
        ts,
    )
    return _sha256(content.encode("utf-8")).digest()


class ContentParts:
    """``content_hash`` for a bulk write's events that share all but their identity,
    profile and time: the content's text is cut around those three once, so each
    event costs a join and one SHA-256. ``identity`` is ``identity_form``'s, ``ts``
    ``ts_form``'s (the tests hold it equal to ``content_hash``)."""

    def __init__(
        self,
        *,
        name: str,
        group_id: int | None,
        campaign_id: int | None,
        source: str,
        actor: str,
        properties: str,
    ) -> None:
        marks = ("\x00identity\x00", "\x00profile\x00", "\x00ts\x00")
        whole = _CONTENT % (
            actor, int_form(campaign_id), int_form(group_id), marks[0], name, marks[1],
            properties, source, marks[2],
        )  # fmt: skip
        head, rest = whole.split(marks[0])
        middle, rest = rest.split(marks[1])
        tail, end = rest.split(marks[2])
        self.head, self.middle, self.tail, self.end = head, middle, tail, end

    def digest(self, identity: str, profile_id: int | None, ts: str) -> bytes:
        text = "".join(
            (self.head, identity, self.middle, int_form(profile_id), self.tail, ts, self.end)
        )
        return _sha256(text.encode("utf-8")).digest()


def link(previous: bytes, content: bytes) -> bytes:
    """The chain hash of an event: its predecessor's chain hash, then its content hash."""
    return _sha256(previous + content).digest()


def event_content_hash(
    *,
    ts: datetime,
    name: str,
    identity: str | None,
    profile_id: int | None,
    group_id: int | None,
    campaign_id: int | None,
    source: str,
    actor: str,
    properties: dict[str, Any],
) -> bytes:
    """The content hash of one event about to be written (the ORM path)."""
    return content_hash(
        ts=ts_form(ts),
        name=text_form(name),
        identity=identity_form(identity),
        profile_id=profile_id,
        group_id=group_id,
        campaign_id=campaign_id,
        source=text_form(source),
        actor=text_form(actor),
        # As stored and read back (a tuple becomes a list, keys become strings).
        properties=properties_form(json.loads(json.dumps(properties))),
    )


def lock_tail(connection: Connection) -> bytes:
    """Hold the chain's head until this transaction ends; its newest chain hash.

    PostgreSQL: the head row ``FOR UPDATE``, so two writers never link to the
    same predecessor (and ids grow in chain order). SQLite: the write
    transaction holds the file's lock already.
    """
    lock = " FOR UPDATE" if connection.dialect.name == "postgresql" else ""
    row = connection.exec_driver_sql(
        f"SELECT chain_hash FROM ledger_chain_head WHERE id = 1{lock}"
    ).first()
    if row is None:
        raise RuntimeError("the store has no ledger_chain_head row: open it with subgroups")
    return bytes(row[0])


def session_tail(session: Session) -> bytes:
    """``lock_tail`` on the session's connection (its pending rows flushed first)."""
    session.flush()
    return lock_tail(session.connection())


def move_head(connection: Connection, chain_hash: bytes) -> None:
    """The chain's head is now this link (in the transaction that wrote it)."""
    connection.execute(
        text("UPDATE ledger_chain_head SET chain_hash = :h WHERE id = 1"), {"h": chain_hash}
    )


def start_head(connection: Connection, chain_hash: bytes = GENESIS) -> None:
    """The head row of a new (or newly chained) ledger."""
    connection.execute(
        text("INSERT INTO ledger_chain_head (id, chain_hash) VALUES (1, :h)"), {"h": chain_hash}
    )


def chain(previous: bytes, contents: list[bytes]) -> list[bytes]:
    """The chain hashes of events with these content hashes, written after ``previous``."""
    hashes: list[bytes] = []
    append = hashes.append
    for content in contents:
        previous = _sha256(previous + content).digest()
        append(previous)
    return hashes


# Cached forms of the fields that repeat (names, sources, actors, properties):
# a bulk write or a verify sees a few hundred distinct values among millions.
FORM_CACHE_LIMIT = 200_000


class FormCache:
    """Forms of repeating values, each computed once (bounded)."""

    def __init__(self, make: Callable[[Any], str]) -> None:
        self.make = make
        self.values: dict[Any, str] = {}

    def __call__(self, value: Any) -> str:
        found = self.values.get(value)
        if found is None:
            found = self.make(value)
            if len(self.values) >= FORM_CACHE_LIMIT:
                self.values.clear()
            self.values[value] = found
        return found
