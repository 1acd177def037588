"""``subgroups demo`` starts with a month of history, so the Insights charts are not
empty: unsubscribes from every source over the last 30 days, people coming back, and
the reasons given. The sample data alone (``seed``, the first-run offer, the
screenshots' stores) stays as it was. The console itself is not started here."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import CliRunner
from sqlalchemy import text

from app.cli import console as console_cli
from app.core import simulator
from app.core.store import open_store
from app.ui.app import SubgroupsApp


@pytest.fixture
def no_screen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The demo's console and simulator replaced by nothing: the store is what it loaded."""
    monkeypatch.setattr(SubgroupsApp, "run", lambda app: None)
    monkeypatch.setattr(simulator.TrafficSimulator, "start", lambda self: None)
    monkeypatch.setattr(simulator.TrafficSimulator, "stop", lambda self: None)

    def leave(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(console_cli.os, "_exit", leave)
    yield


def sources(cli: CliRunner, db: Path) -> dict[str, int]:
    code, out, err = cli("insights", "--by", "source", "--json", "--db", str(db))
    assert code == 0, err
    return {row["source"]: row["unsubscribes"] for row in json.loads(out)}


def days_with_unsubscribes(db: Path) -> int:
    store = open_store(db)
    try:
        with store.engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(DISTINCT day) FROM ledger_day WHERE state = 'unsubscribed' "
                        "AND source <> 'import'"
                    )
                ).scalar()
                or 0
            )
    finally:
        store.dispose()


def test_the_demo_store_starts_with_a_month_of_history(
    cli: CliRunner, tmp_path: Path, no_screen: None
) -> None:
    db = tmp_path / "demo.db"
    code, _, err = cli("demo", "--db", str(db))
    assert code == 0, err

    by_source = sources(cli, db)
    for source in ("one_click", "landing_page", "mailto", "complaint", "bounce", "console"):
        assert by_source[source] > 0, f"no {source} unsubscribes in the demo's month"
    assert days_with_unsubscribes(db) >= 28
    code, out, _ = cli("insights", "--by", "reason", "--json", "--db", str(db))
    reasons = {row["code"]: row["unsubscribes"] for row in json.loads(out)}
    assert set(reasons) == {"too_many_emails", "not_relevant", "never_signed_up", "other"}
    assert all(n > 0 for n in reasons.values()), reasons
    code, out, _ = cli("events", "--name", "Unsubscribe Reason", "--limit", "1", "--db", str(db))
    assert "left because" in out


def test_the_sample_data_alone_has_no_such_month(cli: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "seeded.db"
    code, _, err = cli("seed", "--db", str(db))
    assert code == 0, err
    by_source = sources(cli, db)
    # The import's history, and the two days of the sample campaign's links.
    assert {s for s, n in by_source.items() if n} <= {"import", "one_click", "landing_page"}
    assert days_with_unsubscribes(db) <= 2
