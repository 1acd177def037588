"""The command line as scripts use it: output, JSON shapes and exit codes (DESIGN.md §2)."""

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runner import CliRunner

from app.core import groups, profiles
from app.core.store import open_store

GROUP_KEYS = {"id", "name", "description", "channel", "policy", "status", "shown_on_landing_page"}


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.db")


def add_profile(db: str, identity: str) -> None:
    store = open_store(db)
    with store.write() as session:
        profiles.create_profile(session=session, identity=identity, email=identity, name="Ada")
    store.dispose()


def test_group_lifecycle_through_the_cli(cli: CliRunner, db: str) -> None:
    code, out, _ = cli("groups", "create", "Newsletter", "--description", "Monthly", "--db", db)
    assert code == 0 and "Created group 'Newsletter'" in out
    code, out, _ = cli(
        "groups", "create", "Offers", "--policy", "opt-in", "--hidden", "--db", db, "--json"
    )
    created = json.loads(out)
    assert code == 0 and created["policy"] == "opt-in" and created["shown_on_landing_page"] is False

    code, out, _ = cli(
        "groups", "update", "offers", "--name", "Deals", "--shown", "--db", db, "--json"
    )
    updated = json.loads(out)
    assert code == 0 and updated["id"] == created["id"] and updated["name"] == "Deals"

    code, out, _ = cli("groups", "archive", "Deals", "--db", db)
    assert code == 0 and "Archived" in out
    code, out, _ = cli("groups", "list", "--json", "--db", db)
    listed = json.loads(out)
    assert [g["name"] for g in listed] == ["Newsletter"]
    assert set(listed[0]) >= GROUP_KEYS
    code, out, _ = cli("groups", "list", "--archived", "--json", "--db", db)
    assert [g["name"] for g in json.loads(out)] == ["Deals"]
    code, out, _ = cli("groups", "list", "--all", "--db", db)
    assert "Deals" in out and "Newsletter" in out and "1 / 50 active" in out
    code, out, _ = cli("groups", "unarchive", "Deals", "--db", db)
    assert code == 0
    code, out, _ = cli("groups", "list", "--db", db)
    assert "2 / 50 active" in out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["groups", "create", "   "], 2, "Name is required"),
        (["groups", "create", "x" * 65], 2, "the most is 64"),
        (["groups", "create", "NEWSLETTER"], 1, "already exists"),
        (["groups", "archive", "Nope"], 1, "No group is named 'Nope'"),
        (["groups", "update", "Nope", "--name", "X"], 1, "No group is named"),
        (["groups", "create", "Y", "--policy", "sometimes"], 2, "invalid choice"),
        (["profiles", "show", "ghost@example.com"], 1, "No profile has identity"),
        (
            ["profiles", "set", "ada@example.com", "--group", "Nope", "--status", "unsubscribed"],
            1,
            "No group",
        ),
        (
            ["profiles", "set", "ada@example.com", "--group", "Newsletter", "--status", "maybe"],
            2,
            "invalid choice",
        ),
        (["events", "--limit", "0"], 2, "must be 1 or more"),
    ],
)
def test_wrong_input_gets_one_line_and_changes_nothing(
    cli: CliRunner, db: str, argv: list[str], code: int, message: str
) -> None:
    assert cli("groups", "create", "Newsletter", "--db", db)[0] == 0
    add_profile(db, "ada@example.com")
    before = cli("events", "--json", "--limit", "100", "--db", db)[1]

    got, out, err = cli(*argv, "--db", db)

    assert got == code
    assert message in err
    assert "Traceback" not in err
    if code == 1:
        assert len(err.strip().splitlines()) == 1
    assert cli("events", "--json", "--limit", "100", "--db", db)[1] == before


def test_the_51st_group_is_refused_with_what_to_do(cli: CliRunner, db: str) -> None:
    store = open_store(db)
    with store.write() as session:
        for n in range(50):
            groups.create_group(session=session, name=f"Group {n}", actor="test")
    store.dispose()
    code, _, err = cli("groups", "create", "One too many", "--db", db)
    assert code == 1
    assert err.strip() == "subgroups: 50 of 50 groups are active: archive one to make room"
    assert cli("groups", "archive", "Group 7", "--db", db)[0] == 0
    assert cli("groups", "create", "One too many", "--db", db)[0] == 0
    code, _, err = cli("groups", "unarchive", "Group 7", "--db", db)
    assert code == 1 and "archive one to make room" in err


@pytest.mark.parametrize("kind", ["text file", "directory", "under a file"])
def test_a_db_that_cannot_be_a_store_is_bad_input(
    cli: CliRunner, tmp_path: Path, kind: str
) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("shopping list\n")
    target = {"text file": text_file, "directory": tmp_path, "under a file": text_file / "x.db"}[
        kind
    ]
    code, out, err = cli("groups", "list", "--db", str(target))
    assert code == 2
    assert str(target) in err and "Traceback" not in err
    assert text_file.read_text() == "shopping list\n"


def test_profiles_show_and_set(cli: CliRunner, db: str) -> None:
    cli("groups", "create", "Newsletter", "--db", db)
    cli("groups", "create", "Beta", "--policy", "opt-in", "--db", db)
    add_profile(db, "ada@example.com")

    code, out, _ = cli(
        "profiles",
        "set",
        "ada@example.com",
        "--group",
        "newsletter",
        "--status",
        "unsubscribed",
        "--reason",
        "too many emails",
        "--db",
        db,
        "--json",
    )
    result = json.loads(out)
    assert code == 0 and result["changed"] is True
    props = result["event"]["properties"]
    assert (
        props["Group"] == "Newsletter"
        and props["Source"] == "cli"
        and props["Reason"] == "too many emails"
    )
    assert props["Old State"] is None and props["New State"] == "unsubscribed"

    code, out, _ = cli(
        "profiles",
        "set",
        "ada@example.com",
        "--group",
        "Newsletter",
        "--status",
        "unsubscribed",
        "--db",
        db,
    )
    assert code == 0 and "nothing changed" in out

    code, out, _ = cli(
        "profiles", "set", "ada@example.com", "--all-email", "--status", "unsubscribed", "--db", db
    )
    assert code == 0 and "all email is now unsubscribed" in out

    code, out, _ = cli("profiles", "show", "ada@example.com", "--json", "--db", db)
    shown = json.loads(out)
    assert shown["identity"] == "ada@example.com" and shown["all_email"] == "unsubscribed"
    by_name = {g["name"]: g for g in shown["groups"]}
    assert (
        by_name["Newsletter"]["stored"] == "unsubscribed"
        and by_name["Newsletter"]["effective"] == "unsubscribed"
    )
    assert by_name["Beta"]["stored"] is None and by_name["Beta"]["effective"] == "unsubscribed"
    assert {"id", "name", "stored", "effective"} <= set(by_name["Beta"])

    code, out, _ = cli("profiles", "show", "ada@example.com", "--db", db)
    assert "too many emails" in out and "opt-in policy default" in out


def test_events_json_lines_and_filters(cli: CliRunner, db: str) -> None:
    cli("groups", "create", "Newsletter", "--db", db)
    cli("groups", "create", "Offers", "--db", db)
    add_profile(db, "ada@example.com")
    cli(
        "profiles",
        "set",
        "ada@example.com",
        "--group",
        "Offers",
        "--status",
        "unsubscribed",
        "--db",
        db,
    )

    code, out, _ = cli("events", "--json", "--db", db)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [e["name"] for e in lines] == [
        "Group Created",
        "Group Created",
        "Channel Unsubscribed",
    ]
    assert all({"id", "ts", "name", "identity", "properties"} <= set(e) for e in lines)

    code, out, _ = cli("events", "--json", "--name", "Channel Unsubscribed", "--db", db)
    assert [json.loads(line)["identity"] for line in out.splitlines()] == ["ada@example.com"]
    code, out, _ = cli("events", "--json", "--group", "newsletter", "--db", db)
    assert [json.loads(line)["properties"]["Group"] for line in out.splitlines()] == ["Newsletter"]
    code, out, _ = cli("events", "--json", "--limit", "1", "--db", db)
    assert len(out.splitlines()) == 1


def test_subgroups_db_environment_variable(
    cli: CliRunner, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUBGROUPS_DB", db)
    assert cli("groups", "create", "From env")[0] == 0
    code, out, _ = cli("groups", "list", "--json", "--db", db)
    assert [g["name"] for g in json.loads(out)] == ["From env"]


def test_seed_loads_the_sample_data_once(cli: CliRunner, db: str) -> None:
    code, out, _ = cli("seed", "--db", db)
    assert code == 0 and "Loaded the sample data" in out
    code, out, _ = cli("groups", "list", "--all", "--json", "--db", db)
    listed = json.loads(out)
    assert len(listed) >= 10 and any(g["status"] == "archived" for g in listed)
    code, _, err = cli("seed", "--db", db)
    assert code == 1 and "Traceback" not in err


def test_seed_has_a_sent_campaign_with_its_unsubscribes_and_a_draft(
    cli: CliRunner, db: str, link_keyring: Path
) -> None:
    assert cli("seed", "--db", db)[0] == 0
    code, out, _ = cli("campaigns", "list", "--json", "--db", db)
    listed = {c["status"]: c for c in json.loads(out)}
    assert code == 0 and sorted(listed) == ["draft", "sent"]
    assert listed["sent"]["sent"] > 0 and listed["sent"]["unsubscribes"] > 0
    assert listed["draft"]["sent"] == 0 and listed["draft"]["reach"] > 0


def test_events_follow_prints_changes_from_another_process(db: str) -> None:
    """The real console script: `events --follow` shows a change made by another command."""
    env = {**os.environ, "SUBGROUPS_DB": db, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "app"]
    subprocess.run(
        [*cmd, "groups", "create", "Newsletter"], env=env, check=True, capture_output=True
    )
    add_profile(db, "ada@example.com")
    follower = subprocess.Popen(
        [*cmd, "events", "--follow", "--json", "--name", "Channel Unsubscribed"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # let it print the (empty) backlog and start following
        subprocess.run(
            [
                *cmd,
                "profiles",
                "set",
                "ada@example.com",
                "--group",
                "Newsletter",
                "--status",
                "unsubscribed",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        assert follower.stdout is not None
        ready, _, _ = select.select([follower.stdout], [], [], 10)
        assert ready, "events --follow printed nothing within 10 s of the change"
        line = follower.stdout.readline()
        event = json.loads(line)
        assert event["identity"] == "ada@example.com"
        assert event["properties"]["New State"] == "unsubscribed"
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_a_policy_change_that_flips_consent_needs_yes(cli: CliRunner, db: str) -> None:
    """Issue 8, point 3: the CLI names the number and changes nothing without --yes."""
    cli("groups", "create", "Newsletter", "--db", db)
    for n in range(3):
        add_profile(db, f"p{n}@example.com")

    code, out, err = cli("groups", "update", "Newsletter", "--policy", "opt-in", "--db", db)

    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        "subgroups: changing Newsletter from opt-out to opt-in turns 3 people from subscribed "
        "to unsubscribed; add --yes to do it"
    ]
    code, out, _ = cli("groups", "list", "--json", "--db", db)
    assert json.loads(out)[0]["policy"] == "opt-out"

    code, out, _ = cli(
        "groups", "update", "Newsletter", "--policy", "opt-in", "--yes", "--db", db, "--json"
    )
    assert code == 0 and json.loads(out)["policy"] == "opt-in"
    code, out, _ = cli("events", "--json", "--db", db)
    (updated,) = [e for e in map(json.loads, out.splitlines()) if e["name"] == "Group Updated"]
    assert updated["properties"]["Old Policy"] == "opt-out"
    assert updated["properties"]["New Policy"] == "opt-in"
    assert updated["properties"]["Affected"] == 3
    # The same policy again changes nothing and needs no --yes.
    code, _, err = cli("groups", "update", "Newsletter", "--policy", "opt-in", "--db", db)
    assert code == 0 and err == ""
