"""``subgroups ssh`` through the real protocol: an asyncssh client against the server,
each session a real child process on a real pty.

Logins: an admin's own key gets in; an unknown key, an unknown name, another admin's
key or a removed admin's do not. A session shows the console's first screen and ends
with ctrl+q; ``Admin Session Started`` and ``Admin Session Ended`` carry the admin and
the client's address. With a small stand-in program as the session's command, the pty
is the client's size, follows window changes, and the process acts as the admin."""

import asyncio
import os
import re
import stat
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import asyncssh
import pytest

from app.core import actors, admins, groups, ledger
from app.core.event_names import ADMIN_SESSION_ENDED, ADMIN_SESSION_STARTED
from app.core.ssh_keys import parse_key_line
from app.core.store import Store, open_store
from app.ssh import server

CSI = re.compile(
    rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])"
)
# A console starting on a machine shared with other test runs can take a while.
FIRST_SCREEN_SECONDS = 90.0

# The stand-in for the console: says its terminal's size, its admin and how it came in,
# again on each window change, and ends when it reads "q".
PROBE = textwrap.dedent(
    """
    import os, signal, sys, termios, tty
    def say(*_):
        size = os.get_terminal_size(0)
        print(f"size={size.columns}x{size.lines} admin={os.environ.get('SUBGROUPS_ADMIN')} "
              f"via={os.environ.get('SUBGROUPS_ADMIN_VIA')} tty={os.isatty(0)}", flush=True)
    signal.signal(signal.SIGWINCH, say)
    tty.setcbreak(0)
    say()
    if os.environ.get("SUBGROUPS_ADMIN") == "ann":  # a busy console: reads nothing for a while
        import time; time.sleep(4)
    while sys.stdin.read(1) != "q":
        pass
    print("bye", flush=True)
    """
)


def plain(data: bytes) -> str:
    """The text of terminal output, its escape sequences taken out."""
    return CSI.sub(b"", data).decode("utf-8", "replace")


@pytest.fixture
def keys() -> dict[str, asyncssh.SSHKey]:
    return {name: asyncssh.generate_private_key("ssh-ed25519") for name in ("ann", "bob", "eve")}


@pytest.fixture
def store(tmp_path: Path, keys: dict[str, asyncssh.SSHKey]) -> Store:
    opened = open_store(tmp_path / "store.db")
    with opened.write() as s:
        groups.create_group(session=s, name="Newsletter", actor="host")
        for name, role in (("ann", actors.OWNER), ("bob", actors.VIEWER)):
            line = keys[name].export_public_key().decode()
            admins.add_admin(
                session=s,
                name=name,
                key=parse_key_line(line, where=name),
                role=role,
                actor="host",
            )
    yield opened
    opened.dispose()


@asynccontextmanager
async def running(
    store: Store,
    tmp_path: Path,
    *,
    command: Callable[[], Sequence[str]] = server.console_command,
    max_sessions: int = 10,
) -> AsyncIterator[tuple[int, server.ServerState]]:
    lines: list[str] = []
    state = server.ServerState(
        store=store, max_sessions=max_sessions, command=command, log=lines.append
    )
    host_key = server.load_or_make_host_key(tmp_path / "host_key")
    acceptor = await server.start_server(state, host="127.0.0.1", port=0, host_key=host_key)
    try:
        yield acceptor.sockets[0].getsockname()[1], state
    finally:
        server.hang_up_all(state)
        acceptor.close()
        await acceptor.wait_closed()


def connect(
    port: int, user: str, key: asyncssh.SSHKey
) -> "asyncssh.connection._ConnectContextManager":
    return asyncssh.connect(
        "127.0.0.1", port, username=user, client_keys=[key], known_hosts=None, agent_path=None
    )


async def read_until(
    process: asyncssh.SSHClientProcess, wanted: Callable[[str], bool], seconds: float
) -> str:
    """Read the session's output until ``wanted(text so far)``; the text read."""
    seen = b""

    async def loop() -> str:
        nonlocal seen
        while not wanted(plain(seen)):
            chunk = await process.stdout.read(65536)
            if not chunk:
                raise AssertionError(f"the session ended; it showed: {plain(seen)[-2000:]!r}")
            seen += chunk
        return plain(seen)

    try:
        return await asyncio.wait_for(loop(), seconds)
    except TimeoutError:
        raise AssertionError(
            f"not shown in {seconds} s; it showed: {plain(seen)[-2000:]!r}"
        ) from None


def session_events(store: Store) -> list[ledger.EventRecord]:
    with store.read() as s:
        return [
            e
            for e in ledger.recent_events(s, limit=1000)
            if e.name in (ADMIN_SESSION_STARTED, ADMIN_SESSION_ENDED)
        ]


def probe_command(tmp_path: Path) -> Callable[[], list[str]]:
    script = tmp_path / "probe.py"
    script.write_text(PROBE, encoding="utf-8")
    return lambda: [sys.executable, str(script)]


# --- logins --------------------------------------------------------------------------------


def test_only_an_admins_own_key_logs_in(
    store: Store, tmp_path: Path, keys: dict[str, asyncssh.SSHKey]
) -> None:
    async def main() -> None:
        async with running(store, tmp_path, command=probe_command(tmp_path)) as (port, _):
            for user, key in (("ann", keys["eve"]), ("zed", keys["ann"]), ("ann", keys["bob"])):
                with pytest.raises(asyncssh.PermissionDenied):
                    async with connect(port, user, key):
                        pass
            async with connect(port, "ann", keys["ann"]) as conn:
                assert conn.get_extra_info("username") == "ann"
            with store.write() as s:
                admins.remove_admin(session=s, name="bob", actor="host")
            with pytest.raises(asyncssh.PermissionDenied):
                async with connect(port, "bob", keys["bob"]):
                    pass

    asyncio.run(main())


# --- a session of the real console -------------------------------------------------------------


def test_a_session_shows_the_console_and_ends_with_ctrl_q(
    store: Store, tmp_path: Path, keys: dict[str, asyncssh.SSHKey]
) -> None:
    async def main() -> tuple[str, int | None]:
        async with (
            running(store, tmp_path) as (port, _),
            connect(port, "ann", keys["ann"]) as conn,
        ):
            process = await conn.create_process(
                term_type="xterm-256color", term_size=(100, 30), encoding=None
            )
            # The gauge's number can come before the table (the first look): wait for both.
            shown = await read_until(
                process,
                lambda text: "1 / 50 active" in text and "Newsletter" in text,
                FIRST_SCREEN_SECONDS,
            )
            await asyncio.sleep(0.5)  # the console's key handling is up by now
            process.stdin.write(b"\x11")  # ctrl+q
            await asyncio.wait_for(process.wait_closed(), 60)
            return shown, process.exit_status

    shown, status = asyncio.run(main())

    assert "Newsletter" in shown and "Groups" in shown
    assert status == 0
    started, ended = session_events(store)
    assert (started.name, started.actor, started.source) == (ADMIN_SESSION_STARTED, "ann", "ssh")
    assert started.properties["Role"] == "owner"
    assert started.properties["Actor"] == "ann"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", started.properties["Client"])
    assert (ended.name, ended.actor) == (ADMIN_SESSION_ENDED, "ann")
    assert ended.properties["Client"] == started.properties["Client"]
    assert ended.properties["Exit Status"] == 0


# --- the pty, with a stand-in program -------------------------------------------------------


def test_the_pty_is_the_clients_size_follows_window_changes_and_acts_as_the_admin(
    store: Store, tmp_path: Path, keys: dict[str, asyncssh.SSHKey]
) -> None:
    async def main() -> tuple[str, int | None]:
        async with (
            running(store, tmp_path, command=probe_command(tmp_path)) as (port, _),
            connect(port, "bob", keys["bob"]) as conn,
        ):
            process = await conn.create_process(
                term_type="xterm", term_size=(91, 27), encoding=None
            )
            text = await read_until(process, lambda t: "size=91x27" in t, 30)
            process.change_terminal_size(133, 41)
            text += await read_until(process, lambda t: "size=133x41" in t, 30)
            process.stdin.write(b"q")
            text += await read_until(process, lambda t: "bye" in t, 30)
            await asyncio.wait_for(process.wait_closed(), 30)
            return text, process.exit_status

    text, status = asyncio.run(main())

    assert "size=91x27 admin=bob via=ssh tty=True" in text
    assert "size=133x41 admin=bob" in text
    assert status == 0


def test_a_session_without_a_terminal_or_with_a_command_is_turned_away(
    store: Store, tmp_path: Path, keys: dict[str, asyncssh.SSHKey]
) -> None:
    async def main() -> list[tuple[str, int | None]]:
        results = []
        async with (
            running(store, tmp_path, command=probe_command(tmp_path)) as (port, _),
            connect(port, "ann", keys["ann"]) as conn,
        ):
            for command, term in ((None, None), ("cat /etc/passwd", "xterm")):
                done = await conn.run(command, term_type=term, encoding=None)
                results.append((plain(done.stdout or b""), done.exit_status))
        return results

    (no_terminal, no_terminal_status), (command, command_status) = asyncio.run(main())

    assert "ask for a terminal (ssh -t)" in no_terminal and no_terminal_status == 1
    assert "the console only" in command and command_status == 1
    assert session_events(store) == []


def test_sessions_past_max_sessions_are_turned_away(
    store: Store, tmp_path: Path, keys: dict[str, asyncssh.SSHKey]
) -> None:
    async def main() -> tuple[str, int | None]:
        async with (
            running(store, tmp_path, command=probe_command(tmp_path), max_sessions=1) as (port, _),
            connect(port, "ann", keys["ann"]) as conn,
        ):
            first = await conn.create_process(term_type="xterm", term_size=(80, 24), encoding=None)
            await read_until(first, lambda t: "size=80x24" in t, 30)
            second = await conn.run(term_type="xterm", term_size=(80, 24), encoding=None)
            first.stdin.write(b"q")
            await asyncio.wait_for(first.wait_closed(), 30)
            return plain(second.stdout or b""), second.exit_status

    text, status = asyncio.run(main())

    assert "1 sessions are open, the most this server takes (--max-sessions 1)" in text
    assert status == 1


def test_a_client_that_goes_away_ends_its_console(
    store: Store, tmp_path: Path, keys: dict[str, asyncssh.SSHKey]
) -> None:
    async def main() -> None:
        async with running(store, tmp_path, command=probe_command(tmp_path)) as (port, state):
            async with connect(port, "ann", keys["ann"]) as conn:
                process = await conn.create_process(
                    term_type="xterm", term_size=(80, 24), encoding=None
                )
                await read_until(process, lambda t: "size=80x24" in t, 30)
                (session,) = state.sessions
                assert session.process is not None
                child = session.process.process
            # The connection is closed without a word: the child gets SIGHUP and goes.
            await asyncio.wait_for(asyncio.to_thread(child.wait), 30)
            for _ in range(100):
                if not state.sessions:
                    break
                await asyncio.sleep(0.1)
            assert not state.sessions

    asyncio.run(main())
    assert [e.name for e in session_events(store)] == [ADMIN_SESSION_STARTED, ADMIN_SESSION_ENDED]


# --- the host key ----------------------------------------------------------------------------


def test_the_host_key_is_made_once_private_and_its_fingerprint_printed(
    tmp_path: Path, subprocess_env: dict[str, str], python: str
) -> None:
    path = tmp_path / "keys" / "host_key"
    made = server.load_or_make_host_key(path)
    again = server.load_or_make_host_key(path)

    assert made.made and not again.made
    assert made.fingerprint == again.fingerprint and made.fingerprint.startswith("SHA256:")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    db = tmp_path / "store.db"
    open_store(db).dispose()
    child = subprocess.Popen(
        [python, "-m", "app", "ssh", "--db", str(db), "--port", "0", "--host-key", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env,
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        second = child.stdout.readline()
    finally:
        child.terminate()
        child.wait(30)
    assert first.startswith("Serving the console over SSH on 127.0.0.1:")
    assert second == f"Host key {made.fingerprint}: {path}\n"


def test_a_long_paste_into_a_busy_console_holds_up_no_other_session(
    store: Store, tmp_path: Path, keys: dict[str, asyncssh.SSHKey]
) -> None:
    """ann's console reads nothing for 4 s while she pastes far more than a pty holds;
    bob's session opens and answers meanwhile, and ann's paste arrives whole after."""

    async def main() -> tuple[float, str]:
        async with (
            running(store, tmp_path, command=probe_command(tmp_path)) as (port, _),
            connect(port, "ann", keys["ann"]) as ann_conn,
            connect(port, "bob", keys["bob"]) as bob_conn,
        ):
            ann = await ann_conn.create_process(
                term_type="xterm", term_size=(80, 24), encoding=None
            )
            await read_until(ann, lambda t: "size=80x24" in t, 30)
            ann.stdin.write(b"x" * 200_000 + b"q")
            began = asyncio.get_running_loop().time()
            bob = await bob_conn.create_process(
                term_type="xterm", term_size=(70, 20), encoding=None
            )
            await read_until(bob, lambda t: "size=70x20 admin=bob" in t, 30)
            bob_answered = asyncio.get_running_loop().time() - began
            text = await read_until(ann, lambda t: "bye" in t, 60)
            bob.stdin.write(b"q")
            await asyncio.wait_for(bob.wait_closed(), 30)
            await asyncio.wait_for(ann.wait_closed(), 30)
            return bob_answered, text

    bob_answered, text = asyncio.run(main())

    assert bob_answered < 3.5, "bob waited for ann's console"
    assert "bye" in text
