"""``subgroups insights``: the counts a script reads (--json) and a person reads, and
the refusals of a bad window or key."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_runner import CliRunner

from app.core import groups, profiles, subscriptions
from app.core.store import open_store


@pytest.fixture
def db(tmp_path: Path) -> str:
    """News lost two people this week and one 50 days ago; Deals lost one, by mailto."""
    path = str(tmp_path / "cli.db")
    store = open_store(path)
    now = datetime.now(UTC)
    with store.write() as session:
        news = groups.create_group(session=session, name="News", actor="t")
        deals = groups.create_group(session=session, name="<b>Deals</b>", actor="t")
        for name, group, source, days in (
            ("ann", news, "one_click", 1),
            ("bob", news, "cli", 3),
            ("cid", news, "landing_page", 50),
            ("dan", deals, "mailto", 2),
        ):
            person = profiles.create_profile(session=session, identity=name)
            subscriptions.set_state(
                session=session, profile=person, group=group, status="unsubscribed",
                source=source, actor="t", now=now - timedelta(days=days),
            )  # fmt: skip
    store.dispose()
    return path


def test_insights_by_group_as_json(cli: CliRunner, db: str) -> None:
    code, out, _ = cli("insights", "--json", "--db", db)
    rows = json.loads(out)
    assert code == 0
    assert [(r["group"], r["unsubscribes"]) for r in rows] == [("News", 2), ("<b>Deals</b>", 1)]
    code, out, _ = cli("insights", "--days", "90", "--json", "--db", db)
    assert json.loads(out)[0] == {"group": "News", "unsubscribes": 3, "id": 1}


def test_insights_by_source_for_people(cli: CliRunner, db: str) -> None:
    code, out, _ = cli("insights", "--by", "source", "--days", "7", "--db", db)
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "3 unsubscribes in the last 7 days"
    assert lines[1].split() == ["Source", "Unsubscribes"]
    counts = {line.split()[0]: int(line.split()[1]) for line in lines[2:]}
    assert counts["one_click"] == counts["cli"] == counts["mailto"] == 1
    assert counts["landing_page"] == counts["bounce"] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--days", "0"], "must be 1 or more"), (["--by", "colour"], "invalid choice: 'colour'")],
)
def test_a_bad_window_or_key_exits_2(
    cli: CliRunner, db: str, argv: list[str], message: str
) -> None:
    code, out, err = cli("insights", *argv, "--db", db)
    assert code == 2 and message in err and out == ""
