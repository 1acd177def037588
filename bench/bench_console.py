"""Measure the console's start and quit against a bare Textual app (issue 10 ask 3).

    python bench/bench_console.py --db STORE [--runs 5]

Side by side, interleaved in one run: ``subgroups --db STORE`` and a bare
Textual app that paints one label, each spawned on a pseudo-terminal of 120x40.
Printed, per run and as medians:

- **first frame**: spawn to the first screen (the console's section bar; the
  bare app's label); goal <= 1.5x the bare app;
- **gauge**: spawn to the Groups gauge with its number (``N / 50 active``);
  goal <= 2.5x the bare app's first frame;
- **ctrl+q**: ctrl+q sent (once the gauge shows) to the process gone; goal:
  p100 <= 0.5 s;
- **peak RSS** of each process (``wait4``).

The load average is printed before and after (the machine is shared).
"""

import argparse
import contextlib
import fcntl
import os
import pty
import re
import select
import statistics
import struct
import sys
import termios
import time
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
ESCAPES = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-Za-z]|.)")
TIMEOUT = 60.0


def spawn(args: list[str]) -> tuple[int, int, float]:
    """Start ``args`` on a 120x40 pseudo-terminal: (pid, terminal fd, start time)."""
    start = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is the pty
        os.environ.update({"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"})
        os.execv(args[0], args)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    return pid, fd, start


def read_until(fd: int, screen: bytearray, pattern: re.Pattern[bytes]) -> float | None:
    """Read the terminal until its text matches ``pattern``; the time then."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if pattern.search(ESCAPES.sub(b"", bytes(screen))):
            return time.monotonic()
        ready, _, _ = select.select([fd], [], [], 0.01)
        if ready:
            try:
                screen += os.read(fd, 1 << 16)
            except OSError:
                return None
    return None


def quit_and_wait(pid: int, fd: int) -> tuple[float, int]:
    """ctrl+q, then wait for the process to be gone: (seconds, peak RSS in MB)."""
    sent = time.monotonic()
    os.write(fd, b"\x11")
    while True:
        done, _, usage = os.wait4(pid, os.WNOHANG)
        if done:
            gone = time.monotonic() - sent
            break
        ready, _, _ = select.select([fd], [], [], 0.005)
        if ready:
            with contextlib.suppress(OSError):
                os.read(fd, 1 << 16)  # keep the terminal drained
        if time.monotonic() - sent > TIMEOUT:
            os.kill(pid, 9)
            _, _, usage = os.wait4(pid, 0)
            gone = float("inf")
            break
    os.close(fd)
    return gone, usage.ru_maxrss // 1024


def run_bare() -> dict[str, float]:
    pid, fd, start = spawn([sys.executable, "-c", BARE])
    screen = bytearray()
    frame = read_until(fd, screen, re.compile(rb"bare app label"))
    time.sleep(0.3)
    gone, rss = quit_and_wait(pid, fd)
    return {"frame": (frame or float("inf")) - start, "quit": gone, "rss": rss}


def run_console(db: str) -> dict[str, float]:
    pid, fd, start = spawn([sys.executable, "-m", "app", "--db", db])
    screen = bytearray()
    frame = read_until(fd, screen, re.compile(rb"1 Groups"))
    gauge = read_until(fd, screen, re.compile(rb"\d+ / 50 active"))
    time.sleep(0.3)
    gone, rss = quit_and_wait(pid, fd)
    return {
        "frame": (frame or float("inf")) - start,
        "gauge": (gauge or float("inf")) - start,
        "quit": gone,
        "rss": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the store to open (seed it first)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.chdir(ROOT)
    print(f"load average before: {os.getloadavg()}")
    run_console(args.db)  # warm the file cache and the .pyc files, not counted
    run_bare()
    bare: list[dict[str, float]] = []
    console: list[dict[str, float]] = []
    for n in range(args.runs):
        bare.append(run_bare())
        console.append(run_console(args.db))
        b, c = bare[-1], console[-1]
        print(
            f"run {n + 1}: bare frame {b['frame']:.3f} s quit {b['quit']:.3f} s "
            f"rss {b['rss']:.0f} MB | console frame {c['frame']:.3f} s gauge {c['gauge']:.3f} s "
            f"quit {c['quit']:.3f} s rss {c['rss']:.0f} MB"
        )
    med = statistics.median
    bare_frame = med(r["frame"] for r in bare)
    frame = med(r["frame"] for r in console)
    gauge = med(r["gauge"] for r in console)
    print(f"bare app first frame      p50 {bare_frame:.3f} s")
    print(f"console first frame  p50 {frame:.3f} s = {frame / bare_frame:.2f}x (goal <= 1.5x)")
    print(f"console gauge        p50 {gauge:.3f} s = {gauge / bare_frame:.2f}x (goal <= 2.5x)")
    quits = [r["quit"] for r in console]
    print(f"console ctrl+q gone   p50 {med(quits):.3f} s p100 {max(quits):.3f} s (goal <= 0.5 s)")
    print(
        f"peak RSS                  console {max(r['rss'] for r in console):.0f} MB, "
        f"bare {max(r['rss'] for r in bare):.0f} MB"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
