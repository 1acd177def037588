"""Exporting profiles as a profile CSV, one that imports back unchanged.

Cells a spreadsheet would run as a formula get a ``'`` before them
(``format.defuse_cell``); the import takes it off again.

Profiles are read a range of ids (or a chunk of identities) at a time
through the DBAPI cursor, so a million of them never sit in memory at once.
"""

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

from sqlalchemy import Text, cast, func, select
from sqlmodel import Session

from app.core import bulk
from app.core.csv_io.format import (
    ALL_EMAIL,
    CHUNK,
    EMAIL,
    GROUP_PREFIX,
    IDENTITY,
    NAME,
    Progress,
    all_groups,
    defuse_cell,
    property_text,
    stored_properties,
)


def export_profiles(
    *,
    session: Session,
    dest: IO[str],
    identities: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> int:
    """Write profiles as a profile CSV (all of them, or those named); returns how many.

    Columns: identity, email, name, the properties (sorted), all_email, and
    one ``group:`` column per group, archived ones included (by id), holding
    the stored state (empty: never set). Importing the file into the same
    store changes nothing; into an empty store with the same groups, it
    recreates the profiles and their stored states.
    """
    groups = all_groups(session)
    position = {group.id: index for index, group in enumerate(groups)}
    wanted = None if identities is None else sorted(set(identities))
    # The header needs every property name first: one pass over the distinct values.
    keys: set[str] = set()
    total = 0
    text = cast(bulk.PROFILE.c.properties, Text)
    distinct = select(text, func.count()).group_by(text)
    for where in _batches(session, wanted):
        for properties, count in session.execute(distinct.where(where)):
            keys.update(json.loads(properties) if properties else {})
            total += count
    property_names = sorted(keys)
    writer = csv.writer(dest, lineterminator="\n")
    groups_header = [GROUP_PREFIX + group.name for group in groups]
    header = [IDENTITY, EMAIL, NAME, *map(defuse_cell, property_names), ALL_EMAIL]
    writer.writerow([*header, *groups_header])
    blank = [""] * len(groups)
    decoded: dict[str, dict[str, Any]] = {}
    columns = "SELECT id, identity, email, name, properties, all_email FROM profile WHERE"
    written = 0
    for low, high, chunk in _export_batches(session, wanted):
        if chunk is None:
            profiles = bulk.fetch(session, f"{columns} id BETWEEN ? AND ? ORDER BY id", [low, high])
        else:
            profiles = sorted(bulk.select_where_in(session, f"{columns} identity", chunk))
        if not profiles:
            continue
        states: dict[int, list[str]] = {}
        if chunk is None:
            found = bulk.fetch(
                session,
                "SELECT profile_id, group_id, state FROM group_state "
                "WHERE profile_id BETWEEN ? AND ?",
                [low, high],
            )
        else:
            found = bulk.select_where_in(
                session,
                "SELECT profile_id, group_id, state FROM group_state WHERE profile_id",
                [row[0] for row in profiles],
            )
        for pid, gid, state in found:
            states.setdefault(pid, blank.copy())[position[gid]] = state
        rows = []
        for pid, identity, email, name, properties, all_email in profiles:
            stored = stored_properties(properties, decoded)
            values = [defuse_cell(property_text(stored.get(key))) for key in property_names]
            rows.append(
                [
                    defuse_cell(identity), defuse_cell(email or ""), defuse_cell(name or ""),
                    *values, all_email, *states.get(pid, blank),
                ]
            )  # fmt: skip
        writer.writerows(rows)
        written += len(rows)
        if progress:
            progress("exporting", written, total)
    return written


def _batches(session: Session, identities: list[str] | None) -> Iterator[Any]:
    """WHERE clauses covering the profiles to export, about ``CHUNK`` at a time."""
    for low, high, chunk in _export_batches(session, identities):
        if chunk is None:
            yield bulk.PROFILE.c.id.between(low, high)
        else:
            yield bulk.PROFILE.c.identity.in_(chunk)


def _export_batches(
    session: Session, identities: list[str] | None
) -> Iterator[tuple[int, int, Sequence[str] | None]]:
    """(low id, high id, None) ranges of about ``CHUNK`` profiles, or (0, 0, identities) chunks."""
    if identities is not None:
        for chunk in bulk.chunks(identities, bulk.IN_CHUNK):
            yield 0, 0, chunk
        return
    low, high = session.execute(
        select(func.min(bulk.PROFILE.c.id), func.max(bulk.PROFILE.c.id))
    ).one()
    if low is None:
        return
    for begin in range(int(low), int(high) + 1, CHUNK):
        yield begin, begin + CHUNK - 1, None
