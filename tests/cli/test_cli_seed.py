"""``subgroups seed --profiles N``: progress with a rate, and a seed killed half-way."""

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from cli_runner import CliRunner

from app.core import deferred_indexes

PLAIN = {str(index.name) for index in deferred_indexes.plain_indexes()}


def test_seed_says_rows_rate_and_that_it_builds_the_indexes(cli: CliRunner, tmp_path: Path) -> None:
    code, out, err = cli("seed", "--profiles", "500", "--db", str(tmp_path / "s.db"))
    assert code == 0, err
    assert "500 / 500 profiles, " in err and "/s, " in err
    assert "Building the indexes" in err
    assert "Loaded 500 synthetic profiles over 50 groups" in out


def _profiles_while_marked(path: Path) -> int:
    """Profiles written so far, once the seed has dropped its indexes (0 before)."""
    try:
        with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5) as conn:
            mark = conn.execute(
                "SELECT 1 FROM schema_meta WHERE key = ?", (deferred_indexes.MARK_KEY,)
            ).fetchone()
            if mark is None:
                return 0
            return int(conn.execute("SELECT count(*) FROM profile").fetchone()[0])
    except sqlite3.Error:  # not made yet
        return 0


def test_a_seed_killed_half_way_leaves_a_store_that_opens_with_its_indexes(
    cli: CliRunner, tmp_path: Path, python: str, subprocess_env: dict[str, str]
) -> None:
    path = tmp_path / "killed.db"
    proc = subprocess.Popen(
        [python, "-m", "app", "seed", "--profiles", "400000", "--db", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=subprocess_env,
    )
    try:
        deadline = time.monotonic() + 120
        while _profiles_while_marked(path) == 0:
            assert proc.poll() is None, "the seed ended before it could be killed"
            assert time.monotonic() < deadline, "the seed wrote nothing"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    written = _profiles_while_marked(path)
    assert 0 < written < 400_000

    code, out, err = cli("groups", "list", "--json", "--db", str(path))
    assert code == 0, err
    assert '"Newsletter · Americas"' in out
    with sqlite3.connect(path) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        marked = conn.execute(
            "SELECT 1 FROM schema_meta WHERE key = ?", (deferred_indexes.MARK_KEY,)
        ).fetchone()
        kept = conn.execute("SELECT count(*) FROM profile").fetchone()[0]
    assert names >= PLAIN and marked is None
    assert kept == written  # the finished chunks are kept
