"""The console in a browser (issue 11 ask 3): how long until the Groups gauge shows its
number, served against local, side by side; and the screenshot of the served console.

    python bench/bench_serve.py --db STORE [--runs 3] [--shot docs/serve-console.png]

Interleaved in one run, each run: ``subgroups --db STORE`` on a pseudo-terminal
of 120x40 (local), then one websocket session of ``subgroups serve`` at 120x40
(served: what the page's script opens), then headless Chromium opening the page
at 1280x800 (browser: page, script, websocket, console). Each is timed from its
start (spawn, websocket connect, navigation) to the gauge with its number
(``N / 50 active``) in what it received; for local and served, the console's
CPU seconds by then too (wall time on a loaded machine is mostly waiting for a
core). Printed per run, as medians, and as ratios to local; the load average
before and after. The last browser run's
picture is saved to --shot.
"""

import argparse
import asyncio
import contextlib
import json
import os
import pty
import re
import select
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "cli"))
from headless_chromium import find_chromium, plain, screenshot  # noqa: E402
from process_tree import descendants  # noqa: E402

GAUGE = re.compile(r"\d+ / 50 active")
SUBGROUPS = str(Path(sys.executable).with_name("subgroups"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def local_gauge(db: str) -> tuple[float, float]:
    """Spawn the console on a 120x40 pty: seconds to the gauge with its number, and the
    console's CPU seconds by then."""
    import fcntl
    import struct
    import termios

    started = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
        os.execv(SUBGROUPS, [SUBGROUPS, "--db", db])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    output = ""
    try:
        while not GAUGE.search(plain(output)):
            if time.monotonic() - started > 120:
                raise TimeoutError("the local console never showed its gauge")
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                output += os.read(fd, 65536).decode("utf-8", "replace")
        return time.monotonic() - started, cpu_seconds(pid)
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)


async def served_gauge(url: str, server: int) -> tuple[float, float]:
    """One websocket session at 120x40: seconds from connecting to the gauge, and the
    CPU seconds of the processes under the server by then (its console)."""
    started = time.monotonic()
    output = ""
    async with (
        aiohttp.ClientSession() as client,
        client.ws_connect(url + "/ws?width=120&height=40") as websocket,
    ):
        while not GAUGE.search(plain(output)):
            message = await websocket.receive(timeout=120)
            if message.type == aiohttp.WSMsgType.BINARY:
                output += message.data.decode("utf-8", "replace")
        seconds = time.monotonic() - started
        cpu = 0.0
        for pid in descendants(server):
            with contextlib.suppress(OSError):
                cpu += cpu_seconds(pid)
        await websocket.send_str(json.dumps(["stdin", "\x1b[21~"]))  # F10: quit
    return seconds, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="an existing store (not written to)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shot", default=str(ROOT / "docs" / "serve-console.png"))
    args = parser.parse_args()
    if find_chromium() is None:
        print("no chromium on this machine (Debian: apt-get install chromium)")
        return 2
    load_before = os.getloadavg()
    server = subprocess.Popen(
        [SUBGROUPS, "--db", args.db, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    url = server.stdout.readline().rsplit(" on ", 1)[1].strip()
    times: dict[str, list[float]] = {"local": [], "served": [], "browser": []}
    cpu: dict[str, list[float]] = {"local": [], "served": []}
    try:
        for run in range(1, args.runs + 1):
            for name, (seconds, used) in (
                ("local", local_gauge(args.db)),
                ("served", asyncio.run(served_gauge(url, server.pid))),
            ):
                times[name].append(seconds)
                cpu[name].append(used)
            seconds, _ = asyncio.run(
                screenshot(url + "/", Path(args.shot), wait_for=GAUGE.pattern, timeout=120)
            )
            times["browser"].append(seconds)
            print(
                f"run {run}: local {times['local'][-1]:.3f} s ({cpu['local'][-1]:.2f} s CPU),"
                f" served {times['served'][-1]:.3f} s ({cpu['served'][-1]:.2f} s CPU),"
                f" browser {times['browser'][-1]:.3f} s",
                flush=True,
            )
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    load_after = os.getloadavg()
    local = statistics.median(times["local"])
    print(f"store: {args.db}; {args.runs} interleaved runs; medians:")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:8} gauge {median:.3f} s  ({median / local:.2f}x local)")
    local_cpu = statistics.median(cpu["local"])
    for name, values in cpu.items():
        median = statistics.median(values)
        print(f"  {name:8} console CPU to the gauge {median:.2f} s  ({median / local_cpu:.2f}x)")
    print(f"screenshot: {args.shot}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
