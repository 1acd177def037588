"""Control characters at the command line (issue 8, points 8 and 9).

Typed in, they are refused with exit 2 and a message naming the field.
Already in a store (written there before the rule, here with plain SQL),
they print as visible escapes: an identity holding a newline cannot forge a
line of ``subgroups events``, and ESC cannot retitle or clear the terminal.
Exports defuse formula cells.
"""

import csv
import io
import json
from pathlib import Path

import pytest
from cli_runner import CliRunner
from sqlalchemy import text

from app.core import groups, profiles, text_rules
from app.core.store import open_store

TITLE = "\x1b]0;owned\x07"
CLEAR = "\x1b[2J"
FORGED = "mallory@example.com\n      99  2026-11-20 09:00:00  Channel Unsubscribed   forged"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.db")


@pytest.fixture
def tainted(db: str) -> str:
    """A store whose profile and event hold control characters, written with SQL."""
    store = open_store(db)
    with store.write() as session:
        group = groups.create_group(session=session, name="News", actor="ada")
        profile = profiles.create_profile(
            session=session, identity="kaito@example.com", email="kaito@example.com", name="Kaito"
        )
        ids = {"pid": profile.id, "gid": group.id}
    event = {
        "Group": "News", "Old State": None, "New State": "unsubscribed",
        "Reason": f"asked{TITLE} \x9b2J",
    }  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE profile SET name = :name, properties = :props"),
            {"name": f"Kaito{TITLE}", "props": json.dumps({"plan": CLEAR, "note": "C1 \x9b2J"})},
        )
        # The ledger is append-only: the forged event is a new row, copying a real one's time.
        conn.execute(
            text(
                "INSERT INTO ledger_event (ts, name, identity, profile_id, group_id, source, "
                "actor, properties) SELECT ts, 'Channel Unsubscribed', :identity, :pid, :gid, "
                "'cli', 'ada', :props FROM ledger_event ORDER BY id LIMIT 1"
            ),
            {"identity": FORGED, "props": json.dumps(event), **ids},
        )
    store.dispose()
    return db


def no_raw_controls(output: str) -> None:
    """Nothing a terminal would act on: only the newlines ending each printed line."""
    for line in output.splitlines():
        assert not text_rules.has_control(line), repr(line)
    assert "\r" not in output


def test_events_show_stored_control_characters_escaped(cli: CliRunner, tainted: str) -> None:
    code, out, _ = cli("events", "--db", tainted)
    assert code == 0
    no_raw_controls(out)
    unsubscribes = [line for line in out.splitlines() if "Channel Unsubscribed" in line]
    assert len(unsubscribes) == 1  # the newline forged no second line
    assert "mallory@example.com\\n      99" in unsubscribes[0]
    assert "asked\\x1b]0;owned\\x07 \\x9b2J" in unsubscribes[0]


def test_events_json_lines_keep_the_text_and_escape_it(cli: CliRunner, tainted: str) -> None:
    code, out, _ = cli("events", "--json", "--db", tainted)
    assert code == 0
    no_raw_controls(out)
    events = [json.loads(line) for line in out.splitlines()]
    unsubscribe = next(e for e in events if e["name"] == "Channel Unsubscribed")
    assert unsubscribe["identity"] == FORGED
    assert unsubscribe["properties"]["Reason"] == f"asked{TITLE} \x9b2J"


def test_profiles_show_escapes_stored_control_characters(cli: CliRunner, tainted: str) -> None:
    code, out, _ = cli("profiles", "show", "kaito@example.com", "--db", tainted)
    assert code == 0
    no_raw_controls(out)
    assert "Kaito\\x1b]0;owned\\x07" in out
    assert "plan=\\x1b[2J" in out and "note=C1 \\x9b2J" in out
    code, out, _ = cli("profiles", "show", "kaito@example.com", "--json", "--db", tainted)
    assert code == 0
    no_raw_controls(out)
    shown = json.loads(out)
    assert shown["name"] == f"Kaito{TITLE}" and shown["properties"]["note"] == "C1 \x9b2J"


def test_typed_control_characters_are_refused_with_exit_2(cli: CliRunner, db: str) -> None:
    code, out, err = cli("groups", "create", "News", "--description", f"x{TITLE}", "--db", db)
    assert code == 2 and out == ""
    assert "Description holds a control character, ESC (U+001B)" in err
    no_raw_controls(err)
    code, _, err = cli("groups", "create", f"News{CLEAR}", "--db", db)
    assert code == 2 and "Name" in err and "control character" in err
    code, _, _ = cli("groups", "create", "News", "--db", db)
    assert code == 0
    code, _, err = cli("groups", "update", "News", "--description", "two\nlines", "--db", db)
    assert code == 2 and "Description holds a control character, newline (U+000A)" in err
    code, _, err = cli("segments", "save", "Plans", "--where", f"plan=pro{CLEAR}", "--db", db)
    assert code == 2 and "control character" in err
    code, out, _ = cli("groups", "list", "--json", "--db", db)
    assert [g["description"] for g in json.loads(out)] == [""]


def test_an_import_error_prints_the_column_escaped(cli: CliRunner, db: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"identity,plan{TITLE}\nk@example.com,pro\n", encoding="utf-8")
    code, out, err = cli("profiles", "import", str(path), "--db", db)
    assert code == 2 and out == ""
    assert "line 1, column 2 (plan\\x1b]0;owned\\x07)" in err
    no_raw_controls(err)


def test_profiles_export_defuses_formula_cells(cli: CliRunner, db: str, tmp_path: Path) -> None:
    store = open_store(db)
    with store.write() as session:
        profiles.create_profile(
            session=session, identity="ann@example.com", name='=HYPERLINK("http://x","y")',
            properties={"score": "-3"},
        )  # fmt: skip
    store.dispose()
    code, out, _ = cli("profiles", "export", "--db", db)
    assert code == 0
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row["name"] == '\'=HYPERLINK("http://x","y")' and row["score"] == "'-3"
    exported = tmp_path / "out.csv"
    exported.write_text(out, encoding="utf-8")
    fresh = str(tmp_path / "fresh.db")
    code, _, err = cli("profiles", "import", str(exported), "--db", fresh)
    assert code == 0, err
    code, out, _ = cli("profiles", "show", "ann@example.com", "--json", "--db", fresh)
    shown = json.loads(out)
    assert shown["name"] == '=HYPERLINK("http://x","y")' and shown["properties"] == {"score": "-3"}


def test_campaign_and_segment_lists_escape_stored_control_characters(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    """The CLI's one table printer (app/cli/output.py) escapes every cell, so the campaign
    and segment lists do as the other tables do; their JSON escapes C1 controls too."""
    body = tmp_path / "body.txt"
    body.write_text("Hi {{ name }}\nLeave: {{ unsubscribe_url }}\n", encoding="utf-8")
    open_store(db).dispose()
    assert cli("segments", "save", "Plans", "--where", "plan=pro", "--db", db)[0] == 0
    made = cli(
        "campaigns", "create", "Deals", "--subject", "S", "--from", "a@example.com",
        "--body-file", str(body), "--segment", "Plans", "--db", db,
    )  # fmt: skip
    assert made[0] == 0, made[2]
    store = open_store(db)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE segment SET name = :name"), {"name": f"Plans{TITLE} \x9b2J"})
        conn.execute(text("UPDATE campaign SET name = :name"), {"name": f"Deals{CLEAR} \x9b2J"})
    store.dispose()
    code, out, _ = cli("segments", "list", "--db", db)
    assert code == 0
    no_raw_controls(out)
    assert "Plans\\x1b]0;owned\\x07 \\x9b2J" in out
    code, out, _ = cli("campaigns", "list", "--db", db)
    assert code == 0
    no_raw_controls(out)
    assert "Deals\\x1b[2J \\x9b2J" in out and "Plans\\x1b]0;owned\\x07" in out
    code, out, _ = cli("campaigns", "list", "--json", "--db", db)
    assert code == 0
    no_raw_controls(out)
    assert json.loads(out)[0]["name"] == f"Deals{CLEAR} \x9b2J"
