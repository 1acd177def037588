"""Writing an import: the plan made again in one write transaction, then written (step 3).

``apply_import`` writes a previewed plan, refusing with ``ImportOutdated``
if the store changed since the preview; ``import_profiles`` reads, plans
and writes in one call (a dry run stops after the plan). New profiles go
in through ``bulk.insert_profiles`` and every state change through
``subscriptions.apply_changes``, with its ledger event (Source ``import``),
a chunk at a time so the import can report progress and be cancelled.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.core import actors, bulk, clock, ledger, migrations
from app.core.csv_io.fingerprint import check_unchanged
from app.core.csv_io.format import CHUNK, EMAIL, NAME, Cancel, Progress, Source, all_groups
from app.core.csv_io.planning import ImportPlan, ProfileUpdate, clean_overwrite, plan_parsed
from app.core.csv_io.reading import read_csv
from app.core.erasure import keep_suppressed
from app.core.errors import ImportCancelled, ImportOutdated
from app.core.models import SUBSCRIBED, email_key
from app.core.store import Store
from app.core.subscriptions import apply_changes

SOURCE = "import"

# Imports of at least this many rows give the planner fresh statistics afterwards.
ANALYZE_ROWS = 50_000

# An updated profile's changed fields only: a renamed person's row is rewritten,
# but not the email indexes' entries (SQLite touches an index only when the
# statement sets one of its columns). One statement per set of fields.
_UPDATED_COLUMNS = {
    "email": ("email", "email_key"),
    "name": ("name",),
    "properties": ("properties",),
}
_UPDATES: dict[tuple[str, ...], tuple[Any, tuple[str, ...]]] = {}


def _profile_update(fields: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
    """The UPDATE of these fields (email, name, properties) and its keys, id last."""
    found = _UPDATES.get(fields)
    if found is None:
        columns = [column for name in fields for column in _UPDATED_COLUMNS[name]]
        statement = (
            update(bulk.PROFILE)
            .where(bulk.PROFILE.c.id == bindparam("b_id"))
            .values({column: bindparam(f"b_{column}") for column in columns})
        )
        found = _UPDATES[fields] = (statement, (*(f"b_{c}" for c in columns), "b_id"))
    return found


def _changed_fields(update_: ProfileUpdate) -> tuple[str, ...]:
    changed = {change.column for change in update_.changes}
    fields = []
    if EMAIL in changed:
        fields.append("email")
    if NAME in changed:
        fields.append("name")
    if changed - {EMAIL, NAME}:
        fields.append("properties")
    return tuple(fields)


@dataclass(frozen=True)
class ImportResult:
    """What an import did, or for a dry run would do; ``events`` is the ledger events written."""

    plan: ImportPlan
    dry_run: bool
    events: int
    seconds: float

    def to_json(self, *, details: bool = False) -> dict[str, Any]:
        out = {"dry_run": self.dry_run, **self.plan.summary_json(), "events": self.events}
        if details:
            out.update(self.plan.details_json())
        return out


def _write(
    session: Session,
    plan: ImportPlan,
    *,
    actor: str,
    progress: Progress | None,
    cancel: Cancel | None,
) -> int:
    """Write a plan made in this same transaction; returns the number of ledger events."""
    now = clock.now()
    total = len(plan.new_profiles) + len(plan.updated_profiles) + len(plan.state_changes)
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if cancel is not None and cancel():
            raise ImportCancelled(f"The import of {plan.file} was cancelled; nothing was written")
        if progress:
            progress("writing", done, total)

    advance(0)
    # Plain tuples rather than the named ones (NewProfileRow, StateChange): a third of
    # the cost to make, once a row and once a state change.
    ids = bulk.insert_profiles(
        session=session,
        profiles=[
            (identity, email, name, properties, SUBSCRIBED, now)
            for _, identity, email, name, properties in plan.new_profiles
        ],
        chunk_size=CHUNK,
        after_chunk=advance,
    )
    writer = bulk.BulkWriter(session)
    to_json = writer.processor(bulk.PROFILE, "properties")
    for chunk in bulk.chunks(plan.updated_profiles, CHUNK):
        by_fields: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for u in chunk:
            fields = _changed_fields(u)
            values: list[Any] = []
            if "email" in fields:
                values += (u.email, email_key(u.email))
            if "name" in fields:
                values.append(u.name)
            if "properties" in fields:
                values.append(to_json(u.properties))
            values.append(u.profile_id)
            by_fields.setdefault(fields, []).append(tuple(values))
        for fields, rows in by_fields.items():
            writer.run(*_profile_update(fields), rows)
        advance(len(chunk))
    names: dict[int | None, str | None] = {group.id: group.name for group in all_groups(session)}
    names[None] = None
    reason = plan.reason  # only an overwritten unsubscribe carries the import's reason
    events = 0
    for chunk in bulk.chunks(plan.state_changes, CHUNK):
        changes = [
            (
                ids[identity] if pid is None else pid,
                identity,
                gid,
                names[gid],
                old,
                new,
                reason if overwrites else None,
                None,
            )
            for _, identity, pid, gid, _, old, new, overwrites in chunk
        ]
        events += apply_changes(
            session=session, changes=changes, source=SOURCE, actor=actor, now=now
        )
        advance(len(chunk))
    # Addresses of erased people: their new profiles start out of all email.
    events += keep_suppressed(
        session=session,
        people=[(ids[identity], identity, email) for _, identity, email, _, _ in plan.new_profiles]
        + [
            (u.profile_id, u.identity, u.email)
            for u in plan.updated_profiles
            if "email" in _changed_fields(u)
        ],
        source=SOURCE,
        actor=actor,
        now=now,
    )
    if not total:
        return 0  # nothing changes: the store, its ledger included, stays as it was
    ledger.record(
        session,
        name=ledger.PROFILES_IMPORTED,
        source=SOURCE,
        actor=actor,
        now=now,
        properties={
            "File": Path(plan.file).name,
            "Rows": plan.rows,
            "New Profiles": len(plan.new_profiles),
            "Updated Profiles": len(plan.updated_profiles),
            "State Changes": len(plan.state_changes),
            "Kept Unsubscribed": len(plan.kept_unsubscribed),
            "Overwritten Unsubscribes": plan.overwritten_unsubscribes,
            "Reason": plan.reason,
        },
    )
    if plan.rows >= ANALYZE_ROWS:  # the tables grew or changed a lot: fresh statistics
        migrations.analyze(session.connection())
    return events


@bulk.paused_gc()
def _write_or_refuse(
    session: Session,
    plan: ImportPlan,
    *,
    actor: str,
    progress: Progress | None,
    cancel: Cancel | None,
) -> int:
    try:
        with bulk.large_page_cache(session):
            return _write(session, plan, actor=actor, progress=progress, cancel=cancel)
    except IntegrityError as exc:  # another writer created one of the new identities meanwhile
        raise ImportOutdated(
            f"Another writer added profiles of {plan.file} during the import; nothing was written, "
            "import it again"
        ) from exc


def apply_import(
    *,
    store: Store,
    plan: ImportPlan,
    actor: str,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> ImportResult:
    """Write a previewed plan in one write transaction, with its ledger events.

    The plan is made again inside the transaction: if the store changed
    since the preview (another admin, the landing page), the import is
    refused with ``ImportOutdated`` and nothing is written. The file is not
    read again: the plan holds its rows. If the file changed since the preview
    (its size, time and then its SHA-256 compared), the import is refused
    with ``ImportFileChanged`` and nothing is written.
    """
    started = time.perf_counter()
    check_unchanged(plan.parsed.fingerprint, file=plan.file)
    with store.write() as session:
        actors.require(session, actors.EDITOR, "importing profiles")
        fresh = plan_parsed(
            session, plan.parsed, overwrite_unsubscribes=plan.overwrite_unsubscribes,
            reason=plan.reason, lock=True,
        )  # fmt: skip
        if not fresh.same_as(plan):
            raise ImportOutdated(
                f"The store changed since {plan.file} was previewed (profiles or states were "
                "changed meanwhile); preview it again"
            )
        events = _write_or_refuse(session, fresh, actor=actor, progress=progress, cancel=cancel)
    return ImportResult(fresh, dry_run=False, events=events, seconds=time.perf_counter() - started)


def import_profiles(
    *,
    store: Store,
    source: Source,
    actor: str,
    dry_run: bool = False,
    overwrite_unsubscribes: bool = False,
    reason: str | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> ImportResult:
    """Import a profile CSV: all of it, or (a bad file) nothing; a dry run only plans.

    The file is read and checked before the write transaction begins, so the
    store's write lock is held only while planning and writing.
    """
    started = time.perf_counter()
    cleaned = clean_overwrite(overwrite_unsubscribes, reason)
    with store.read() as session:
        if not dry_run:  # a dry run writes nothing: anyone may preview
            actors.require(session, actors.EDITOR, "importing profiles")
        groups = all_groups(session)
    parsed = read_csv(source, groups=groups, progress=progress)
    if dry_run:
        with store.read() as session:
            plan = plan_parsed(
                session, parsed, overwrite_unsubscribes=overwrite_unsubscribes, reason=cleaned,
                lock=False, progress=progress,
            )  # fmt: skip
        return ImportResult(plan, dry_run=True, events=0, seconds=time.perf_counter() - started)
    with store.write() as session:
        plan = plan_parsed(
            session, parsed, overwrite_unsubscribes=overwrite_unsubscribes, reason=cleaned,
            lock=True, progress=progress,
        )  # fmt: skip
        events = _write_or_refuse(session, plan, actor=actor, progress=progress, cancel=cancel)
    return ImportResult(plan, dry_run=False, events=events, seconds=time.perf_counter() - started)
