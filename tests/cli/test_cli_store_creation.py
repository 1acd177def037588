"""A mistyped --db never creates a store (issue 8, point 7): only the console, demo, seed,
``groups create`` and ``profiles import`` may create a missing SQLite store, and they say
so on stderr; every other command exits 2 with "no store at PATH" and creates nothing.
A store whose schema version is not a number is refused with one line (point 11)."""

from pathlib import Path

import pytest
from cli_runner import CliRunner
from sqlalchemy import text

from app import cli as cli_module
from app.cli import console as console_cli
from app.core.store import open_store
from app.ui.app import SubgroupsApp

# Every command that must not create a store, with the arguments it needs.
READERS: dict[str, list[str]] = {
    "groups list": ["groups", "list"],
    "groups update": ["groups", "update", "News", "--description", "x"],
    "groups archive": ["groups", "archive", "News"],
    "groups unarchive": ["groups", "unarchive", "News"],
    "profiles show": ["profiles", "show", "ann"],
    "profiles set": ["profiles", "set", "ann", "--all-email", "--status", "subscribed"],
    "profiles export": ["profiles", "export"],
    "segments count": ["segments", "count"],
    "segments save": ["segments", "save", "Everyone", "--include"],
    "segments list": ["segments", "list"],
    "segments show": ["segments", "show", "Everyone"],
    "segments export": ["segments", "export", "Everyone"],
    "campaigns list": ["campaigns", "list"],
    "campaigns create": [
        "campaigns",
        "create",
        "C",
        "--subject",
        "S",
        "--from",
        "a@example.com",
        "--body-file",
        "-",
    ],  # fmt: skip
    "campaigns show": ["campaigns", "show", "C"],
    "campaigns send": ["campaigns", "send", "C"],
    "campaigns explain": ["campaigns", "explain", "C", "ann"],
    "landing": ["landing", "--port", "0"],
    "landing --link": ["landing", "--link", "ann"],
    "events": ["events"],
}


@pytest.mark.parametrize("command", list(READERS))
def test_a_command_on_a_missing_store_exits_2_and_creates_nothing(
    cli: CliRunner, tmp_path: Path, command: str
) -> None:
    missing = tmp_path / "typo" / "deeper" / "subgroups.db"
    code, out, err = cli(*READERS[command], "--db", str(missing))
    assert code == 2, (out, err)
    assert err == f"subgroups: no store at {missing}\n"
    assert list(tmp_path.iterdir()) == []  # no file, no folder


def test_a_missing_store_in_an_existing_folder_is_not_created(
    cli: CliRunner, tmp_path: Path
) -> None:
    code, _, err = cli("groups", "list", "--db", str(tmp_path / "subgroup.db"))
    assert code == 2 and "no store at" in err
    assert list(tmp_path.iterdir()) == []


def test_an_empty_file_is_not_a_store_for_a_reader(cli: CliRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    code, _, err = cli("groups", "list", "--db", str(empty))
    assert code == 2 and err == f"subgroups: no store at {empty}\n"
    assert empty.read_bytes() == b""


def test_groups_create_creates_the_store_and_says_so(cli: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "new" / "subgroups.db"
    code, out, err = cli("groups", "create", "News", "--db", str(db))
    assert code == 0, err
    assert err == f"subgroups: created a new store at {db}\n"
    assert "Created group 'News'" in out
    # Opening it again creates nothing and says nothing.
    code, _, err = cli("groups", "create", "Deals", "--db", str(db))
    assert (code, err) == (0, "")
    code, out, err = cli("groups", "list", "--db", str(db))
    assert (code, err) == (0, "") and "Deals" in out


def test_profiles_import_creates_the_store_and_says_so(cli: CliRunner, tmp_path: Path) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("identity,email,name\nann,ann@example.com,Ann\n")
    db = tmp_path / "imported.db"
    code, _, err = cli("profiles", "import", str(csv), "--db", str(db))
    assert code == 0, err
    assert f"created a new store at {db}" in err
    assert db.is_file()


@pytest.mark.parametrize("command", ["console", "demo", None])
def test_the_console_and_demo_may_create_a_store(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str | None
) -> None:
    """The console itself is not started here: the command is replaced by one that only
    notes the store it was given."""
    opened: list[str] = []
    name = command or "console"
    monkeypatch.setitem(
        cli_module.COMMANDS, name, lambda args, store: opened.append(store.url) or 0
    )

    def run_without_a_screen(app: SubgroupsApp) -> None:
        app.store = app._open_store()  # type: ignore[misc]
        opened.append(app.store.url)

    def leave(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(SubgroupsApp, "run", run_without_a_screen)
    monkeypatch.setattr(console_cli.os, "_exit", leave)
    db = tmp_path / f"{name}.db"
    code, _, err = cli(*([command] if command else []), "--db", str(db))
    assert code == 0, err
    assert err == f"subgroups: created a new store at {db}\n"
    assert opened and db.is_file()


def test_seed_may_create_a_store(cli: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "seeded.db"
    code, out, err = cli("seed", "--profiles", "20", "--db", str(db))
    assert code == 0, err
    assert err.startswith(f"subgroups: created a new store at {db}\n")


def test_a_schema_version_that_is_not_a_number_is_one_line(cli: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "odd.db"
    store = open_store(db)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE schema_meta SET value = 'four' WHERE key = 'schema_version'"))
    store.dispose()
    code, out, err = cli("groups", "list", "--db", str(db))
    assert code == 2 and out == ""
    assert err == (
        f"subgroups: --db {db} has a schema version that is not a number ('four'); "
        "it is not a store this subgroups can open\n"
    )
