"""``subgroups profiles history`` and ``profiles erase`` (issue 12, asks 4 and 5)."""

import json
from pathlib import Path

import pytest
from cli_runner import CliRunner

CSV = (
    "identity,email,name,plan,all_email,group:Newsletter\n"
    "C1,ann@example.com,Ann Smith,gold,,unsubscribed\n"
    "C2,bob@example.org,Bob,,,\n"
)


@pytest.fixture
def db(cli: CliRunner, tmp_path: Path) -> str:
    path = str(tmp_path / "s.db")
    assert cli("groups", "create", "Newsletter", "--db", path)[0] == 0
    people = tmp_path / "people.csv"
    people.write_text(CSV, encoding="utf-8")
    assert cli("profiles", "import", str(people), "--db", path)[0] == 0
    return path


def test_history_now_and_before_the_profile_existed(cli: CliRunner, db: str) -> None:
    code, out, _ = cli("profiles", "history", "C1", "--db", db, "--json")
    assert code == 0
    found = json.loads(out)
    assert found["existed"] is True and found["all_email"] == "subscribed"
    (news,) = found["groups"]
    assert (news["name"], news["stored"], news["effective"]) == (
        "Newsletter",
        "unsubscribed",
        "unsubscribed",
    )
    assert news["event_id"] == found["events"][0]["id"]

    code, out, _ = cli("profiles", "history", "C1", "--as-of", "2000-01-01T00:00Z", "--db", db)
    assert code == 0 and "The profile did not exist yet." in out


def test_history_with_a_bad_time_exits_2_naming_it(cli: CliRunner, db: str) -> None:
    code, out, err = cli("profiles", "history", "C1", "--as-of", "last tuesday", "--db", db)
    assert (code, out) == (2, "")
    assert "--as-of 'last tuesday' is not a time: give an ISO time such as" in err


def test_erase_then_reimport_stays_unsubscribed_and_the_ledger_verifies(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    code, out, err = cli("profiles", "erase", "C1", "--reason", "GDPR request 42", "--db", db)
    assert (code, err) == (0, "")
    assert out.startswith("Erased C1: email, name, properties and identity removed; 1 events")

    again = tmp_path / "again.csv"
    again.write_text("identity,email,name\nC9,Ann@Example.com,Ann\n", encoding="utf-8")
    assert cli("profiles", "import", str(again), "--db", db)[0] == 0
    code, out, _ = cli("profiles", "show", "C9", "--db", db)
    assert code == 0
    assert "All email: unsubscribed" in out and "suppressed: erased on" in out

    code, out, _ = cli("events", "verify", "--db", db)
    assert code == 0 and out.endswith("events, chain intact\n")
    code, out, _ = cli("events", "--db", db, "--json", "--limit", "100")
    assert "Ann Smith" not in out and "gold" not in out and "ann@example.com" not in out


def test_erase_needs_a_reason_and_a_known_profile(cli: CliRunner, db: str) -> None:
    code, _, err = cli("profiles", "erase", "C1", "--db", db)
    assert code == 2 and "--reason" in err
    code, _, err = cli("profiles", "erase", "nobody", "--reason", "x", "--db", db)
    assert code == 1 and "nobody" in err
