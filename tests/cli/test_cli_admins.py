"""``subgroups admins``: add, list (and its JSON), set-role, remove; bad input says what and
where and changes nothing; a process acting as an admin is held to their role."""

import json
from pathlib import Path

import pytest
from admin_keys import ECDSA, ED25519, RSA, key_file
from cli_runner import CliRunner

from app.core import actors

JSON_KEYS = {"name", "role", "key_fingerprint", "added_at"}


@pytest.fixture
def db(tmp_path: Path, cli: CliRunner) -> str:
    path = str(tmp_path / "cli.db")
    code, _, _ = cli("groups", "create", "News", "--db", path)
    assert code == 0
    return path


def listed(cli: CliRunner, db: str) -> list[dict[str, str]]:
    code, out, _ = cli("admins", "list", "--json", "--db", db)
    assert code == 0
    result: list[dict[str, str]] = json.loads(out)
    return result


def ledger_names(cli: CliRunner, db: str) -> list[str]:
    code, out, _ = cli("events", "--json", "--limit", "1000", "--db", db)
    assert code == 0
    return [json.loads(line)["name"] for line in out.splitlines()]


def test_adding_listing_changing_and_removing_admins(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    code, out, err = cli(
        "admins", "add", "ann", "--key", str(key_file(tmp_path, ED25519)), "--role", "owner",
        "--db", db,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out == f"Added admin 'ann' as owner (key {ED25519.fingerprint}).\n"
    code, out, _ = cli("admins", "add", "bob", "--key", str(key_file(tmp_path, RSA)), "--db", db)
    assert code == 0 and "as editor" in out  # the default role

    admins = listed(cli, db)
    assert [(a["name"], a["role"], a["key_fingerprint"]) for a in admins] == [
        ("ann", "owner", ED25519.fingerprint),
        ("bob", "editor", RSA.fingerprint),
    ]
    assert all(set(a) == JSON_KEYS for a in admins)
    code, out, _ = cli("admins", "list", "--db", db)
    assert out.splitlines()[0].split() == ["NAME", "ROLE", "KEY", "ADDED"]
    assert "bob   editor  " + RSA.fingerprint in out

    code, out, _ = cli("admins", "set-role", "bob", "viewer", "--db", db)
    assert (code, out) == (0, "bob is now viewer (was editor).\n")
    code, out, _ = cli("admins", "set-role", "bob", "viewer", "--db", db)
    assert (code, out) == (0, "bob is already viewer; nothing changed.\n")
    code, out, _ = cli("admins", "remove", "bob", "--db", db, "--json")
    assert code == 0 and json.loads(out)["name"] == "bob"
    assert [a["name"] for a in listed(cli, db)] == ["ann"]
    assert ledger_names(cli, db)[1:] == [
        "Admin Added",
        "Admin Added",
        "Admin Role Changed",
        "Admin Removed",
    ]


def test_an_empty_list_says_how_to_add_one(cli: CliRunner, db: str) -> None:
    code, out, _ = cli("admins", "list", "--db", db)
    assert code == 0 and "subgroups admins add NAME --key FILE.pub" in out
    assert listed(cli, db) == []


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["add", "ann", "--key", "{missing}"], 2, "no key file at {missing}"),
        (["add", "ann", "--key", "{private}"], 2, "{private} is a private key"),
        (["add", "ann", "--key", "{garbage}"], 2, "{garbage} is not an OpenSSH public key"),
        (["add", "ann"], 2, "the following arguments are required: --key"),
        (["add", "ann", "--key", "{ed}", "--role", "boss"], 2, "invalid choice: 'boss'"),
        (["add", "ann\x1b[2J", "--key", "{ed}"], 2, "control character, ESC (U+001B)"),
        (["add", "ann smith", "--key", "{ed}"], 2, "is not a login name"),
        (["add", "taken", "--key", "{ecdsa}"], 1, "An admin named 'taken' already exists"),
        (["add", "other", "--key", "{rsa}"], 1, "is already taken's"),
        (["set-role", "zed", "owner"], 1, "No admin is named 'zed'"),
        (["set-role", "taken", "boss"], 2, "invalid choice: 'boss'"),
        (["remove", "zed"], 1, "No admin is named 'zed'"),
    ],
)
def test_bad_input_says_what_and_changes_nothing(
    cli: CliRunner, db: str, tmp_path: Path, args: list[str], code: int, says: str
) -> None:
    files = {
        "missing": str(tmp_path / "missing.pub"),
        "private": str(tmp_path / "id_ed25519"),
        "garbage": str(tmp_path / "garbage.pub"),
        "ed": str(key_file(tmp_path, ED25519, "ed.pub")),
        "rsa": str(key_file(tmp_path, RSA, "rsa.pub")),
        "ecdsa": str(key_file(tmp_path, ECDSA, "ecdsa.pub")),
    }
    Path(files["private"]).write_text(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    Path(files["garbage"]).write_text("hello\n")
    assert cli("admins", "add", "taken", "--key", files["rsa"], "--db", db)[0] == 0
    before, events_before = listed(cli, db), ledger_names(cli, db)

    got, out, err = cli("admins", *[a.format(**files) for a in args], "--db", db)

    assert (got, out) == (code, "")
    assert says.format(**files) in err
    assert len(err.strip().splitlines()) == 1 or "usage:" in err
    assert "\x1b" not in err
    assert listed(cli, db) == before
    assert ledger_names(cli, db) == events_before


def test_a_process_acting_as_an_admin_is_held_to_their_role(
    cli: CliRunner, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, key, role in (("vi", ED25519, "viewer"), ("ow", RSA, "owner")):
        path = str(key_file(tmp_path, key, f"{name}.pub"))
        assert cli("admins", "add", name, "--key", path, "--role", role, "--db", db)[0] == 0
    monkeypatch.setenv(actors.ADMIN_ENV, "vi")

    code, out, err = cli("groups", "archive", "News", "--db", db)
    assert (code, out) == (1, "")
    assert err == "subgroups: vi is a viewer; archiving a group needs the editor role\n"
    code, _, err = cli("admins", "remove", "ow", "--db", db)
    assert (code, err) == (1, "subgroups: vi is a viewer; removing an admin needs the owner role\n")
    assert cli("groups", "list", "--db", db)[0] == 0  # reading is everyone's

    monkeypatch.setenv(actors.ADMIN_ENV, "ow")
    assert cli("groups", "archive", "News", "--db", db)[0] == 0
    code, out, _ = cli("events", "--json", "--limit", "1", "--db", db)
    last = json.loads(out)
    assert (last["name"], last["properties"]["Actor"]) == ("Group Archived", "ow")


def test_removing_or_demoting_the_last_owner_is_refused(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    cli("admins", "add", "ann", "--key", str(key_file(tmp_path, ED25519)), "--role", "owner",
        "--db", db)  # fmt: skip
    cli("admins", "add", "bob", "--key", str(key_file(tmp_path, RSA, "b.pub")), "--db", db)

    code, _, err = cli("admins", "set-role", "ann", "viewer", "--db", db)
    assert code == 1 and "ann is the last owner" in err
    code, _, err = cli("admins", "remove", "ann", "--db", db)
    assert code == 1 and "make another admin an owner first" in err
    assert [a["role"] for a in listed(cli, db)] == ["owner", "editor"]


def test_admins_help_names_the_roles(cli: CliRunner) -> None:
    code, out, _ = cli("admins", "add", "--help")
    assert code == 0
    for words in ("--key FILE.pub", "viewer", "editor", "owner", "default editor"):
        assert words in " ".join(out.split())
