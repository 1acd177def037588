"""``subgroups events verify``: the ledger's hash chain checked from the command line
(issue 12, ask 4), after every kind of writer the CLI has: seed, import, set."""

import sqlite3
from pathlib import Path

from cli_runner import CliRunner

CSV = (
    "identity,email,name,all_email,group:Newsletter\n"
    "C1,ann@example.com,Ann,,unsubscribed\n"
    "C2,bob@example.org,Bob,unsubscribed,\n"
)


def event_count(db: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM ledger_event").fetchone()[0])


def test_a_seeded_imported_and_changed_store_verifies(cli: CliRunner, tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    assert cli("seed", "--db", db)[0] == 0  # the sample data and its sent campaigns
    people = tmp_path / "people.csv"
    people.write_text(CSV, encoding="utf-8")
    assert cli("profiles", "import", str(people), "--db", db)[0] == 0
    assert (
        cli("profiles", "set", "C1", "--all-email", "--status", "unsubscribed", "--db", db)[0] == 0
    )

    code, out, err = cli("events", "verify", "--db", db)

    assert (code, err) == (0, "")
    assert out == f"{event_count(db):,} events, chain intact\n"
    # `events` alone still lists the ledger.
    code, out, _ = cli("events", "--db", db, "--limit", "1")
    assert code == 0 and "C1: all email" in out


def test_a_tampered_event_exits_1_naming_it(cli: CliRunner, tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    assert cli("groups", "create", "Newsletter", "--db", db)[0] == 0
    people = tmp_path / "people.csv"
    people.write_text(CSV, encoding="utf-8")
    assert cli("profiles", "import", str(people), "--db", db)[0] == 0
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER ledger_event_no_update")
        (target,) = conn.execute(
            "SELECT id FROM ledger_event WHERE identity = 'C2' AND name = 'Channel Unsubscribed'"
        ).fetchone()
        conn.execute("UPDATE ledger_event SET identity = 'C3' WHERE id = ?", (target,))

    code, out, err = cli("events", "verify", "--db", db)

    assert (code, out) == (1, "")
    assert err.startswith(f"subgroups: chain broken after {target - 1} intact events: ")
    assert f"event {target} (" in err and "'Channel Unsubscribed'): content does not match" in err


def test_verify_on_a_missing_store_creates_nothing(cli: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    code, _, err = cli("events", "verify", "--db", str(db))
    assert code == 2 and "no store at" in err
    assert not db.exists()
