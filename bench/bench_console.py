"""Measure the console's start, sections and live log against a bare Textual app (issue 10 ask 3).

    python bench/bench_console.py --db STORE [--runs 5] [--baseline DIR]
                                  [--sections] [--events N]

Side by side, interleaved in one run: ``subgroups --db STORE`` and a bare
Textual app that paints one label, each spawned on a pseudo-terminal of 120x40.
With ``--baseline DIR`` the console of another checkout (``python -m app`` run
in DIR, e.g. the code before a change) is spawned too, in the same rotation
(bare, baseline, console, …). Printed, per run and as medians:

- **first frame**: spawn to the first screen (the console's section bar; the
  bare app's label); goal <= 1.5x the bare app;
- **gauge**: spawn to the Groups gauge with its number (``N / 50 active``);
  goal <= 2.5x the bare app's first frame;
- with ``--sections``, **sections**: once the gauge shows, each section's key
  (1 to 5) is pressed in turn and timed to its numbers on screen (Groups: the
  subscribed/unsubscribed counts, timed from the first frame, as Groups is shown
  at start; Profiles: "of N profiles"; Segments: "Total: N of M profiles";
  Campaigns: a campaign's reach, or "No campaigns yet."; Landing page: the
  preview of the first profile, "Preferences for ADDRESS"); goal: each <= 1 s after
  it is first shown;
- with ``--events N``, **event to pane**: with Groups shown, another process
  (started once, before the runs) commits N group state changes one at a time
  (0.2-0.4 s apart) and notes each commit's time (the monotonic clock is shared
  by processes); each is timed from its commit to its line (``IDENTITY: group``)
  on screen; p50/p95 over all runs, goal p95 <= 150 ms;
- **ctrl+q**: ctrl+q sent (once the rest is done) to the process gone; goal:
  p100 <= 0.5 s;
- **peak RSS** of each process (``wait4``).

The load average is printed before and after (the machine is shared).
"""

import argparse
import contextlib
import fcntl
import os
import pty
import random
import re
import select
import statistics
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE = """
from textual.app import App
from textual.widgets import Label

class Bare(App):
    def compose(self):
        yield Label("bare app label")

Bare().run()
"""
# The other process of --events: sets one person's state per line of input (a
# profile number) and answers with the commit's time on the shared monotonic clock.
WRITER = """
import sys, time
from app.core import subscriptions
from app.core.store import open_store

store = open_store(sys.argv[1], create=False)
group = sys.argv[2]
print("ready", flush=True)
for line in sys.stdin:
    identity = f"S{int(line):07d}"
    for status in ("unsubscribed", "subscribed"):  # whichever changes the state
        with store.write() as session:
            done = subscriptions.set_state_for(
                session=session, identity=identity, group=group, status=status,
                source="cli", actor="bench",
            )
        if done.event is not None:
            break
    print(f"{identity} {time.monotonic()!r}", flush=True)
"""
ESCAPES = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-Za-z]|.)")
TIMEOUT = 60.0
# Each section's key and what shows that its numbers are on screen.
SECTIONS = (
    # Landing, the 30-day sparkline (cells of block characters, or blank), then the counts.
    ("1", "Groups", rb"(shown|hidden) +[^\d\r\n]{0,80}?\d[\d,]* +\d[\d,]*"),
    ("2", "Profiles", rb"of \d[\d,]* profiles"),
    ("3", "Segments", rb"Total: \d[\d,]* of \d[\d,]* profiles"),
    # A campaign's reach (or a sent one's dash), then Sent, Unsubscribes, Changed.
    (
        "4",
        "Campaigns",
        rb"(draft|sending|cancelled|sent) +.+? {2}(\d[\d,]*|\xe2\x80\x94)"
        rb" +\d[\d,]* +\d[\d,]* +\d{4}-|No campaigns yet\.",
    ),
    ("5", "Landing page", rb"Preferences for [^ ]+@"),
)


@dataclass
class Terminal:
    """A process on a pseudo-terminal and what it has written so far."""

    pid: int
    fd: int
    start: float
    screen: bytearray = field(default_factory=bytearray)
    # Patterns are looked for in what came after this offset.
    mark: int = 0

    def read_until(self, pattern: re.Pattern[bytes], timeout: float = TIMEOUT) -> float | None:
        """Read until the text after ``mark`` matches ``pattern``; the time then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pattern.search(ESCAPES.sub(b"", bytes(self.screen[self.mark :]))):
                return time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], 0.005)
            if ready:
                try:
                    self.screen += os.read(self.fd, 1 << 16)
                except OSError:
                    return None
        return None

    def press(self, key: bytes) -> float:
        """Send a key; only what is written after it counts from now on."""
        self.drain()
        self.mark = len(self.screen)
        os.write(self.fd, key)
        return time.monotonic()

    def drain(self) -> None:
        while select.select([self.fd], [], [], 0)[0]:
            try:
                self.screen += os.read(self.fd, 1 << 16)
            except OSError:
                return


def spawn(args: list[str], cwd: Path = ROOT) -> Terminal:
    """Start ``args`` in ``cwd`` on a 120x40 pseudo-terminal."""
    start = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is the pty
        os.chdir(cwd)
        os.environ.update({"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"})
        os.execv(args[0], args)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    return Terminal(pid, fd, start)


def quit_and_wait(term: Terminal) -> tuple[float, int]:
    """ctrl+q, then wait for the process to be gone: (seconds, peak RSS in MB)."""
    sent = time.monotonic()
    os.write(term.fd, b"\x11")
    while True:
        done, _, usage = os.wait4(term.pid, os.WNOHANG)
        if done:
            gone = time.monotonic() - sent
            break
        ready, _, _ = select.select([term.fd], [], [], 0.005)
        if ready:
            with contextlib.suppress(OSError):
                os.read(term.fd, 1 << 16)  # keep the terminal drained
        if time.monotonic() - sent > TIMEOUT:
            os.kill(term.pid, 9)
            _, _, usage = os.wait4(term.pid, 0)
            gone = float("inf")
            break
    os.close(term.fd)
    return gone, usage.ru_maxrss // 1024


def run_bare() -> dict[str, float]:
    term = spawn([sys.executable, "-c", BARE])
    frame = term.read_until(re.compile(rb"bare app label"))
    time.sleep(0.3)
    gone, rss = quit_and_wait(term)
    return {"frame": (frame or float("inf")) - term.start, "quit": gone, "rss": rss}


class Writer:
    """The other process of --events: commits state changes when asked."""

    def __init__(self, db: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, db, "Newsletter · EMEA"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
        self.next = 1000

    def commit(self) -> tuple[str, float]:
        """One state change committed: (the person's identity, the commit's time)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.next += 1
        self.proc.stdin.write(f"{self.next}\n")
        self.proc.stdin.flush()
        identity, when = self.proc.stdout.readline().split()
        return identity, float(when)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def run_console(
    db: str,
    *,
    cwd: Path = ROOT,
    sections: bool = False,
    writer: Writer | None = None,
    events: int = 0,
) -> dict[str, float]:
    term = spawn([sys.executable, "-m", "app", "--db", db], cwd)
    frame = term.read_until(re.compile(rb"1 Groups")) or float("inf")
    gauge = term.read_until(re.compile(rb"\d+ / 50 active")) or float("inf")
    result = {"frame": frame - term.start, "gauge": gauge - term.start}
    if sections:
        term.mark = 0  # Groups: from the start (its counts may be on screen already)
        for key, title, pattern in SECTIONS:
            pressed = frame if key == "1" else term.press(key.encode())
            shown = term.read_until(re.compile(pattern)) or float("inf")
            result[title] = shown - pressed
        term.press(b"1")
        term.read_until(re.compile(SECTIONS[0][2]))
    if writer is not None:
        term.read_until(re.compile(SECTIONS[0][2]))  # the Groups counts: loaded
        for n in range(events):
            time.sleep(random.uniform(0.2, 0.4))
            term.drain()
            term.mark = len(term.screen)
            identity, committed = writer.commit()
            seen = term.read_until(re.compile(identity.encode() + rb": group"), 10.0)
            result[f"event {n}"] = (seen or float("inf")) - committed
    time.sleep(0.3)
    result["quit"], result["rss"] = quit_and_wait(term)
    return result


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(name: str, runs: list[dict[str, float]], bare_frame: float, sections: bool) -> None:
    med = statistics.median
    frame = med(r["frame"] for r in runs)
    gauge = med(r["gauge"] for r in runs)
    print(f"{name}: first frame p50 {frame:.3f} s = {frame / bare_frame:.2f}x (goal <= 1.5x)")
    print(f"{name}: gauge       p50 {gauge:.3f} s = {gauge / bare_frame:.2f}x (goal <= 2.5x)")
    if sections:
        for _, title, _ in SECTIONS:
            times = [r[title] for r in runs]
            print(
                f"{name}: {title:<12} numbers after first shown p50 {med(times):.3f} s "
                f"max {max(times):.3f} s (goal <= 1 s)"
            )
    lags = [v for r in runs for k, v in r.items() if k.startswith("event ")]
    if lags:
        print(
            f"{name}: event to pane p50 {med(lags) * 1000:.0f} ms p95 {p95(lags) * 1000:.0f} ms "
            f"max {max(lags) * 1000:.0f} ms over {len(lags)} events (goal p95 <= 150 ms)"
        )
    quits = [r["quit"] for r in runs]
    print(f"{name}: ctrl+q gone p50 {med(quits):.3f} s p100 {max(quits):.3f} s (goal <= 0.5 s)")
    print(f"{name}: peak RSS {max(r['rss'] for r in runs):.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the store to open (seed it first)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--baseline", type=Path, help="another checkout whose console runs in the same rotation"
    )
    parser.add_argument("--sections", action="store_true", help="time each section's numbers")
    parser.add_argument(
        "--events", type=int, default=0, help="time this many events to the pane, per run"
    )
    args = parser.parse_args()
    os.chdir(ROOT)
    print(f"load average before: {os.getloadavg()}")
    writer = Writer(args.db) if args.events else None
    consoles = {"console": ROOT}
    if args.baseline:
        consoles = {"baseline": args.baseline.resolve(), **consoles}
    options = {"sections": args.sections, "writer": writer, "events": args.events}
    for cwd in consoles.values():  # warm the file cache and the .pyc files, not counted
        run_console(args.db, cwd=cwd)
    run_bare()
    bare: list[dict[str, float]] = []
    results: dict[str, list[dict[str, float]]] = {name: [] for name in consoles}
    try:
        for n in range(args.runs):
            bare.append(run_bare())
            line = f"run {n + 1}: bare frame {bare[-1]['frame']:.3f} s"
            for name, cwd in consoles.items():
                r = run_console(args.db, cwd=cwd, **options)  # type: ignore[arg-type]
                results[name].append(r)
                line += f" | {name} frame {r['frame']:.3f} s gauge {r['gauge']:.3f} s"
                if args.sections:
                    line += " sections " + " ".join(f"{r[t]:.2f}" for _, t, _ in SECTIONS)
                lags = sorted(v for k, v in r.items() if k.startswith("event "))
                if lags:
                    line += f" events p50 {statistics.median(lags) * 1000:.0f} ms"
                line += f" quit {r['quit']:.3f} s rss {r['rss']:.0f} MB"
            print(line, flush=True)
    finally:
        if writer is not None:
            writer.close()
    bare_frame = statistics.median(r["frame"] for r in bare)
    print(f"bare app first frame p50 {bare_frame:.3f} s")
    for name, runs in results.items():
        report(name, runs, bare_frame, args.sections)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
