"""``subgroups segments``: count, save, list, show and export, as scripts use
them (DESIGN.md §2): the numbers match the core's, JSON shapes, exit codes
and one-line errors."""

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_runner import CliRunner
from sqlmodel import Session

from app.core import groups, profiles, segments, subscriptions
from app.core.seed import load_sample_data
from app.core.segment_index import SegmentCount
from app.core.segment_rules import (
    EmailCondition,
    GroupsCondition,
    PropertyCondition,
    SegmentRule,
)
from app.core.store import open_store

ACTOR = "ada"


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A store with Newsletter, Offers, Promotions (opt-out), Beta (opt-in), Old (archived)
    and five people; see the states below."""
    path = str(tmp_path / "segments.db")
    store = open_store(path)
    with store.write() as s:
        made = {
            name: groups.create_group(session=s, name=name, policy=policy, actor=ACTOR)
            for name, policy in [
                ("Newsletter", "opt-out"), ("Offers", "opt-out"), ("Promotions", "opt-out"),
                ("Beta", "opt-in"), ("Old", "opt-out"),
            ]
        }  # fmt: skip
        people = {
            "ann": profiles.create_profile(
                session=s, identity="ann", email="ann@example.com", properties={"country": "DE"}
            ),
            "bob": profiles.create_profile(
                session=s, identity="bob", email="Bob@Example.com", properties={"country": "de"}
            ),
            "cat": profiles.create_profile(
                session=s, identity="cat", email="cat@example.com", properties={"country": "FR"}
            ),
            "dan": profiles.create_profile(session=s, identity="dan", email="dan@example.com"),
            "eve": profiles.create_profile(session=s, identity="eve", email="eve@example.com"),
        }
        for who, group, state in [
            ("ann", "Newsletter", "unsubscribed"),
            ("bob", "Promotions", "unsubscribed"),
            ("bob", "Beta", "subscribed"),
            ("cat", "Newsletter", "unsubscribed"),
            ("cat", "Offers", "unsubscribed"),
            ("dan", "Promotions", "unsubscribed"),
            ("eve", "Old", "unsubscribed"),
        ]:
            subscriptions.set_state(
                session=s, profile=people[who], group=made[group], status=state,
                source="console", actor=ACTOR,
            )  # fmt: skip
        subscriptions.set_state(
            session=s, profile=people["dan"], group=None, status="unsubscribed",
            source="console", actor=ACTOR,
        )  # fmt: skip
        groups.archive_group(session=s, group_id=made["Old"].id or 0, actor=ACTOR)
    store.dispose()
    return path


def core_count(db: str, build: Callable[[Session], SegmentRule]) -> SegmentCount:
    store = open_store(db)
    try:
        with store.read() as s:
            rule = build(s)
        return segments.count(store, rule)
    finally:
        store.dispose()


def ids(session: Session, *names: str) -> tuple[int, ...]:
    return segments.resolve_groups(session, list(names))


# --- segments count -------------------------------------------------------------


def test_count_prints_the_sentence_each_clause_and_the_total(cli: CliRunner, db: str) -> None:
    code, out, err = cli(
        "segments", "count", "--include", "Newsletter,Offers", "--exclude", "Promotions",
        "--db", db,
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == (
        "People subscribed to any of Newsletter, Offers, and not subscribed to Promotions"
    )
    # Newsletter or Offers: everyone but cat; left Promotions: bob, dan.
    assert lines[1].split() == ["4", "subscribed", "to", "any", "of", "Newsletter,", "Offers"]
    assert lines[2].split() == ["2", "not", "subscribed", "to", "Promotions"]
    assert lines[3] == "Total: 2 of 5 profiles"


def test_count_json_carries_count_sentence_clauses_profiles(cli: CliRunner, db: str) -> None:
    code, out, _ = cli(
        "segments", "count", "--include", "newsletter, OFFERS", "--include-match", "all",
        "--exclude", "Promotions", "--where", "country=de", "--json", "--db", db,
    )  # fmt: skip
    assert code == 0
    result = json.loads(out)
    assert result["count"] == 1  # bob: both groups, left Promotions, country de
    assert result["profiles"] == 5
    assert result["sentence"] == (
        "People subscribed to all of Newsletter, Offers, and not subscribed to Promotions, "
        "and country is de"
    )
    assert result["clauses"] == [
        {"condition": "subscribed to all of Newsletter, Offers", "count": 3},
        {"condition": "not subscribed to Promotions", "count": 2},
        {"condition": "country is de", "count": 2},
    ]
    assert result["definition"]["conditions"][0]["match"] == "all"


@pytest.mark.parametrize(
    ("argv", "build"),
    [
        ([], lambda s: SegmentRule()),
        (["--include"], lambda s: SegmentRule((GroupsCondition(),))),
        (["--include", "--include-match", "all"],
         lambda s: SegmentRule((GroupsCondition(match="all"),))),
        (["--exclude"], lambda s: SegmentRule((GroupsCondition("exclude"),))),
        (["--exclude", "Newsletter,Offers", "--exclude-match", "all"],
         lambda s: SegmentRule(
             (GroupsCondition("exclude", ids(s, "Newsletter", "Offers"), "all"),)
         )),
        (["--include", "Beta"],
         lambda s: SegmentRule((GroupsCondition(group_ids=ids(s, "Beta")),))),
        (["--all-email", "unsubscribed"], lambda s: SegmentRule((EmailCondition("unsubscribed"),))),
        (["--all-email", "subscribed", "--where", "Email=BOB@example.com"],
         lambda s: SegmentRule((
             PropertyCondition("email", "equals", ("BOB@example.com",)),
             EmailCondition("subscribed"),
         ))),
        (["--where", "country=DE", "--where", "identity=ann"],
         lambda s: SegmentRule((
             PropertyCondition("country", "equals", ("DE",)),
             PropertyCondition("identity", "equals", ("ann",)),
         ))),
        (["--where", "country = fr "],
         lambda s: SegmentRule((PropertyCondition("country", "equals", ("fr",)),))),
    ],
)  # fmt: skip
def test_count_gives_the_core_numbers(
    cli: CliRunner,
    db: str,
    argv: list[str],
    build: Callable[[Session], SegmentRule],
) -> None:
    code, out, err = cli("segments", "count", *argv, "--json", "--db", db)
    assert code == 0, err
    result = json.loads(out)
    expected = core_count(db, build)
    assert result["count"] == expected.total
    assert [c["count"] for c in result["clauses"]] == list(expected.clauses)
    assert result["profiles"] == expected.profiles == 5


def test_all_means_every_active_group(cli: CliRunner, db: str) -> None:
    in_every_group = ("segments", "count", "--include", "--include-match", "all", "--json")
    assert json.loads(cli(*in_every_group, "--db", db)[1])["count"] == 0
    # bob comes back to Promotions: now in Newsletter, Offers, Promotions and Beta.
    set_bob = ("profiles", "set", "bob", "--status")
    assert cli(*set_bob, "subscribed", "--group", "Promotions", "--db", db)[0] == 0
    assert json.loads(cli(*in_every_group, "--db", db)[1])["count"] == 1
    # Leaving the archived group Old changes nothing: All is the active groups.
    assert cli(*set_bob, "unsubscribed", "--group", "Old", "--db", db)[0] == 0
    assert json.loads(cli(*in_every_group, "--db", db)[1])["count"] == 1
    # Once Old is active again, it is part of All.
    assert cli("groups", "unarchive", "Old", "--db", db)[0] == 0
    assert json.loads(cli(*in_every_group, "--db", db)[1])["count"] == 0
    # Exclude All: people subscribed to no active group (nobody here).
    code, out, _ = cli("segments", "count", "--exclude", "--json", "--db", db)
    assert code == 0 and json.loads(out)["sentence"] == "People not subscribed to any group"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--include", "Nope"], 1, "No group is named 'Nope'"),
        (["--include", "Newsletter,Nope"], 1, "No group is named 'Nope'"),
        (["--exclude", "Old"], 1, "Group 'Old' is archived"),
        (["--include", "old"], 1, "Group 'Old' is archived"),
        (["--where", "country"], 2, "is not KEY=VALUE"),
        (["--where", "=DE"], 2, "is not KEY=VALUE"),
        (["--where", "country="], 2, "no value"),
        (["--include", ","], 2, "Name at least one group"),
        (["--include-match", "all"], 2, "--include-match needs --include"),
        (["--exclude-match", "any"], 2, "--exclude-match needs --exclude"),
        (["--include-match", "most"], 2, "invalid choice"),
        (["--all-email", "maybe"], 2, "invalid choice"),
    ],
)
def test_count_refuses_bad_conditions(
    cli: CliRunner, db: str, argv: list[str], code: int, message: str
) -> None:
    got, out, err = cli("segments", "count", *argv, "--db", db)
    assert got == code
    assert out == ""
    assert message in err
    if code == 1 or "KEY=VALUE" in message or "needs" in message:
        assert len(err.strip().splitlines()) == 1, err


# --- saved segments -------------------------------------------------------------


def test_save_list_show(cli: CliRunner, db: str) -> None:
    code, out, err = cli(
        "segments", "save", "Left promotions", "--exclude", "Promotions", "--db", db
    )
    assert code == 0, err
    assert "Saved segment 'Left promotions'" in out and "2 people" in out
    code, out, _ = cli(
        "segments", "save", "German readers", "--include", "Newsletter",
        "--where", "country=DE", "--json", "--db", db,
    )  # fmt: skip
    saved = json.loads(out)
    assert code == 0 and saved["name"] == "German readers" and saved["count"] == 1  # bob

    code, _, err = cli("segments", "save", "LEFT PROMOTIONS", "--db", db)
    assert code == 1 and "already exists" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("segments", "save", "Ghosts", "--include", "Nope", "--db", db)
    assert code == 1 and "No group is named 'Nope'" in err
    code, _, err = cli("segments", "save", "   ", "--db", db)
    assert code == 2 and "Name is required" in err

    code, out, _ = cli("segments", "list", "--json", "--db", db)
    listed = json.loads(out)
    assert code == 0
    assert [(s["name"], s["count"]) for s in listed] == [
        ("German readers", 1),
        ("Left promotions", 2),
    ]
    assert {"id", "name", "count", "sentence", "definition", "updated_at"} <= set(listed[0])
    code, out, _ = cli("segments", "list", "--db", db)
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "COUNT", "LAST", "CHANGE"]
    assert rows[0].startswith("German readers") and rows[0].split()[2] == "1"
    assert rows[1].startswith("Left promotions") and rows[1].split()[2] == "2"

    code, out, _ = cli("segments", "show", "left PROMOTIONS", "--json", "--db", db)
    shown = json.loads(out)
    assert code == 0
    assert shown["sentence"] == "People not subscribed to Promotions"
    assert shown["count"] == 2 and shown["profiles"] == 5
    assert shown["clauses"] == [{"condition": "not subscribed to Promotions", "count": 2}]
    assert shown["definition"]["conditions"][0]["mode"] == "exclude"
    code, out, _ = cli("segments", "show", "Left promotions", "--db", db)
    assert code == 0
    assert out.splitlines()[1] == "People not subscribed to Promotions"
    assert "Total: 2 of 5 profiles" in out and "Definition: " in out

    code, _, err = cli("segments", "show", "Nope", "--db", db)
    assert code == 1 and "No segment is named 'Nope'" in err


def test_list_with_no_segments(cli: CliRunner, db: str) -> None:
    assert cli("segments", "list", "--db", db)[:2] == (0, "No saved segments.\n")
    assert cli("segments", "list", "--json", "--db", db)[:2] == (0, "[]\n")


def test_a_saved_segment_naming_a_group_archived_later_still_counts(
    cli: CliRunner, db: str
) -> None:
    cli("segments", "save", "Left promotions", "--exclude", "Promotions", "--db", db)
    assert cli("groups", "archive", "Promotions", "--db", db)[0] == 0
    code, out, _ = cli("segments", "show", "Left promotions", "--json", "--db", db)
    assert code == 0 and json.loads(out)["count"] == 2
    # A new condition cannot choose it any more.
    code, _, err = cli("segments", "count", "--exclude", "Promotions", "--db", db)
    assert code == 1 and "archived" in err


# --- export ---------------------------------------------------------------------


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_members_as_profile_csv(cli: CliRunner, db: str, tmp_path: Path) -> None:
    cli("segments", "save", "Left promotions", "--exclude", "Promotions", "--db", db)
    code, out, err = cli("segments", "export", "left promotions", "--db", db)
    assert code == 0, err
    rows = read_csv(out)
    assert sorted(r["identity"] for r in rows) == ["bob", "dan"]
    bob = next(r for r in rows if r["identity"] == "bob")
    assert bob["email"] == "Bob@Example.com" and bob["country"] == "de"
    assert bob["group:Promotions"] == "unsubscribed" and bob["group:Beta"] == "subscribed"
    assert bob["group:Newsletter"] == ""  # never set
    dan = next(r for r in rows if r["identity"] == "dan")
    assert dan["all_email"] == "unsubscribed"

    code, dash, _ = cli("segments", "export", "Left promotions", "-", "--db", db)
    assert code == 0 and dash == out

    target = tmp_path / "members.csv"
    code, message, _ = cli("segments", "export", "Left promotions", str(target), "--db", db)
    assert code == 0
    assert "Exported 2 members" in message
    assert target.read_text(encoding="utf-8") == out

    code, _, err = cli("segments", "export", "Nope", "--db", db)
    assert code == 1 and "No segment is named 'Nope'" in err
    code, _, err = cli(
        "segments", "export", "Left promotions", str(tmp_path / "no" / "such" / "x.csv"),
        "--db", db,
    )  # fmt: skip
    assert code == 2 and "Cannot write" in err


# --- the same numbers as the core, on the sample data -----------------------------


@pytest.fixture
def sample_db(tmp_path: Path) -> str:
    path = str(tmp_path / "sample.db")
    store = open_store(path)
    load_sample_data(store=store, actor=ACTOR)
    store.dispose()
    return path


def test_sample_data_counts_match_the_core(cli: CliRunner, sample_db: str) -> None:
    """The acceptance question: Newsletter or Product updates, not Promotions, country DE."""
    code, out, err = cli(
        "segments", "count", "--include", "Newsletter,Product updates",
        "--exclude", "Promotions", "--where", "country=DE", "--json", "--db", sample_db,
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)

    def build(s: Session) -> SegmentRule:
        return SegmentRule((
            GroupsCondition(group_ids=ids(s, "Newsletter", "Product updates")),
            GroupsCondition("exclude", ids(s, "Promotions")),
            PropertyCondition("country", "equals", ("DE",)),
        ))  # fmt: skip

    expected = core_count(sample_db, build)
    assert result["count"] == expected.total > 0
    assert [c["count"] for c in result["clauses"]] == list(expected.clauses)
    assert result["profiles"] == expected.profiles == 3000
    # Saved, then shown and listed: the same numbers.
    cli(
        "segments", "save", "DE readers", "--include", "Newsletter,Product updates",
        "--exclude", "Promotions", "--where", "country=DE", "--db", sample_db,
    )  # fmt: skip
    code, out, _ = cli("segments", "show", "DE readers", "--json", "--db", sample_db)
    assert json.loads(out)["count"] == expected.total
    code, out, _ = cli("segments", "export", "DE readers", "--db", sample_db)
    assert len(read_csv(out)) == expected.total


def test_counts_follow_state_changes_made_through_the_cli(cli: CliRunner, db: str) -> None:
    argv = ("segments", "count", "--exclude", "Promotions", "--json", "--db", db)
    assert json.loads(cli(*argv)[1])["count"] == 2
    assert cli(
        "profiles", "set", "ann", "--group", "Promotions", "--status", "unsubscribed",
        "--db", db,
    )[0] == 0  # fmt: skip
    assert json.loads(cli(*argv)[1])["count"] == 3
    # Events from the CLI carry Source cli, the segment events too.
    cli("segments", "save", "Left promotions", "--exclude", "Promotions", "--db", db)
    code, out, _ = cli("events", "--name", "Segment Saved", "--json", "--db", db)
    (event,) = [json.loads(line) for line in out.splitlines()]
    assert event["properties"]["Segment"] == "Left promotions"
