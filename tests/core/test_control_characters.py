"""Control characters and spreadsheet formulas (issue 8, points 8 and 9).

Point 8: a control character (C0, DEL, C1, U+2028/9) in an identity, a name,
a description or a property is refused by the services every entry point
calls, with where it is; nothing is written. Point 9: an exported cell that
a spreadsheet would run as a formula starts with ``'``; the import takes
that ``'`` off again, so an export imports back unchanged.
"""

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from app.core import csv_io, groups, profiles, segments, text_rules
from app.core.csv_io import CsvError
from app.core.errors import InvalidInput
from app.core.models import Event, Profile
from app.core.store import Store, open_store

ACTOR = "ada"
TITLE = "\x1b]0;owned\x07"  # retitles an xterm-like terminal


def write(tmp_path: Path, text: str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def everything(store: Store) -> tuple[list[Any], int]:
    with store.read() as session:
        people = [(p.identity, p.name) for p in session.exec(select(Profile)).all()]
        events = len(session.exec(select(Event)).all())
    return people, events


# --- point 8: refused on the way in -----------------------------------------------


def test_an_import_with_an_escape_in_a_name_and_a_newline_in_an_identity_is_refused(
    store: Store, tmp_path: Path
) -> None:
    """Both problems named with line and column; the good row is not imported either."""
    path = write(
        tmp_path,
        "identity,email,name\n"
        "ok@example.com,ok@example.com,Fine\n"
        f"kaito@example.com,kaito@example.com,Kaito{TITLE}\n"
        '"mallory\n2026-01-01 Channel Unsubscribed",m@example.com,Mal\n',
    )
    before = everything(store)
    with pytest.raises(CsvError) as caught:
        csv_io.import_profiles(store=store, source=path, actor=ACTOR)
    problems = caught.value.problems
    assert [(p.line, p.column_number, p.column) for p in problems] == [
        (3, 3, "name"),
        (4, 1, "identity"),
    ]
    assert "ESC (U+001B), at character 6" in problems[0].message
    assert "newline (U+000A), at character 8" in problems[1].message
    assert "nothing was imported" in str(caught.value)
    assert everything(store) == before


@pytest.mark.parametrize(
    ("column", "cell"),
    [
        ("email", "a\x1b@example.com"),
        ("country", "N\x9bZ"),  # C1: CSI
        ("country", "A\u2028B"),
        ("country", "tab\there"),
    ],
)
def test_controls_in_emails_and_property_values_are_refused(
    sqlite_store: Store, tmp_path: Path, column: str, cell: str
) -> None:
    path = write(tmp_path, 'identity,email,country\nk@example.com,k@example.com,x\nb,,""\n')
    text = path.read_text().replace('""', f'"{cell}"' if column == "country" else '""')
    if column == "email":
        text = text.replace("b,,", f"b,{cell},")
    path.write_text(text, encoding="utf-8", newline="")
    with pytest.raises(CsvError) as caught:
        csv_io.import_profiles(store=sqlite_store, source=path, actor=ACTOR)
    [problem] = caught.value.problems
    assert (problem.line, problem.column) == (3, column)
    assert "control character" in problem.message
    assert everything(sqlite_store) == ([], 0)


def test_a_control_in_a_property_name_is_refused_and_shown_escaped(
    sqlite_store: Store, tmp_path: Path
) -> None:
    path = write(tmp_path, f"identity,plan{TITLE}\nk@example.com,pro\n")
    with pytest.raises(CsvError) as caught:
        csv_io.import_profiles(store=sqlite_store, source=path, actor=ACTOR)
    [problem] = caught.value.problems
    assert (problem.line, problem.column_number) == (1, 2)
    assert "ESC (U+001B)" in problem.message
    # The message a terminal prints holds no raw control character.
    assert not text_rules.has_control(str(caught.value))
    assert "\\x1b" in str(caught.value)


def test_the_profile_service_refuses_controls(sqlite_store: Store) -> None:
    with sqlite_store.write() as session:
        for kwargs, field in [
            ({"identity": "a\nb"}, "identity"),
            ({"identity": "a", "name": f"Kaito{TITLE}"}, "name"),
            ({"identity": "a", "properties": {"plan\x1b": "pro"}}, "properties"),
            ({"identity": "a", "properties": {"plan": "\x1b[2J"}}, "properties"),
        ]:
            with pytest.raises(InvalidInput) as caught:
                profiles.create_profile(session=session, **kwargs)
            assert caught.value.field == field
            assert "control character" in caught.value.message


def test_group_descriptions_and_segment_names_refuse_controls(sqlite_store: Store) -> None:
    with sqlite_store.write() as session:
        with pytest.raises(InvalidInput) as caught:
            groups.create_group(
                session=session, name="News", description="line one\nline two", actor=ACTOR
            )
        assert caught.value.field == "description"
        assert "newline (U+000A)" in caught.value.message
        group = groups.create_group(session=session, name="News", actor=ACTOR)
        assert group.id is not None
        with pytest.raises(InvalidInput) as caught:
            groups.update_group(
                session=session, group_id=group.id, description=f"x{TITLE}", actor=ACTOR
            )
        assert caught.value.field == "description"
        with pytest.raises(InvalidInput):
            segments.save_segment(
                session=session, name=f"VIPs{TITLE}", rule=segments.SegmentRule(()), actor=ACTOR
            )


def test_shown_makes_every_control_visible() -> None:
    assert text_rules.shown(f"a\nb{TITLE}\x9b\u2028") == "a\\nb\\x1b]0;owned\\x07\\x9b\\u2028"
    assert text_rules.shown("Zoë 🙂 ‍") == "Zoë 🙂 ‍"  # not controls: unchanged
    assert text_rules.shown_lines("a\nb\x1b") == "a\nb\\x1b"


# --- point 9: formulas defused on the way out, restored on the way in -----------


FORMULA = '=HYPERLINK("http://x","y")'


def test_formula_cells_are_defused_in_the_export_and_import_back_unchanged(
    store: Store, tmp_path: Path
) -> None:
    people = [
        ("ann@example.com", FORMULA, {"score": "-3", "note": "+1 call"}),
        ("@bob", "@SUM(A1)", {"score": "'=quoted already", "note": "plain"}),
        ("cy@example.com", "Cy", {"score": "''-2", "note": "'just a quote"}),
    ]
    with store.write() as session:
        for identity, name, props in people:
            profiles.create_profile(session=session, identity=identity, name=name, properties=props)
    out = io.StringIO()
    with store.read() as session:
        csv_io.export_profiles(session=session, dest=out)
    rows = {row["identity"]: row for row in csv.DictReader(io.StringIO(out.getvalue()))}
    # What a spreadsheet reads: text, never a formula.
    assert rows["ann@example.com"]["name"] == "'" + FORMULA
    assert rows["ann@example.com"]["score"] == "'-3"
    assert rows["ann@example.com"]["note"] == "'+1 call"
    assert "'@bob" in rows and rows["'@bob"]["name"] == "'@SUM(A1)"
    assert rows["'@bob"]["score"] == "''=quoted already"
    assert rows["cy@example.com"]["score"] == "'''-2"
    assert rows["cy@example.com"]["note"] == "'just a quote"  # no formula: as it is
    for row in rows.values():
        for cell in row.values():
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r")

    path = tmp_path / "export.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    fresh = open_store(tmp_path / "fresh.db")
    try:
        csv_io.import_profiles(store=fresh, source=path, actor=ACTOR)
        with fresh.read() as session:
            back = {p.identity: (p.name, p.properties) for p in session.exec(select(Profile)).all()}
    finally:
        fresh.dispose()
    assert back == {identity: (name, props) for identity, name, props in people}
