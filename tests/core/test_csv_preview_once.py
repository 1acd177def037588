"""A previewed import reads its file once (issue 10, ask 5).

The console previews a file, then imports the plan it previewed: the rows
come from the preview, the file is not opened again. If the file changed
since the preview (or is gone), the import is refused with a message that
says so, and nothing is written; a file only touched is still the same file.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from app.core import csv_io, groups
from app.core.csv_io import ImportFileChanged
from app.core.models import Event, GroupState, Profile
from app.core.store import Store

ACTOR = "ada"
TEXT = (
    "identity,email,name,group:Newsletter\n"
    "C1,ann@example.com,Ann,subscribed\n"
    "C2,bob@example.org,Bob,unsubscribed\n"
)
# The same size as TEXT, other people.
OTHER = TEXT.replace("Ann", "Eve").replace("Bob", "Zed")

_opened: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _opened and isinstance(args[0], (str, bytes, os.PathLike)):
        _opened[-1].append(os.fsdecode(args[0]))


_hooked = False


@contextmanager
def files_opened() -> Iterator[list[str]]:
    """The paths Python opens meanwhile (an audit hook: it sees every open)."""
    global _hooked
    if not _hooked:  # audit hooks cannot be removed: one for the whole run
        sys.addaudithook(_audit)
        _hooked = True
    _opened.append([])
    try:
        yield _opened[-1]
    finally:
        _opened.pop()


@pytest.fixture
def newsletter(store: Store) -> None:
    with store.write() as session:
        groups.create_group(session=session, name="Newsletter", actor=ACTOR)


def contents(store: Store) -> tuple[list[tuple[str, str]], int, int]:
    """(identity, name) of every profile, stored states and ledger events."""
    with store.read() as session:
        people = sorted((p.identity, p.name) for p in session.exec(select(Profile)).all())
        states = session.exec(select(func.count()).select_from(GroupState)).one()
        events = session.exec(select(func.count()).select_from(Event)).one()
    return people, int(states), int(events)


def preview(store: Store, path: Path) -> csv_io.ImportPlan:
    with store.read() as session:
        return csv_io.plan_import(session=session, source=path)


def test_the_import_writes_the_previewed_rows_without_opening_the_file_again(
    store: Store, newsletter: None, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(TEXT, encoding="utf-8")
    with files_opened() as opened:
        plan = preview(store, path)
    assert opened.count(str(path)) == 1

    with files_opened() as opened:
        result = csv_io.apply_import(store=store, plan=plan, actor=ACTOR)

    assert str(path) not in opened and str(path.resolve()) not in opened
    assert result.events == 2
    assert contents(store) == ([("C1", "Ann"), ("C2", "Bob")], 2, 4)  # group, 2 states, import


def test_a_file_changed_since_the_preview_is_refused_and_nothing_is_written(
    store: Store, newsletter: None, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(TEXT, encoding="utf-8")
    plan = preview(store, path)
    path.write_text(OTHER, encoding="utf-8")  # same size, other bytes
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    before = contents(store)

    with pytest.raises(ImportFileChanged) as refused:
        csv_io.apply_import(store=store, plan=plan, actor=ACTOR)

    assert str(refused.value) == (
        f"{path} changed since it was previewed (the same size, {len(TEXT):,} bytes, but "
        f"other contents); nothing was imported; preview {path} again"
    )
    assert contents(store) == before == ([], 0, 1)  # the group's creation only


def test_a_file_grown_or_gone_since_the_preview_is_refused(
    store: Store, newsletter: None, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(TEXT, encoding="utf-8")
    plan = preview(store, path)
    with path.open("a", encoding="utf-8") as more:
        more.write("C3,cy@example.com,Cy,subscribed\n")
    with pytest.raises(ImportFileChanged, match=r"bytes then, .* now\); nothing was imported"):
        csv_io.apply_import(store=store, plan=plan, actor=ACTOR)

    path.unlink()
    with pytest.raises(ImportFileChanged, match="is gone since it was previewed"):
        csv_io.apply_import(store=store, plan=plan, actor=ACTOR)
    assert contents(store) == ([], 0, 1)


def test_a_file_only_touched_since_the_preview_is_imported(
    store: Store, newsletter: None, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(TEXT, encoding="utf-8")
    plan = preview(store, path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))

    result = csv_io.apply_import(store=store, plan=plan, actor=ACTOR)

    assert result.events == 2 and contents(store)[0] == [("C1", "Ann"), ("C2", "Bob")]


@pytest.mark.parametrize("read_all", [True, False])
def test_the_plan_is_the_same_whether_tables_are_read_whole_or_looked_up(
    store: Store, newsletter: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_all: bool
) -> None:
    """A file naming most of the store is planned from whole tables on SQLite (fewer
    lookups); the plan is the one the lookups give."""
    first = tmp_path / "first.csv"
    first.write_text(TEXT + "C3,cy@example.com,Cy,\nC4,dee@example.com,Dee,unsubscribed\n")
    csv_io.import_profiles(store=store, source=first, actor=ACTOR)
    second = tmp_path / "second.csv"
    second.write_text(
        "identity,email,name,group:Newsletter\n"
        "C1,ann@example.com,Ann B,unsubscribed\n"  # renamed, leaves
        "C2,,,subscribed\n"  # kept unsubscribed
        "C4,,,\n"  # nothing
        "C5,CY@example.com ,Cy's twin,subscribed\n"  # new, shares Cy's address
    )
    with store.read() as session:
        expected = csv_io.plan_import(session=session, source=second)
    monkeypatch.setattr(csv_io.planning, "_read_all", lambda *args: read_all)

    with store.read() as session:
        plan = csv_io.plan_import(session=session, source=second)

    assert plan.same_as(expected) and plan.shared_addresses == expected.shared_addresses
    assert [u.identity for u in plan.updated_profiles] == ["C1"]
    assert [(c.identity, c.new) for c in plan.state_changes] == [
        ("C1", "unsubscribed"), ("C5", "subscribed"),
    ]  # fmt: skip
    assert [k.identity for k in plan.kept_unsubscribed] == ["C2"]
    assert [a.identities for a in plan.shared_addresses] == [("C3", "C5")]


def planner_rows(store: Store) -> float:
    """The profile table's size as the planner's statistics say (0: never analysed)."""
    with store.read() as session:
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            found = connection.exec_driver_sql(
                "SELECT stat FROM sqlite_stat1 WHERE tbl = 'profile'"
                if connection.exec_driver_sql(
                    "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
                ).first()
                else "SELECT NULL WHERE 0"
            ).first()
            return float(found[0].split()[0]) if found else 0.0
        return float(
            connection.exec_driver_sql(
                "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = 'profile'::regclass"
            ).scalar_one()
        )


def test_a_large_import_gives_the_planner_fresh_statistics(
    store: Store, newsletter: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_text("identity,name\nS1,Sam\n")
    large.write_text(TEXT + "C3,cy@example.com,Cy,\n")
    monkeypatch.setattr(csv_io.writing, "ANALYZE_ROWS", 3)
    csv_io.import_profiles(store=store, source=small, actor=ACTOR)  # 1 row: not analysed
    assert planner_rows(store) == 0

    csv_io.import_profiles(store=store, source=large, actor=ACTOR)

    assert planner_rows(store) == 4
