"""Measure ``subgroups ssh`` sessions against a local console (issue 11, "Tests and speed").

    python bench/bench_ssh.py --db STORE [--runs 5] [--sessions 10]

Starts ``subgroups ssh`` on a free port with a throwaway admin (owner) in a
copy of nothing: the admin is added to STORE (use a copy) and removed after.
Then, interleaved in one run:

- **first frame**: a local console spawned on a 120x40 pty (``bench_console``)
  against an SSH session opened by an asyncssh client (connect, key exchange,
  public-key login, pty, the console's process) to the console's section bar;
  goal: the session <= 1.5x the local console;
- **key answer with N sessions**: N sessions open at once, each showing its
  gauge; then each is sent ``f`` (the Groups filter) in turn, and the time to
  the changed filter on its screen is taken; goal: each <= 200 ms.

The load average is printed before and after (the machine is shared).
"""

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncssh

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_console import ESCAPES, run_console  # noqa: E402

TIMEOUT = 90.0
ADMIN = "bench-admin"


def subgroups(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True, check=True
    )


class Screen:
    """What a session has shown, read as it comes."""

    def __init__(self, process: asyncssh.SSHClientProcess) -> None:
        self.process = process
        self.seen = b""

    async def until(self, pattern: re.Pattern[bytes], *, after: int = 0) -> float:
        """Read until the text shown since byte ``after`` matches; the time then."""
        deadline = time.monotonic() + TIMEOUT
        while not pattern.search(ESCAPES.sub(b"", self.seen[after:])):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(pattern.pattern)
            chunk = await asyncio.wait_for(self.process.stdout.read(1 << 16), left)
            if not chunk:
                raise EOFError("the session ended")
            self.seen += chunk
        return time.monotonic()


async def open_session(
    port: int, key: asyncssh.SSHKey
) -> tuple[asyncssh.SSHClientConnection, Screen, float]:
    """A session to its first frame: (connection, screen, seconds from connecting)."""
    start = time.monotonic()
    conn = await asyncssh.connect(
        "127.0.0.1", port, username=ADMIN, client_keys=[key], known_hosts=None, agent_path=None
    )
    process = await conn.create_process(
        term_type="xterm-256color", term_size=(120, 40), encoding=None
    )
    screen = Screen(process)
    frame = await screen.until(re.compile(rb"1 Groups"))
    return conn, screen, frame - start


async def close(conn: asyncssh.SSHClientConnection, screen: Screen) -> None:
    screen.process.stdin.write(b"\x11")
    await asyncio.wait_for(screen.process.wait_closed(), TIMEOUT)
    conn.close()
    await conn.wait_closed()


async def ssh_first_frame(port: int, key: asyncssh.SSHKey) -> float:
    conn, screen, frame = await open_session(port, key)
    await screen.until(re.compile(rb"\d+ / 50 active"))
    await asyncio.sleep(0.3)
    await close(conn, screen)
    return frame


async def key_answers(port: int, key: asyncssh.SSHKey, sessions: int) -> list[float]:
    opened = await asyncio.gather(*(open_session(port, key) for _ in range(sessions)))
    for _, screen, _ in opened:
        await screen.until(re.compile(rb"\d+ / 50 active"))
    await asyncio.sleep(1.0)  # every console idle
    answers = []
    for _, screen, _ in opened:
        mark = len(screen.seen)
        sent = time.monotonic()
        screen.process.stdin.write(b"f")
        shown = await screen.until(re.compile(rb"\[archived\]"), after=mark)
        answers.append(shown - sent)
    await asyncio.gather(*(close(conn, screen) for conn, screen, _ in opened))
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the store (a copy: an admin is added)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=10)
    args = parser.parse_args()
    os.chdir(ROOT)
    folder = Path(args.db).resolve().parent
    key = asyncssh.generate_private_key("ssh-ed25519")
    pub = folder / "bench-admin.pub"
    pub.write_bytes(key.export_public_key())
    subgroups("admins", "add", ADMIN, "--key", str(pub), "--role", "owner", "--db", args.db)
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "ssh", "--db", args.db, "--port", "0",
         "--host-key", str(folder / "bench-host-key"), "--max-sessions", str(args.sessions + 2)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        port = int(first.split(" on ")[1].split()[0].rsplit(":", 1)[1])
        print(f"load average before: {os.getloadavg()}")
        run_console(args.db)  # warm-up, not counted
        asyncio.run(ssh_first_frame(port, key))
        local, remote = [], []
        for n in range(args.runs):
            local.append(run_console(args.db)["frame"])
            remote.append(asyncio.run(ssh_first_frame(port, key)))
            print(f"run {n + 1}: local console first frame {local[-1]:.3f} s | "
                  f"ssh session first frame {remote[-1]:.3f} s")  # fmt: skip
        med = statistics.median
        print(f"local console first frame p50 {med(local):.3f} s")
        print(
            f"ssh session first frame   p50 {med(remote):.3f} s = "
            f"{med(remote) / med(local):.2f}x (goal <= 1.5x)"
        )
        print(f"load average between: {os.getloadavg()}")
        answers = asyncio.run(key_answers(port, key, args.sessions))
        print(
            f"{args.sessions} sessions, a key each: p50 {med(answers) * 1000:.0f} ms, "
            f"max {max(answers) * 1000:.0f} ms (goal each <= 200 ms)"
        )
        print(f"load average after: {os.getloadavg()}")
    finally:
        server.terminate()
        server.wait(30)
        subgroups("admins", "remove", ADMIN, "--db", args.db)


if __name__ == "__main__":
    main()
