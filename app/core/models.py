"""The store's tables.

No ``from __future__ import annotations`` here: SQLModel reads the real
annotations (sqlmodel issue 196).

Vocabulary: a *group* is a subscription group; a *profile* is one recipient;
a *group state* is the stored choice of one profile for one group (absent
means "never set": the group's policy decides); the *ledger* holds every
event, subscription changes and admin actions alike, and is append-only.
"""

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    LargeBinary,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from app.core.event_names import CHANNEL_UNSUBSCRIBED

# Values kept as plain strings so scripts and SQL read them as they are.
POLICY_OPT_OUT = "opt-out"
POLICY_OPT_IN = "opt-in"
POLICIES = (POLICY_OPT_OUT, POLICY_OPT_IN)

STATUS_ACTIVE = "active"
STATUS_ARCHIVED = "archived"

SUBSCRIBED = "subscribed"
UNSUBSCRIBED = "unsubscribed"
STATES = (SUBSCRIBED, UNSUBSCRIBED)

CHANNEL_EMAIL = "email"


def json_text(value: Any) -> str:
    """A JSON column's value as stored: compact, with no space after ``,`` and ``:``.

    The engines write every JSON column through this (``store.make_engine``).
    A ledger event's properties take 22 bytes fewer (a tenth of the event),
    and the ledger is most of what an import writes; reading parses the text,
    so the values read back are the same.
    """
    return json.dumps(value, separators=(",", ":"))


def email_key(email: str | None) -> str | None:
    """An address as addresses are compared: stripped and lower-cased; None for no address.

    Stored once per profile (``Profile.email_key``): profiles with one key are one
    recipient (one message per campaign; an opt-out under any of them counts for all).
    """
    if email is None:
        return None
    key = email.strip().lower()
    return key or None


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored with its time zone and always read back as UTC.

    SQLite has no time zone type; SQLAlchemy hands back naive values there.
    Every value we write is UTC, so a naive value read back is UTC too.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# The condition of the ledger's name index: every name but the one nearly all
# events have (``event_names.CHANNEL_UNSUBSCRIBED``). A query by another name
# repeats it word for word, so the planner may use the index.
OTHER_NAMES = f"name <> '{CHANNEL_UNSUBSCRIBED}'"


def utc_column(nullable: bool = False) -> Any:
    """A fresh UTC timestamp column (SQLAlchemy columns cannot be shared)."""
    return Column(UTCDateTime(), nullable=nullable)


class SchemaMeta(SQLModel, table=True):
    """Key/value facts about the store itself, such as its schema version."""

    __tablename__ = "schema_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=256)


class Group(SQLModel, table=True):
    """A subscription group. Never deleted: archiving keeps its opt-outs enforced."""

    __tablename__ = "subscription_group"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    # Case-folded name: the uniqueness rule covers archived groups too. Wider
    # than the name: folding can lengthen it ("ß" folds to "ss").
    name_key: str = Field(max_length=256, unique=True)
    description: str = Field(default="", max_length=280)
    channel: str = Field(default=CHANNEL_EMAIL, max_length=16)
    policy: str = Field(default=POLICY_OPT_OUT, max_length=16)
    shown_on_landing_page: bool = True
    status: str = Field(default=STATUS_ACTIVE, max_length=16, index=True)
    created_at: datetime = Field(sa_column=utc_column())
    updated_at: datetime = Field(sa_column=utc_column())
    archived_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_by: str = Field(default="", max_length=128)
    updated_by: str = Field(default="", max_length=128)


class Profile(SQLModel, table=True):
    """One recipient, with the channel-wide email state."""

    __tablename__ = "profile"

    id: int | None = Field(default=None, primary_key=True)
    identity: str = Field(max_length=320, unique=True)
    # Not indexed: no query looks a profile up by its address as written (search
    # reads it with LIKE '%...%', which no index serves); version 11 dropped it.
    email: str | None = Field(default=None, max_length=320)
    # The address as compared: stripped and lower-cased (``profiles.email_key``), None
    # without one. One address is one recipient, whatever profiles carry it (version 5).
    email_key: str | None = Field(default=None, max_length=320, index=True)
    name: str = Field(default="", max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # "subscribed" or "unsubscribed": unsubscribed overrides every group.
    all_email: str = Field(default=SUBSCRIBED, max_length=16)
    created_at: datetime = Field(sa_column=utc_column())


class GroupState(SQLModel, table=True):
    """The stored state of one profile for one group; absent means never set."""

    __tablename__ = "group_state"
    # Covering (group, state) → profiles: group counts and the segment index
    # read it without touching the table (schema version 4).
    __table_args__ = (
        Index("ix_group_state_group_state_profile", "group_id", "state", "profile_id"),
    )

    profile_id: int = Field(foreign_key="profile.id", primary_key=True)
    group_id: int = Field(foreign_key="subscription_group.id", primary_key=True)
    state: str = Field(max_length=16)
    updated_at: datetime = Field(sa_column=utc_column())


class Event(SQLModel, table=True):
    """One immutable ledger entry (the database refuses UPDATE and DELETE)."""

    __tablename__ = "ledger_event"
    # A person's events, newest first (the profile view, "why not sent"): schema
    # version 7. No query picks events by group id alone, so it has no index of
    # its own. Events a campaign caused (its unsubscribe count), the few among
    # all: version 8. Events by name (``events --name``, the log's filter) for
    # the names other than "Channel Unsubscribed", which nearly every event has
    # (version 11): those are found newest first through the ledger itself, and
    # an import or a one-click does not add to a name index each. On PostgreSQL
    # the table is partitioned by month (version 17, ``ledger_partitions``), its
    # primary key there (id, ts); the id stays unique, from the one sequence.
    __table_args__ = (
        Index("ix_ledger_event_profile", "profile_id", "id"),
        Index(
            "ix_ledger_event_other_names",
            "name",
            sqlite_where=text(OTHER_NAMES),
            postgresql_where=text(OTHER_NAMES),
        ),
        Index(
            "ix_ledger_event_campaign",
            "campaign_id",
            sqlite_where=text("campaign_id IS NOT NULL"),
            postgresql_where=text("campaign_id IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    ts: datetime = Field(sa_column=utc_column())
    name: str = Field(max_length=64)
    identity: str | None = Field(default=None, max_length=320)
    profile_id: int | None = Field(default=None)
    group_id: int | None = Field(default=None)
    campaign_id: int | None = Field(default=None)
    source: str = Field(max_length=32)
    actor: str = Field(default="", max_length=128)
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The hash chain (schema version 12, ``ledger_chain``): SHA-256 of the event's
    # canonical content, and of the previous event's chain hash followed by it.
    content_hash: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    chain_hash: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


# --- Tables the later sections build on (schema version 2) -----------------


class Segment(SQLModel, table=True):
    """A saved, named AND of conditions (the definition is JSON)."""

    __tablename__ = "segment"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    name_key: str = Field(max_length=256, unique=True)
    definition: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=utc_column())
    updated_at: datetime = Field(sa_column=utc_column())
    created_by: str = Field(default="", max_length=128)
    updated_by: str = Field(default="", max_length=128)


class Campaign(SQLModel, table=True):
    """An email campaign: draft, sending, sent or cancelled."""

    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    name_key: str = Field(max_length=512, unique=True)
    subject: str = Field(default="", max_length=255)
    from_address: str = Field(default="", max_length=320)
    body: str = Field(default="")
    # None means "all profiles".
    segment_id: int | None = Field(default=None, foreign_key="segment.id")
    # Group ids: "do not send this campaign to the following subscription groups".
    do_not_send_to: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Group ids: "only people subscribed to all of".
    only_subscribed_to: list[int] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    status: str = Field(default="draft", max_length=16)
    created_at: datetime = Field(sa_column=utc_column())
    updated_at: datetime = Field(sa_column=utc_column())
    sent_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    created_by: str = Field(default="", max_length=128)
    # Where its send delivers ("maildir:/abs/path", "smtp:host:port"), set when the
    # send first starts: a resume goes there or nowhere (version 5).
    destination: str | None = Field(default=None, max_length=1100)
    # The send lease: "host:pid" of the process sending it, and its last heartbeat.
    lease_holder: str | None = Field(default=None, max_length=300)
    lease_beat_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class Delivery(SQLModel, table=True):
    """One message of a campaign to one profile; unique so nobody is mailed twice:
    per (campaign, profile), and per (campaign, address key) since version 5."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("campaign_id", "profile_id"),
        Index("ux_delivery_campaign_address", "campaign_id", "address_key", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    profile_id: int = Field(foreign_key="profile.id")
    status: str = Field(default="sent", max_length=16)
    message_id: str = Field(default="", max_length=255)
    batch: int = 0
    sent_at: datetime = Field(sa_column=utc_column())
    # The profile's email key when claimed (None: rows older than version 5).
    address_key: str | None = Field(default=None, max_length=320)


class SendSender(SQLModel, table=True):
    """A process taking part in a shared send (PostgreSQL; schema version 16).

    ``holder`` is ``host:pid``; its heartbeat thread refreshes ``beat_at``. A
    sender whose heartbeat stopped has its claimed batches taken over.
    """

    __tablename__ = "send_sender"

    campaign_id: int = Field(foreign_key="campaign.id", primary_key=True)
    holder: str = Field(primary_key=True, max_length=300)
    started_at: datetime = Field(sa_column=utc_column())
    beat_at: datetime = Field(sa_column=utc_column())


class SendBatch(SQLModel, table=True):
    """One batch of a shared send: the audience members whose profile id is in
    ``(after_id, last_id]`` (``None``: no bound), claimed by one sender at a time
    (schema version 16, ``send_batches``). ``number`` is the batch of its delivery rows."""

    __tablename__ = "send_batch"

    campaign_id: int = Field(foreign_key="campaign.id", primary_key=True)
    number: int = Field(primary_key=True)
    after_id: int | None = None
    last_id: int | None = None
    status: str = Field(default="todo", max_length=16)  # todo, claimed, done
    holder: str | None = Field(default=None, max_length=300)
    claimed_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    # Filled in when done: not eligible at the batch's check, and without a usable address.
    skipped: int = 0
    without_email: int = 0


class LandingSettings(SQLModel, table=True):
    """The landing page's wording (one row); shown groups live on the groups."""

    __tablename__ = "landing_settings"

    id: int = Field(default=1, primary_key=True)
    title: str = Field(default="Your email preferences", max_length=120)
    intro: str = Field(default="Choose the email you want to receive from us.", max_length=1000)
    all_email_wording: str = Field(default="Unsubscribe from all email", max_length=200)
    confirmation_text: str = Field(default="Your preferences are saved.", max_length=500)
    base_url: str = Field(default="http://127.0.0.1:8080", max_length=500)
    updated_at: datetime = Field(sa_column=utc_column())


class IndexSnapshot(SQLModel, table=True):
    """One bitmap of the segment index as of a ledger id (schema version 9).

    A process loads the snapshot and replays only the ledger events after
    ``ledger_id``, instead of reading every profile and state. All parts are
    written in one transaction with one ``ledger_id``; ``data`` is a roaring
    bitmap in the portable format, ``checksum`` its CRC-32 (hex).
    """

    __tablename__ = "index_snapshot"

    part: str = Field(primary_key=True, max_length=64)
    ledger_id: int
    max_profile_id: int
    checksum: str = Field(max_length=8)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    written_at: datetime = Field(sa_column=utc_column())


class Admin(SQLModel, table=True):
    """A person who may use the console over SSH, with their role (schema version 10).

    ``role`` is viewer, editor or owner (``app.core.actors``); ``public_key`` is
    their OpenSSH public key line, ``key_fingerprint`` its ``SHA256:...`` as
    ``ssh-keygen -lf`` prints it. Names are unique case-insensitively (``name_key``).
    """

    __tablename__ = "admin"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=32)
    name_key: str = Field(max_length=32, unique=True)
    role: str = Field(max_length=16)
    public_key: str = Field(max_length=16384)
    key_fingerprint: str = Field(max_length=64, unique=True)
    added_at: datetime = Field(sa_column=utc_column())
    added_by: str = Field(default="", max_length=128)


class StoreSetting(SQLModel, table=True):
    """One store-wide setting (schema version 13): ``inbound-domain``, ``dkim-domain``...

    Keys and values as ``app.core.settings`` checks them; the public base URL is
    not here (it is ``LandingSettings.base_url``, one source of truth), nor is
    the DKIM private key (a file in the data directory; this holds its fingerprint).
    """

    __tablename__ = "store_setting"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=1000)
    updated_at: datetime = Field(sa_column=utc_column())
    updated_by: str = Field(default="", max_length=128)


class Deliverability(SQLModel, table=True):
    """What bounces said of a profile's address (schema version 14; issue 12).

    A row exists only for profiles that bounced. A hard bounce (5.x.x) makes
    the address ``undeliverable`` at once; soft bounces (4.x.x) are counted
    while they come in a row (``app.core.bounces``), and ``SOFT_BOUNCE_LIMIT``
    of them do the same. Undeliverable addresses are a step of the
    eligibility chain; the segment index keeps them as a bitmap.
    """

    __tablename__ = "deliverability"

    profile_id: int = Field(foreign_key="profile.id", primary_key=True)
    undeliverable: bool = False
    soft_bounces: int = 0
    # The campaign of the last counted bounce (a repeated report of it counts once).
    last_campaign_id: int | None = Field(default=None)
    last_bounce_at: datetime = Field(sa_column=utc_column())
    undeliverable_since: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class LedgerDay(SQLModel, table=True):
    """How many subscription changes the ledger holds per day, group, source,
    campaign and new state (schema version 15): the insights read this, not the ledger.

    Kept by a trigger on ``ledger_event`` (``ledger_days``), so every write path,
    the bulk ones included, counts its "Channel Unsubscribed" events in the
    same transaction. ``day`` is the UTC date as ``YYYY-MM-DD``; a channel-wide
    change has ``group_id`` 0, a change no campaign caused ``campaign_id`` 0.
    """

    __tablename__ = "ledger_day"

    day: str = Field(primary_key=True, max_length=10)
    group_id: int = Field(default=0, primary_key=True)
    source: str = Field(primary_key=True, max_length=32)
    campaign_id: int = Field(default=0, primary_key=True)
    state: str = Field(primary_key=True, max_length=16)
    events: int = 0


# Which tables each schema version introduced (see store.migrate).
class LedgerChainHead(SQLModel, table=True):
    """The hash chain's newest link, one row (schema version 12, ``ledger_chain``).

    Writers lock it to append (PostgreSQL: ``FOR UPDATE``), so they link one at a
    time; ``events verify`` checks the ledger ends where it says, so removing the
    newest events is found too.
    """

    __tablename__ = "ledger_chain_head"

    id: int = Field(default=1, primary_key=True)
    chain_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AddressSuppression(SQLModel, table=True):
    """An erased person's address, kept only as a keyed hash (schema version 12).

    A later profile with that address stays unsubscribed from all email. The
    hash is an HMAC with a secret kept outside the database (``suppression``),
    so whoever reads the store cannot test guesses against it.
    """

    __tablename__ = "address_suppression"

    address_hash: str = Field(primary_key=True, max_length=64)
    erased_at: datetime = Field(sa_column=utc_column())
    reason: str = Field(default="", max_length=500)


TABLES_V1 = (SchemaMeta, Group, Profile, GroupState, Event)
TABLES_V2 = (Segment, Campaign, Delivery, LandingSettings)
