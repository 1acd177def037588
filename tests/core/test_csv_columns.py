"""Rows are checked a chunk at a time, column by column (issue 10, ask 5), and each
problem still names its line and column, in file order, whatever the chunks."""

from pathlib import Path

import pytest

from app.core import csv_io, groups
from app.core.csv_io import CsvError
from app.core.models import Group
from app.core.store import Store

HEADER = "identity,email,country,all_email,group:Newsletter,name"
ROWS = [
    "A1,a1@example.com,DE,,subscribed,Ann",
    "A2,not-an-email,FR,maybe,,Bob",  # email, all_email
    "A3,a3@example.com,PL,,perhaps," + "x" * 201,  # the group, the name
    "A1,a4@example.com,\x07bell,,,Dup",  # identity (duplicate), property (control)
    "A5,a5@example.com,SE,,,Eve,extra",  # too wide
    ",a6@example.com,ES,,,",  # no identity
    "A7,'=a7@example.com,IT,UNSUBSCRIBED, subscribed ,Gus",  # good: cleaned
]
EXPECTED = [
    ("line 3, column 2 (email)", "'not-an-email' is not an email address (one @, a dotted "
     "domain, no spaces, at most 320 characters)"),
    ("line 3, column 4 (all_email)", "'maybe' is not a state; use subscribed, unsubscribed, "
     "or leave the cell empty"),
    ("line 4, column 6 (name)", "the name is 201 characters long; the most is 200"),
    ("line 4, column 5 (group:Newsletter)", "'perhaps' is not a state; use subscribed, "
     "unsubscribed, or leave the cell empty"),
    ("line 5, column 1 (identity)", "identity 'A1' is also on line 2; a profile may appear once"),
    ("line 5, column 3 (country)", "the value holds a control character, BEL (U+0007), at "
     "character 1; control characters (tab, newline, escape …) are not allowed"),
    ("line 6, column 7", "the row has 7 cells but the header has 6 columns"),
    ("line 7, column 1 (identity)", "the identity is empty; every row needs one"),
]  # fmt: skip


@pytest.fixture
def newsletter(store: Store) -> list[Group]:
    with store.write() as session:
        groups.create_group(session=session, name="Newsletter", actor="ada")
    with store.read() as session:
        return csv_io.format.all_groups(session)


@pytest.mark.parametrize("chunk", [1, 2, 3, 5_000])
def test_every_problem_is_named_by_line_and_column_in_file_order(
    newsletter: list[Group], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(csv_io.reading, "CHUNK", chunk)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")

    with pytest.raises(CsvError) as refused:
        csv_io.read_csv(path, groups=newsletter)

    found = [(p.where, p.message) for p in refused.value.problems]
    # The name is checked before the group (as ever): its message comes first.
    assert found == EXPECTED


@pytest.mark.parametrize("chunk", [1, 2, 5_000])
def test_good_rows_come_back_cleaned_whatever_the_chunks(
    newsletter: list[Group], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(csv_io.reading, "CHUNK", chunk)
    path = tmp_path / "good.csv"
    path.write_text("\n".join([HEADER, ROWS[0], ROWS[6], "A8,,,,,"]) + "\n", encoding="utf-8")

    parsed = csv_io.read_csv(path, groups=newsletter)

    assert [tuple(row) for row in parsed.rows] == [
        (2, "A1", "a1@example.com", "Ann", None, ("subscribed",), {"country": "DE"}),
        (3, "A7", "=a7@example.com", "Gus", "unsubscribed", ("subscribed",), {"country": "IT"}),
        (4, "A8", None, None, None, (None,), {}),
    ]
