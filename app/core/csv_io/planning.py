"""Planning an import: the rows of a good file compared with the store (step 2).

``plan_import`` (and ``plan_parsed``, for a file already read) lists new
profiles, changed fields, and every state change with the stored state it
replaces. An explicit stored ``unsubscribed`` never becomes ``subscribed``
unless the import overwrites unsubscribes, with a reason; by default such
cells are listed as kept unsubscribed and left alone. Nothing is written.

Profiles that will share an address (``email_key``: the same address in
another case or with spaces) are listed as a warning, not an error: one
address is one recipient, so an opt-out under any of them counts for all.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlmodel import Session

from app.core import bulk
from app.core.csv_io.columns import ParsedRow
from app.core.csv_io.format import (
    CHUNK,
    EMAIL,
    NAME,
    Progress,
    Source,
    all_groups,
    property_text,
    stored_properties,
)
from app.core.csv_io.reading import ParsedCsv, read_csv
from app.core.errors import ImportOutdated, InvalidInput
from app.core.models import SUBSCRIBED, UNSUBSCRIBED, email_key
from app.core.subscriptions import clean_reason


class NewProfile(NamedTuple):
    """A profile the import creates (subscribed to all email until a change says otherwise)."""

    line: int
    identity: str
    email: str | None
    name: str
    properties: dict[str, str]


class FieldChange(NamedTuple):
    """One changed field of an existing profile: ``column`` is email, name or a property."""

    column: str
    old: Any
    new: str


class ProfileUpdate(NamedTuple):
    """An existing profile whose fields the import changes, with all its new values."""

    line: int
    identity: str
    profile_id: int
    email: str | None
    name: str
    properties: dict[str, Any]
    changes: tuple[FieldChange, ...]


class PlannedChange(NamedTuple):
    """One state change; group None means all email, ``old`` None means never set.

    ``profile_id`` is None for a profile the import creates.
    """

    line: int
    identity: str
    profile_id: int | None
    group_id: int | None
    group_name: str | None
    old: str | None
    new: str
    overwrites_unsubscribe: bool


class KeptUnsubscribed(NamedTuple):
    """A ``subscribed`` cell over an explicit unsubscribe, left alone (group None: all email)."""

    line: int
    identity: str
    group_id: int | None
    group_name: str | None


class SharedAddress(NamedTuple):
    """Profiles that will share one address after the import (at least one is in the file):
    existing ones by id, then the file's in file order."""

    address: str  # the email key
    identities: tuple[str, ...]


@dataclass
class ImportPlan:
    """What an import does, from the store as it was when planned."""

    file: str
    rows: int
    new_profiles: list[NewProfile]
    updated_profiles: list[ProfileUpdate]
    state_changes: list[PlannedChange]
    kept_unsubscribed: list[KeptUnsubscribed]
    overwrite_unsubscribes: bool
    reason: str | None
    parsed: ParsedCsv = field(repr=False)
    shared_addresses: list[SharedAddress] = field(default_factory=list)

    @property
    def unchanged_rows(self) -> int:
        """Rows that change nothing (kept unsubscribes aside)."""
        touched = {c.identity for c in self.state_changes}
        touched.update(p.identity for p in self.new_profiles)
        touched.update(p.identity for p in self.updated_profiles)
        return self.rows - len(touched)

    @property
    def overwritten_unsubscribes(self) -> int:
        return sum(1 for c in self.state_changes if c.overwrites_unsubscribe)

    def changes_by_group(self) -> list[tuple[int | None, str | None, int, int]]:
        """(group id, name, to subscribed, to unsubscribed) in file order; id None: all email."""
        counts = Counter((c.group_id, c.new) for c in self.state_changes)
        names = {c.group_id: c.group_name for c in self.state_changes}
        return [
            (gid, names[gid], counts[(gid, SUBSCRIBED)], counts[(gid, UNSUBSCRIBED)])
            for gid in (None, *self.parsed.group_ids)
            if gid in names
        ]

    def summary_json(self) -> dict[str, Any]:
        """The counts, for people and scripts."""
        return {
            "file": self.file,
            "rows": self.rows,
            "new_profiles": len(self.new_profiles),
            "updated_profiles": len(self.updated_profiles),
            "unchanged_rows": self.unchanged_rows,
            "state_changes": len(self.state_changes),
            "by_group": [
                {"group_id": gid, "group": name, "subscribed": sub, "unsubscribed": unsub}
                for gid, name, sub, unsub in self.changes_by_group()
            ],
            "kept_unsubscribed": len(self.kept_unsubscribed),
            "overwritten_unsubscribes": self.overwritten_unsubscribes,
            "reason": self.reason,
            "shared_addresses": len(self.shared_addresses),
        }

    def details_json(self) -> dict[str, Any]:
        """Every new profile, field change, state change and kept unsubscribe.

        A ``group`` of null means all email.
        """
        return {
            "new_profile_list": [
                {"line": p.line, "identity": p.identity} for p in self.new_profiles
            ],
            "updated_profile_list": [
                {
                    "line": u.line,
                    "identity": u.identity,
                    "changes": [
                        {"column": c.column, "old": c.old, "new": c.new} for c in u.changes
                    ],
                }
                for u in self.updated_profiles
            ],
            "state_change_list": [
                {
                    "line": c.line,
                    "identity": c.identity,
                    "group": c.group_name,
                    "old": c.old,
                    "new": c.new,
                    "overwrites_unsubscribe": c.overwrites_unsubscribe,
                }
                for c in self.state_changes
            ],
            "kept_unsubscribed_list": [
                {"line": k.line, "identity": k.identity, "group": k.group_name}
                for k in self.kept_unsubscribed
            ],
            "shared_address_list": [
                {"address": a.address, "identities": list(a.identities)}
                for a in self.shared_addresses
            ],
        }

    def same_as(self, other: "ImportPlan") -> bool:
        """True when both plans write the same things."""
        return (
            self.new_profiles == other.new_profiles
            and self.updated_profiles == other.updated_profiles
            and self.state_changes == other.state_changes
            and self.kept_unsubscribed == other.kept_unsubscribed
        )


def clean_overwrite(overwrite_unsubscribes: bool, reason: str | None) -> str | None:
    """The reason recorded on overwritten unsubscribes; refused if missing, or given for nothing."""
    cleaned = clean_reason(reason)
    if overwrite_unsubscribes and cleaned is None:
        raise InvalidInput(
            "Overwriting unsubscribes needs a reason (--reason TEXT); it is recorded on every "
            "unsubscribe the import overwrites",
            field="reason",
        )
    if cleaned is not None and not overwrite_unsubscribes:
        raise InvalidInput(
            "A reason goes with --overwrite-unsubscribes; it is recorded on the unsubscribes "
            "the import overwrites",
            field="reason",
        )
    return cleaned


def _read_all(session: Session, stored: int, asked: int) -> bool:
    """Whether to read a whole table once rather than look up ``asked`` values one by one.

    On SQLite, when the file names at least as many as the store holds
    (``stored``): a first import, or a file of most of the store. One pass
    over the table costs less than that many index lookups. On PostgreSQL
    the lookups also lock the rows, so they stay.
    """
    return stored <= asked and session.get_bind().dialect.name == "sqlite"


def _shared_addresses(
    session: Session,
    parsed: ParsedCsv,
    existing: dict[str, tuple[int, str | None, str, Any, str]],
    profiles_stored: int,
) -> list[SharedAddress]:
    """Addresses that more than one profile will have once the file is imported."""
    after: dict[str, str] = {}  # identity in the file -> its key after the import
    for row in parsed.rows:
        found = existing.get(row.identity)
        email = row.email if row.email is not None else (found[1] if found else None)
        key = email_key(email)
        if key is not None:
            after[row.identity] = key
    if not after:
        return []
    by_key: dict[str, list[str]] = {}
    keys = set(after.values())
    if _read_all(session, profiles_stored, len(keys)):
        stored = [
            row
            for row in bulk.fetch(
                session, "SELECT id, identity, email_key FROM profile WHERE email_key IS NOT NULL"
            )
            if row[2] in keys
        ]
    else:
        stored = bulk.select_where_in(
            session, "SELECT id, identity, email_key FROM profile WHERE email_key", sorted(keys)
        )
    outside = sorted(row for row in stored if row[1] not in after)  # profiles the file leaves
    counts = Counter(after.values())
    counts.update(key for _, _, key in outside)
    shared = {key for key, count in counts.items() if count > 1}  # usually few or none
    if not shared:
        return []
    for _pid, identity, key in outside:
        if key in shared:
            by_key.setdefault(key, []).append(identity)
    for identity, key in after.items():
        if key in shared:
            by_key.setdefault(key, []).append(identity)
    return [
        SharedAddress(key, tuple(identities))
        for key, identities in sorted(by_key.items(), key=lambda item: item[1][0])
        if len(identities) > 1
    ]


def _profile_update(
    row: ParsedRow,
    pid: int,
    old_email: str | None,
    old_name: str,
    old_properties: dict[str, Any],
) -> ProfileUpdate | None:
    """The fields a row changes on an existing profile; empty cells change nothing."""
    changes: list[FieldChange] = []
    email, name = old_email, old_name
    if row.email is not None and row.email != old_email:
        changes.append(FieldChange(EMAIL, old_email, row.email))
        email = row.email
    if row.name is not None and row.name != old_name:
        changes.append(FieldChange(NAME, old_name, row.name))
        name = row.name
    properties = old_properties
    for key, value in row.properties.items():
        old_value = old_properties.get(key)
        if property_text(old_value) != value:
            changes.append(FieldChange(key, old_value, value))
            if properties is old_properties:  # copy on first write: the old one is shared
                properties = dict(old_properties)
            properties[key] = value
    if not changes:
        return None
    return ProfileUpdate(row.line, row.identity, pid, email, name, properties, tuple(changes))


@bulk.paused_gc()
def plan_parsed(
    session: Session,
    parsed: ParsedCsv,
    *,
    overwrite_unsubscribes: bool,
    reason: str | None,
    lock: bool,
    progress: Progress | None = None,
) -> ImportPlan:
    """Compare the rows with the store as this session sees it."""
    groups = {group.id: group for group in all_groups(session)}
    if any(gid not in groups for gid in parsed.group_ids):  # cannot happen: groups stay
        raise ImportOutdated("A group the file names is gone; read the file again")
    columns = [(gid, groups[gid].name) for gid in parsed.group_ids]
    profiles_stored = bulk.fetch(session, "SELECT COUNT(*) FROM profile")[0][0]
    identities = [row.identity for row in parsed.rows]
    profile_sql = "SELECT identity, id, email, name, properties, all_email FROM profile"
    if _read_all(session, profiles_stored, len(identities)):
        named = set(identities)
        found_rows = [row for row in bulk.fetch(session, profile_sql) if row[0] in named]
    else:
        found_rows = bulk.select_where_in(
            session, profile_sql + " WHERE identity", identities, lock=lock
        )
    existing = {
        identity: (pid, email, name, properties, all_email)
        for identity, pid, email, name, properties, all_email in found_rows
    }
    stored: dict[int, dict[int, str]] = {}  # profile id -> group id -> stored state
    if columns and existing:
        wanted = set(parsed.group_ids)
        if _read_all(session, profiles_stored, 2 * len(existing)):
            # Most of the store: the file's groups' states, read through their index.
            pids = {found[0] for found in existing.values()}
            marks = ", ".join("?" * len(wanted))
            state_rows = [
                row
                for row in bulk.fetch(
                    session,
                    "SELECT profile_id, group_id, state FROM group_state "
                    f"WHERE group_id IN ({marks})",
                    sorted(wanted),
                )
                if row[0] in pids
            ]
        else:
            # By profile only (the primary key's prefix): faster than naming the groups too.
            state_rows = bulk.select_where_in(
                session,
                "SELECT profile_id, group_id, state FROM group_state WHERE profile_id",
                [found[0] for found in existing.values()],
            )
        for pid, gid, state in state_rows:
            if gid in wanted:
                stored.setdefault(pid, {})[gid] = state
    new_profiles: list[NewProfile] = []
    updates: list[ProfileUpdate] = []
    changes: list[PlannedChange] = []
    kept: list[KeptUnsubscribed] = []
    decoded: dict[str, dict[str, Any]] = {}
    total = len(parsed.rows)
    # tuple.__new__ skips the named tuples' Python-level __new__ (hot: once a state).
    make = tuple.__new__
    for done, row in enumerate(parsed.rows, start=1):
        line, identity, email, name, all_email, states, properties = row
        if progress and done % CHUNK == 0:
            progress("planning", done, total)
        found = existing.get(identity)
        if found is None:
            new_profiles.append(make(NewProfile, (line, identity, email, name or "", properties)))
            if all_email == UNSUBSCRIBED:
                changes.append(
                    PlannedChange(line, identity, None, None, None, SUBSCRIBED, UNSUBSCRIBED, False)
                )
            for (gid, gname), state in zip(columns, states, strict=False):
                if state is not None:
                    changes.append(
                        make(PlannedChange, (line, identity, None, gid, gname, None, state, False))
                    )
            continue
        pid, old_email, old_name, old_properties, old_all = found
        old_properties = stored_properties(old_properties, decoded)
        if (
            (email is not None and email != old_email)
            or (name is not None and name != old_name)
            or (properties and not properties.items() <= old_properties.items())
        ):
            update_ = _profile_update(row, pid, old_email, old_name, old_properties)
            if update_ is not None:  # None: a stored 7 and a cell "7" are the same
                updates.append(update_)
        mine = stored.get(pid, {})
        cells: list[tuple[int | None, str | None, str | None, str]] = []
        if all_email:
            cells.append((None, None, old_all, all_email))
        cells += [
            (gid, gname, mine.get(gid), state)
            for (gid, gname), state in zip(columns, states, strict=False)
            if state is not None
        ]
        for group_id, group_name, old, new in cells:
            if old == new:
                continue
            if old != UNSUBSCRIBED or overwrite_unsubscribes:
                overwrites = old == UNSUBSCRIBED
                changes.append(
                    make(
                        PlannedChange,
                        (line, identity, pid, group_id, group_name, old, new, overwrites),
                    )
                )
            else:
                kept.append(KeptUnsubscribed(line, identity, group_id, group_name))
    shared = _shared_addresses(session, parsed, existing, profiles_stored)
    if progress:
        progress("planning", total, total)
    return ImportPlan(
        file=parsed.file,
        rows=total,
        new_profiles=new_profiles,
        updated_profiles=updates,
        state_changes=changes,
        kept_unsubscribed=kept,
        overwrite_unsubscribes=overwrite_unsubscribes,
        reason=reason,
        parsed=parsed,
        shared_addresses=shared,
    )


def plan_import(
    *,
    session: Session,
    source: Source,
    overwrite_unsubscribes: bool = False,
    reason: str | None = None,
    progress: Progress | None = None,
) -> ImportPlan:
    """Read and check the whole file, then plan it against the store; writes nothing.

    Raises ``CsvError`` for a bad file, ``InvalidInput`` for an overwrite
    without a reason (or a reason without an overwrite).
    """
    cleaned = clean_overwrite(overwrite_unsubscribes, reason)
    parsed = read_csv(source, groups=all_groups(session), progress=progress)
    return plan_parsed(
        session, parsed, overwrite_unsubscribes=overwrite_unsubscribes, reason=cleaned,
        lock=bool(session.info.get("write")), progress=progress,
    )  # fmt: skip
