"""Measure the foundation issue's two speed goals on a store of 100k profiles and 50 groups.

    python bench/bench_foundation.py [--profiles 100000] [--db PATH] [--runs 5] [--changes 20]

1. Console start to first paint, under 1.5 s; counts fill in from a worker.
   ``subgroups --db PATH`` is spawned in a pseudo-terminal (120x40,
   TERM=xterm-256color) and its output stream is read as a terminal would:
   - first paint: time from spawn until the output contains "Live events"
     (the log pane's title, drawn by the first frame);
   - groups listed: until it contains "50 / 50 active" (the groups worker has
     posted the groups; at first paint the label reads "… / 50 active");
   - counts shown: until it contains one of the groups' formatted counts
     (e.g. "92,431"; the table shows "…" in those cells until the counts worker
     is done).
   Then ctrl+q, and a kill if the console has not gone within 5 s.
   ``group_counts`` alone is also timed in this process, for comparison.

2. A state change from the CLI appears in an open console's log pane in under 1 s.
   The console runs in this process, headless (``App.run_test``, 120x40). Each
   change runs ``subgroups profiles set IDENTITY --group NAME --status S --json``
   in a subprocess (the status alternates, so each one is a real change) while
   the pane is polled every 10 ms (``pilot.pause(0.01)``). Latency is measured
   from the event's ``ts`` (stamped inside the CLI's write transaction, just
   before it commits, so slightly pessimistic) to the moment the event id is in
   ``EventLogPane.events``. The time from the CLI process's exit (noted by the
   thread that waits for it) is shown too; it is often negative, as the
   console's poller (every 0.3 s) may see the commit before the CLI process has
   finished shutting down.

Without --db the store is created and seeded in a temporary directory (removed
afterwards unless --keep). With --db PATH, an existing seeded store is reused,
and a missing or empty one is seeded first.
"""

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func  # noqa: E402
from sqlmodel import select as sql_select  # noqa: E402

from app.core import groups as group_service  # noqa: E402
from app.core import profiles as profile_service  # noqa: E402
from app.core.models import Group, Profile  # noqa: E402
from app.core.store import Store, open_store  # noqa: E402

COLUMNS, LINES = 120, 40
FIRST_PAINT_GOAL = 1.5
LOG_PANE_GOAL = 1.0
START_TIMEOUT = 60.0  # seconds to wait for a console frame before giving up on a run
CHANGE_TIMEOUT = 10.0  # seconds to wait for one change to reach the pane

# Escape sequences a terminal would interpret rather than print.
ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: cursor moves, colours, modes
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: title, hyperlinks
    r"|\x1b[PX^_][^\x1b]*\x1b\\"  # DCS / SOS / PM / APC
    r"|\x1b[@-Z\\-_]"  # other two-byte sequences
)


# --- numbers ---------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def stats_line(label: str, values: Sequence[float], *, p95: bool = False, unit: str = "s") -> str:
    if not values:
        return f"  {label:<34} no successful runs"
    text = (
        f"  {label:<34} min {min(values):7.3f} {unit}"
        f"   median {statistics.median(values):7.3f} {unit}"
        f"   max {max(values):7.3f} {unit}"
    )
    if p95:
        text += f"   p95 {percentile(values, 95):7.3f} {unit}"
    return text + f"   (n={len(values)})"


# --- the store -------------------------------------------------------------------


@dataclass
class StoreInfo:
    path: Path
    profiles: int
    groups: int
    active: int
    seed_seconds: float | None
    count_texts: set[str] = field(default_factory=set)


def prepare_store(path: Path, profiles: int) -> StoreInfo:
    """Open the store at ``path``, seeding it first if it is empty."""
    from app.core.seed import store_is_empty
    from app.core.synthetic import seed_synthetic

    store = open_store(str(path))
    try:
        with store.read() as session:
            empty = store_is_empty(session)
        seed_seconds = None
        if empty:
            print(f"Seeding {profiles:,} profiles over 50 groups into {path} …", flush=True)
            last = [0.0]

            def progress(done: int, total: int) -> None:
                now = time.perf_counter()
                if now - last[0] > 5 or done == total:
                    last[0] = now
                    print(f"  {done:,} / {total:,}", flush=True)

            started = time.perf_counter()
            summary = seed_synthetic(
                store=store, profiles=profiles, groups=50, actor="bench", progress=progress
            )
            seed_seconds = time.perf_counter() - started
            print(
                f"Seeded {summary.profiles:,} profiles, {summary.groups} groups, "
                f"{summary.states:,} stored states, {summary.events:,} events "
                f"in {seed_seconds:.1f} s.",
                flush=True,
            )
        with store.read() as session:
            n_profiles = int(session.exec(sql_select(func.count()).select_from(Profile)).one())
            n_groups = int(session.exec(sql_select(func.count()).select_from(Group)).one())
            active = group_service.active_count(session)
            counts = group_service.group_counts(session)
            active_groups = group_service.list_groups(session, status="active")
            active_ids = {g.id for g in active_groups if g.id is not None}
        if seed_seconds is None:
            print(f"Reusing {path}: {n_profiles:,} profiles, {n_groups} groups ({active} active).")
            if n_profiles != profiles:
                print(f"  note: --profiles {profiles:,} asked for, the store has {n_profiles:,}.")
        # What the groups table shows once the counts worker is done (never "…").
        texts = set()
        for group_id in active_ids:
            c = counts[group_id]
            texts.update({f"{c.subscribed:,}", f"{c.unsubscribed:,}"})
        return StoreInfo(path, n_profiles, n_groups, active, seed_seconds, texts)
    finally:
        store.dispose()


def time_group_counts(store: Store, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        with store.read() as session:
            group_service.group_counts(session)
        times.append(time.perf_counter() - started)
    return times


# --- 1. console start to first paint ---------------------------------------------------


def subgroups_command() -> list[str]:
    """The console script next to this interpreter, else ``python -m app``."""
    script = Path(sys.executable).parent / "subgroups"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "app"]


@dataclass
class StartRun:
    first_output: float | None = None
    first_paint: float | None = None
    groups_listed: float | None = None
    counts_shown: float | None = None
    exit_after_quit: float | None = None
    error: str | None = None


def _child_setup() -> None:
    # After start_new_session's setsid(): make the pty (our stdin) the controlling terminal.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def run_console_once(db: Path, active: int, count_texts: set[str]) -> StartRun:
    result = StartRun()
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(LINES))
    for name in list(env):
        if name.startswith("TEXTUAL"):
            del env[name]
    listed_marker = f"{active} / 50 active"
    buffer = bytearray()
    text = ""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*subgroups_command(), "--db", str(db)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=tempfile.gettempdir(),
        start_new_session=True,
        preexec_fn=_child_setup,
        close_fds=True,
    )
    os.close(slave)

    def pump(timeout: float) -> bool:
        """Read what the console wrote; False once the pty is closed."""
        nonlocal text
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child has gone and closed its side
            return False
        if not chunk:
            return False
        now = time.perf_counter() - started
        if result.first_output is None:
            result.first_output = now
        buffer.extend(chunk)
        text = ANSI.sub("", buffer.decode("utf-8", errors="replace"))
        if result.first_paint is None and "Live events" in text:
            result.first_paint = now
        if result.groups_listed is None and listed_marker in text:
            result.groups_listed = now
        if result.counts_shown is None and any(t in text for t in count_texts):
            result.counts_shown = now
        return True

    try:
        deadline = time.perf_counter() + START_TIMEOUT
        alive = True
        while alive and time.perf_counter() < deadline and result.counts_shown is None:
            alive = pump(0.05)
        if result.counts_shown is None:
            tail = text[-400:].replace("\n", " ")
            result.error = (
                f"console {'exited' if not alive else 'timed out'} before showing counts; "
                f"last text: {tail!r}"
            )
        # Let the frame that carried the counts settle, then quit the way a user does.
        settle = time.perf_counter() + 0.2
        while alive and time.perf_counter() < settle:
            alive = pump(0.05)
        quit_at = time.perf_counter()
        if alive:
            with contextlib.suppress(OSError):
                os.write(master, b"\x11")  # ctrl+q
        deadline = quit_at + 5.0
        while proc.poll() is None and time.perf_counter() < deadline:
            if alive:
                alive = pump(0.05)
            else:
                time.sleep(0.05)
        if proc.poll() is None:
            result.error = (result.error or "") + " (did not quit on ctrl+q within 5 s; killed)"
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            result.exit_after_quit = time.perf_counter() - quit_at
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    return result


def bench_console_start(info: StoreInfo, runs: int) -> list[StartRun]:
    print(f"\n[1] Console start in a {COLUMNS}x{LINES} pty: {' '.join(subgroups_command())} --db …")
    results = []
    for n in range(1, runs + 1):
        run = run_console_once(info.path, info.active, info.count_texts)
        results.append(run)

        def fmt(value: float | None) -> str:
            return f"{value:.3f} s" if value is not None else "—"

        print(
            f"  run {n}: first output {fmt(run.first_output)}, first paint {fmt(run.first_paint)}, "
            f"groups listed {fmt(run.groups_listed)}, counts shown {fmt(run.counts_shown)}, "
            f"quit {fmt(run.exit_after_quit)}" + (f"  ERROR: {run.error}" if run.error else ""),
            flush=True,
        )
    return results


# --- where the start-up time goes ------------------------------------------------------

BREAKDOWN_CODE = """
import sys, time
w0, c0 = time.perf_counter(), time.process_time()
import app.cli
w1, c1 = time.perf_counter(), time.process_time()
import app.ui.app
w2, c2 = time.perf_counter(), time.process_time()
from app.core.store import open_store
store = open_store(sys.argv[1])
w3, c3 = time.perf_counter(), time.process_time()
store.dispose()
print(w1 - w0, w2 - w1, w3 - w2, c1 - c0, c2 - c1, c3 - c2)
"""
BREAKDOWN_STEPS = ("import app.cli", "then import app.ui.app", "then open_store()")


def bench_breakdown(db: Path, runs: int) -> dict[str, list[float]]:
    """Fresh interpreters: bare start, importing the CLI and the console, opening the store.

    Wall time and CPU time (``time.process_time``) of each step: on a busy
    machine the wall time grows with the load, the CPU time much less.
    """
    out: dict[str, list[float]] = {"python start (-c pass), wall": []}
    for step in BREAKDOWN_STEPS:
        out[f"{step}, wall"] = []
        out[f"{step}, CPU"] = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        out["python start (-c pass), wall"].append(time.perf_counter() - started)
        done = subprocess.run(
            [sys.executable, "-c", BREAKDOWN_CODE, str(db)],
            check=True,
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),
        )
        numbers = [float(x) for x in done.stdout.split()]
        for i, step in enumerate(BREAKDOWN_STEPS):
            out[f"{step}, wall"].append(numbers[i])
            out[f"{step}, CPU"].append(numbers[i + 3])
    return out


# --- 2. CLI change to the log pane --------------------------------------------------------


@dataclass
class Change:
    event_id: int
    from_ts: float  # seconds from the event's ts to the pane
    from_exit: float  # seconds from the CLI process's exit to the pane
    cli_seconds: float  # spawn to exit of the CLI command


def _run_cli(cmd: list[str], out: dict[str, object]) -> None:
    """Run one CLI command; note when it was spawned and when it exited (wall clock)."""
    out["spawned"] = time.time()
    try:
        out["done"] = subprocess.run(cmd, capture_output=True, timeout=CHANGE_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        out["done"] = subprocess.CompletedProcess(cmd, -9, exc.stdout or b"", exc.stderr or b"")
    out["exited"] = time.time()


async def _log_pane_changes(db: Path, changes: int) -> tuple[list[Change], list[str]]:
    from app.ui.app import SubgroupsApp
    from app.ui.widgets.event_log import EventLogPane

    store = open_store(str(db))
    try:
        with store.read() as session:
            identity = session.exec(
                sql_select(Profile.identity).order_by(Profile.id).limit(1)  # type: ignore[arg-type]
            ).one()
            group = group_service.list_groups(session, status="active")[0]
            view = profile_service.profile_view(session, identity, history_limit=1)
        current = next(g.effective for g in view.groups if g.group_id == group.id)
        print(
            f"\n[2] CLI change → log pane: {changes} changes of {identity} in {group.name!r} "
            f"(now {current}), console headless in this process at {COLUMNS}x{LINES}"
        )
        results: list[Change] = []
        errors: list[str] = []
        app = SubgroupsApp(store=store, offer_sample_data=False)
        async with app.run_test(size=(COLUMNS, LINES)) as pilot:
            pane = app.query_one(EventLogPane)
            # Wait until the poller has read the initial events (its loop is running).
            deadline = time.perf_counter() + START_TIMEOUT
            while not pane.events and time.perf_counter() < deadline:
                await pilot.pause(0.01)
            await pilot.pause(1.0)  # let the groups and counts workers finish first
            status = current
            for n in range(1, changes + 1):
                status = "unsubscribed" if status == "subscribed" else "subscribed"
                known = {e.id for e in pane.events}
                seen: dict[int, float] = {}
                cmd = [
                    *subgroups_command(),
                    "profiles",
                    "set",
                    identity,
                    "--group",
                    group.name,
                    "--status",
                    status,
                    "--json",
                    "--db",
                    str(db),
                ]
                # The CLI runs from a thread, which notes the moment it exits; this event
                # loop is shared with the console and can be busy when that happens.
                cli: dict[str, object] = {}
                runner = threading.Thread(target=_run_cli, args=(cmd, cli), daemon=True)
                runner.start()
                event_id: int | None = None
                event_ts = 0.0
                deadline = time.perf_counter() + CHANGE_TIMEOUT
                while time.perf_counter() < deadline:
                    await pilot.pause(0.01)
                    now = time.time()
                    for e in pane.events:
                        if e.id not in known and e.id not in seen:
                            seen[e.id] = now
                    if event_id is None and not runner.is_alive():
                        done = cli["done"]
                        assert isinstance(done, subprocess.CompletedProcess)
                        if done.returncode != 0:
                            why = done.stderr.decode().strip()
                            errors.append(f"change {n}: exit {done.returncode}: {why}")
                            break
                        record = json.loads(done.stdout)
                        if not record["changed"]:
                            errors.append(f"change {n}: the CLI reported no change")
                            break
                        event_id = record["event"]["id"]
                        event_ts = datetime.fromisoformat(record["event"]["ts"]).timestamp()
                    if event_id is not None and event_id in seen:
                        break
                if runner.is_alive():
                    errors.append(f"change {n}: the CLI did not finish within {CHANGE_TIMEOUT} s")
                    runner.join()
                    continue
                if event_id is None:
                    continue
                if event_id not in seen:
                    errors.append(
                        f"change {n}: event {event_id} not in the pane after {CHANGE_TIMEOUT} s"
                    )
                    continue
                spawned, exited = cli["spawned"], cli["exited"]
                assert isinstance(spawned, float) and isinstance(exited, float)
                change = Change(
                    event_id, seen[event_id] - event_ts, seen[event_id] - exited, exited - spawned
                )
                results.append(change)
                print(
                    f"  change {n:>2}: event {event_id} → {status:<12} in the pane "
                    f"{change.from_ts:6.3f} s after its ts, {change.from_exit:+6.3f} s after the "
                    f"CLI exited (CLI ran {change.cli_seconds:.2f} s)",
                    flush=True,
                )
                await pilot.pause(0.3)  # space the changes out a little, like a person would
        return results, errors
    finally:
        store.dispose()


def bench_log_pane(db: Path, changes: int) -> tuple[list[Change], list[str]]:
    return asyncio.run(_log_pane_changes(db, changes))


# --- main -----------------------------------------------------------------------------------


def _values(runs: Sequence[StartRun], name: str) -> list[float]:
    return [v for r in runs if (v := getattr(r, name)) is not None]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000, help="profiles to seed (100000)")
    parser.add_argument("--db", type=Path, help="an SQLite store to reuse (seeded first if empty)")
    parser.add_argument("--runs", type=int, default=5, help="console starts to time (5)")
    parser.add_argument("--changes", type=int, default=20, help="CLI changes to time (20)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    args = parser.parse_args(argv)

    tmpdir = None
    if args.db is None:
        tmpdir = Path(tempfile.mkdtemp(prefix="subgroups-bench-"))
        db = tmpdir / "bench.db"
    else:
        db = args.db.expanduser().absolute()
    load_before = os.getloadavg()
    print(
        f"subgroups foundation benchmark · python {sys.version.split()[0]} · "
        f"{os.cpu_count()} CPUs · load average {load_before[0]:.2f} (1 min)"
    )
    try:
        info = prepare_store(db, args.profiles)
        store = open_store(str(db))
        try:
            counts_times = time_group_counts(store, max(args.runs, 3))
        finally:
            store.dispose()
        starts = bench_console_start(info, args.runs)
        breakdown = bench_breakdown(db, max(args.runs, 3))
        changes, errors = bench_log_pane(db, args.changes)
        for error in errors:
            print(f"  ERROR: {error}")
    finally:
        if tmpdir is not None and not args.keep:
            shutil.rmtree(tmpdir, ignore_errors=True)
        elif tmpdir is not None:
            print(f"\nThe store is kept at {db}")

    first_paint = _values(starts, "first_paint")
    latencies = [c.from_ts for c in changes]
    print(
        f"\n=== Results ({info.profiles:,} profiles, {info.groups} groups, "
        f"{info.active} active) ==="
    )
    if info.seed_seconds is not None:
        print(f"  seeding took {info.seed_seconds:.1f} s")
    else:
        print("  seeding: reused an existing store")
    print(stats_line("group_counts() in-process", counts_times))
    print(stats_line("console: first output", _values(starts, "first_output")))
    print(stats_line("console: first paint", first_paint))
    print(stats_line("console: groups listed (N / 50)", _values(starts, "groups_listed")))
    print(stats_line("console: counts shown", _values(starts, "counts_shown")))
    print(stats_line("console: exit after ctrl+q", _values(starts, "exit_after_quit")))
    print("  where a start goes (fresh interpreters):")
    for label, values in breakdown.items():
        print(stats_line("  " + label, values))
    print(stats_line("CLI change → pane (from ts)", latencies, p95=True))
    print(stats_line("CLI change → pane (from exit)", [c.from_exit for c in changes], p95=True))
    print(stats_line("CLI command spawn → exit", [c.cli_seconds for c in changes]))
    load_after = os.getloadavg()
    print(f"  load average (1 min): {load_before[0]:.2f} before, {load_after[0]:.2f} after")

    paint_ok = (
        bool(first_paint)
        and len(first_paint) == len(starts)
        and statistics.median(first_paint) < FIRST_PAINT_GOAL
    )
    pane_ok = bool(latencies) and not errors and max(latencies) < LOG_PANE_GOAL
    verdict = {True: "PASS", False: "FAIL"}
    print("\n=== Summary ===")
    if first_paint:
        print(
            f"  first paint: median {statistics.median(first_paint):.3f} s, "
            f"max {max(first_paint):.3f} s (goal < {FIRST_PAINT_GOAL} s, on the median) "
            f"{verdict[paint_ok]}"
        )
    else:
        print(f"  first paint: never seen (goal < {FIRST_PAINT_GOAL} s) FAIL")
    counts_shown = _values(starts, "counts_shown")
    if counts_shown:
        print(
            f"  counts filled in: median {statistics.median(counts_shown):.3f} s after spawn "
            f"(group_counts alone: median {statistics.median(counts_times):.3f} s)"
        )
    if latencies:
        print(
            f"  CLI change → log pane: median {statistics.median(latencies):.3f} s, "
            f"p95 {percentile(latencies, 95):.3f} s, max {max(latencies):.3f} s "
            f"(goal < {LOG_PANE_GOAL} s, on the max; from the event's ts) {verdict[pane_ok]}"
        )
    else:
        print(f"  CLI change → log pane: no change measured (goal < {LOG_PANE_GOAL} s) FAIL")
    if errors:
        print(f"  ({len(errors)} change(s) failed; see the ERROR lines above)")
    return 0 if paint_ok and pane_ok else 1


if __name__ == "__main__":
    sys.exit(main())
