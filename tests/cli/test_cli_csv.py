"""``subgroups profiles import`` and ``profiles export``: summaries, exit codes, messages."""

import io
import json
from pathlib import Path

import pytest
from cli_runner import CliRunner
from sqlalchemy import func
from sqlmodel import select

from app.core import groups
from app.core.models import Event, GroupState, Profile
from app.core.store import open_store

CSV = (
    "identity,email,name,country,all_email,group:Newsletter,group:Promotions\n"
    "C1,ann@example.com,Ann,DE,,unsubscribed,subscribed\n"
    "C2,bob@example.org,Bob,,unsubscribed,,\n"
    "C3,,Cy,FR,,unsubscribed,\n"
)


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A store with Newsletter (opt-out) and Promotions (opt-in)."""
    path = str(tmp_path / "cli.db")
    store = open_store(path)
    with store.write() as session:
        groups.create_group(session=session, name="Newsletter", actor="ada")
        groups.create_group(session=session, name="Promotions", policy="opt-in", actor="ada")
    store.dispose()
    return path


def write(tmp_path: Path, text: str, name: str = "people.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def counts(db: str) -> tuple[int, int, int]:
    """Profiles, stored states and events."""
    store = open_store(db)
    try:
        with store.read() as session:
            return tuple(  # type: ignore[return-value]
                int(session.exec(select(func.count()).select_from(table)).one())
                for table in (Profile, GroupState, Event)
            )
    finally:
        store.dispose()


def test_a_dry_run_reports_the_changes_and_writes_nothing(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    before = counts(db)
    code, out, err = cli("profiles", "import", write(tmp_path, CSV), "--dry-run", "--db", db)

    assert code == 0 and err == ""
    assert "Dry run of" in out and "(3 rows): nothing was written." in out
    assert "New profiles:     3" in out and "State changes:    4" in out
    assert "Kept unsubscribed: 0" in out
    table = [
        line.split() for line in out.splitlines() if line.startswith("  ") and "line" not in line
    ]
    assert ["all", "email", "0", "1"] in table
    assert ["Newsletter", "0", "2"] in table and ["Promotions", "1", "0"] in table
    assert "line 2: C1 Newsletter: never set -> unsubscribed" in out
    assert counts(db) == before


def test_an_import_prints_its_summary_and_json_lists_every_change(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    path = write(tmp_path, CSV)
    code, out, _ = cli("profiles", "import", path, "--db", db)
    assert code == 0
    assert "4 ledger events written" in out and "New profiles:     3" in out
    profiles, states, _ = counts(db)
    assert (profiles, states) == (3, 3)

    again = (
        "identity,group:Newsletter,group:Promotions\nC1,subscribed,unsubscribed\nC3,,subscribed\n"
    )
    code, out, _ = cli(
        "profiles", "import", write(tmp_path, again, "again.csv"), "--json", "--db", db
    )
    result = json.loads(out)
    assert code == 0 and result["dry_run"] is False
    assert result["rows"] == 2 and result["new_profiles"] == 0 and result["state_changes"] == 2
    assert result["kept_unsubscribed"] == 1 and result["events"] == 2
    assert result["by_group"] == [
        {"group_id": 2, "group": "Promotions", "subscribed": 1, "unsubscribed": 1}
    ]
    assert {
        (c["identity"], c["group"], c["old"], c["new"]) for c in result["state_change_list"]
    } == {
        ("C1", "Promotions", "subscribed", "unsubscribed"),
        ("C3", "Promotions", None, "subscribed"),
    }
    assert result["kept_unsubscribed_list"] == [
        {"line": 2, "identity": "C1", "group": "Newsletter"}
    ]


def test_kept_unsubscribes_are_named_and_overwriting_them_needs_a_reason(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    cli("profiles", "import", write(tmp_path, CSV), "--db", db)
    path = write(tmp_path, "identity,group:Newsletter\nC1,subscribed\n", "back.csv")

    code, out, _ = cli("profiles", "import", path, "--db", db)
    assert code == 0 and "Kept unsubscribed: 1" in out and "line 2: C1 Newsletter" in out
    assert "--overwrite-unsubscribes --reason TEXT" in out

    before = counts(db)
    code, out, err = cli("profiles", "import", path, "--overwrite-unsubscribes", "--db", db)
    assert code == 2 and out == ""
    assert err.startswith("subgroups: Overwriting unsubscribes needs a reason")
    assert counts(db) == before

    code, out, _ = cli(
        "profiles", "import", path,
        "--overwrite-unsubscribes", "--reason", "Asked by phone", "--db", db,
    )  # fmt: skip
    assert code == 0
    assert "C1 Newsletter: unsubscribed -> subscribed (overwrites an unsubscribe)" in out
    assert "Overwritten unsubscribes: 1 (reason: Asked by phone)" in out


def test_a_bad_file_exits_2_with_the_first_problems_and_imports_nothing(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    rows = "".join(f"C{n},maybe\n" for n in range(8))
    path = write(tmp_path, "identity,group:Newsletter\nGOOD,unsubscribed\n" + rows)
    before = counts(db)

    code, out, err = cli("profiles", "import", path, "--db", db)

    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"subgroups: {path}: 8 problems; nothing was imported"
    assert lines[1] == (
        "  line 3, column 2 (group:Newsletter): 'maybe' is not a state; "
        "use subscribed, unsubscribed, or leave the cell empty"
    )
    assert lines[-1] == "  and 3 more" and len(lines) == 7
    assert counts(db) == before


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "line 1: the file is empty"),
        (b"name\nAnn\n", "line 1: the header has no identity column"),
        (b"identity,group:Nope\nC1,\n", "line 1, column 2 (group:Nope): no group is named 'Nope'"),
        (b"identity\nC1\nC1\n", "line 3, column 1 (identity): identity 'C1' is also on line 2"),
        (b"identity,email\nC1,ann@localhost\n", "line 2, column 2 (email): 'ann@localhost' is not"),
        (b"identity,name\nC1,Zo\xeb\n", "line 2: the file is not UTF-8: byte 0xEB at byte offset 19"),  # noqa: E501
        (b"identity,name\nC1,Ann,x\n", "line 2, column 3: the row has 3 cells"),
        (b"identity,name,name\n", "line 1, column 3 (name): the column repeats column 2"),
        (b"identity\nC1" + b"x" * 100_000 + b"\n", "line 2: the row is longer than 65,536 characters"),  # noqa: E501
    ],
    ids=["empty", "no identity", "unknown group", "duplicate", "email", "latin-1", "wide row",
         "duplicate column", "long line"],
)  # fmt: skip
def test_each_kind_of_bad_file_gets_one_clear_line(
    cli: CliRunner, db: str, tmp_path: Path, content: bytes, words: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    code, out, err = cli("profiles", "import", str(path), "--db", db)
    assert code == 2 and out == ""
    assert err.startswith(f"subgroups: {path}, {words}")
    assert err.rstrip().endswith("nothing was imported") and err.count("\n") == 1
    assert counts(db) == (0, 0, 2)  # the two Group Created events


def test_a_missing_file_exits_2(cli: CliRunner, db: str, tmp_path: Path) -> None:
    code, _, err = cli("profiles", "import", str(tmp_path / "nope.csv"), "--db", db)
    assert code == 2 and "cannot open the file: No such file or directory" in err


def test_export_writes_the_format_and_it_imports_back_unchanged(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    cli("profiles", "import", write(tmp_path, CSV), "--db", db)

    code, out, err = cli("profiles", "export", "--db", db)
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "identity,email,name,country,all_email,group:Newsletter,group:Promotions",
        "C1,ann@example.com,Ann,DE,subscribed,unsubscribed,subscribed",
        "C2,bob@example.org,Bob,,unsubscribed,,",
        "C3,,Cy,FR,subscribed,unsubscribed,",
    ]
    target = tmp_path / "export.csv"
    code, said, _ = cli("profiles", "export", str(target), "--db", db)
    assert code == 0 and said == f"Exported 3 profiles to {target}.\n"
    assert target.read_text(encoding="utf-8") == out

    before = counts(db)
    code, out, _ = cli("profiles", "import", str(target), "--db", db)
    assert code == 0 and "State changes:    0" in out and "Unchanged rows:   3" in out
    assert counts(db) == before


def test_export_to_a_folder_that_does_not_exist_exits_2(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    code, _, err = cli("profiles", "export", str(tmp_path / "no" / "x.csv"), "--db", db)
    assert code == 2 and "Cannot write" in err


def test_progress_shows_on_a_terminal_only(
    cli: CliRunner, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, CSV)
    code, _, err = cli("profiles", "import", path, "--dry-run", "--db", db)
    assert code == 0 and err == ""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    code, _, _ = cli("profiles", "import", path, "--db", db)
    shown = terminal.getvalue()
    assert code == 0
    assert "\rReading 100%" in shown and "\rPlanning 3 / 3" in shown and "\rWriting 7 / 7" in shown
    assert shown.endswith("\r\033[K")  # the line is cleared before the summary
