"""``subgroups serve``: the console in a browser.

The real command in a child process on a real store: its page over HTTP, a
console session over its websocket (as the page's script opens one), and
headless Chromium drawing the console with its Groups gauge. Bad input is one
line and exit 2, changing nothing.
"""

import asyncio
import contextlib
import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from cli_runner import CliRunner
from headless_chromium import find_chromium, plain, screenshot
from process_tree import descendants

from app.core.seed import load_sample_data
from app.core.store import open_store

GAUGE = re.compile(r"\d+ / 50 active")
F10 = "\x1b[21~"  # what a terminal (and the page's xterm.js) sends for F10: quit


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the sample data (11 active groups); the consoles only read it."""
    path = tmp_path_factory.mktemp("serve") / "shop.db"
    store = open_store(path, create=True)
    try:
        load_sample_data(store=store, actor="test")
    finally:
        store.dispose()
    return path


class Served:
    """``subgroups serve --port 0`` running in a child process."""

    def __init__(self, proc: subprocess.Popen[str], url: str, lines: list[str]) -> None:
        self.proc = proc
        self.url = url
        self.lines = lines

    def stop(self) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err


@pytest.fixture
def served(sample_store: Path, python: str, subprocess_env: dict[str, str]) -> Iterator[Served]:
    proc = subprocess.Popen(
        [python, "-m", "app", "serve", "--port", "0", "--db", str(sample_store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    second = proc.stdout.readline()
    assert first.startswith(f"Serving the console of {sample_store} on http://127.0.0.1:"), (
        first + proc.stderr.read() if proc.stderr else first
    )
    url = first.rsplit(" on ", 1)[1].strip()
    server = Served(proc, url, [first, second])
    try:
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


async def read_until_gauge(websocket: aiohttp.ClientWebSocketResponse, *also: str) -> str:
    """The console's output until the Groups gauge shows a count and each of ``also``
    is on screen (bounded: 60 s). The gauge's number can come before the section is
    built (the first look), so a test that reads the section names what it waits for."""
    output = ""
    deadline = time.monotonic() + 60
    while not GAUGE.search(plain(output)) or not all(text in plain(output) for text in also):
        left = deadline - time.monotonic()
        assert left > 0, f"no gauge in the console's output: {plain(output)[-2000:]!r}"
        message = await websocket.receive(timeout=left)
        assert message.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT), message
        if message.type == aiohttp.WSMsgType.BINARY:
            output += message.data.decode("utf-8", "replace")
    return plain(output)


def test_serve_help_is_true(cli: CliRunner) -> None:
    code, out, _ = cli("serve", "--help")
    assert code == 0
    assert "--host HOST" in out and "--port PORT" in out and "--db" in out
    assert "default 127.0.0.1" in out and "default 8000; 0: any free one" in out
    assert "each browser tab" in out.lower()
    code, out, _ = cli("--help")
    assert "serve" in out and "the console in a browser" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--port", "70000"), "'70000' is not a port number (0 to 65535)"),
        (("--port", "http"), "'http' is not a port number"),
        # An address of no interface here (TEST-NET-1): binding fails, nothing is sent.
        (("--host", "192.0.2.1", "--port", "0"), "cannot listen on 192.0.2.1:0"),
    ],
)
def test_bad_host_or_port_is_one_line_and_exit_2(
    cli: CliRunner, sample_store: Path, argv: tuple[str, ...], message: str
) -> None:
    code, out, err = cli("serve", "--db", str(sample_store), *argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert "Serving" not in out


def test_a_port_in_use_is_one_line_and_exit_2(cli: CliRunner, sample_store: Path) -> None:
    """Exit 2 (bad input for this machine, as ``landing`` says it), not 1 (a rule of the store)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = cli("serve", "--db", str(sample_store), "--port", str(port))
    assert code == 2
    assert err.strip().splitlines() == [
        f"subgroups: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert out == ""


def test_a_missing_store_and_an_in_memory_one_are_refused(cli: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    code, _, err = cli("serve", "--db", str(missing), "--port", "0")
    assert code == 2 and "no store at" in err
    assert not missing.exists()
    # Each tab opens the store again: an in-memory one would be a new, empty store.
    code, _, err = cli("serve", "--db", ":memory:", "--port", "0")
    assert code == 2 and err == "subgroups: no store at :memory:\n"


def test_the_page_and_a_console_session(served: Served, sample_store: Path) -> None:
    """GET / is textual-serve's page, its websocket on the address asked; the websocket
    runs a console of the store (its Groups gauge comes), F10 quits it; ctrl+c stops."""
    parts = urlsplit(served.url)
    assert "Each browser tab that opens it runs its own console" in served.lines[1]

    async def session() -> None:
        async with aiohttp.ClientSession() as client:
            async with client.get(served.url + "/") as page:
                assert page.status == 200
                html = await page.text()
            assert f'data-session-websocket-url="ws://{parts.netloc}/ws"' in html
            assert f'src="{served.url}/static/js/textual.js"' in html
            assert "googleapis" not in html  # the font comes from here
            async with client.get(served.url + "/static/js/textual.js") as script:
                assert script.status == 200
            # The address the browser used, not the one bound: localhost stays localhost.
            other = f"http://localhost:{parts.port}/"
            async with client.get(other) as page:
                assert f'"ws://localhost:{parts.port}/ws"' in await page.text()

            async with client.ws_connect(served.url + "/ws?width=120&height=40") as websocket:
                shown = await read_until_gauge(websocket, "1 Groups", "f shows: [active]")
                assert "1 Groups" in shown and "f shows: [active]" in shown
                assert GAUGE.search(shown)
                assert "11 / 50 active" in shown
                await websocket.send_str(json.dumps(["stdin", F10]))
                # The console quits: the server closes the websocket.
                while True:
                    message = await websocket.receive(timeout=30)
                    if message.type in (
                        aiohttp.WSMsgType.CLOSE,
                        aiohttp.WSMsgType.CLOSING,
                        aiohttp.WSMsgType.CLOSED,
                    ):
                        break

    asyncio.run(session())
    code, out, err = served.stop()
    assert code == 0, err
    assert out.strip().endswith("Stopped.")


def test_another_sites_page_may_not_open_a_console(served: Served) -> None:
    """A page from elsewhere, open in the admin's browser, cannot reach the console on
    127.0.0.1 (its websocket names its own origin): refused with 403, no console started.
    The server's own page may."""

    async def try_origins() -> None:
        async with aiohttp.ClientSession() as client:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(
                    served.url + "/ws", headers={"Origin": "http://evil.example"}
                )
            assert refused.value.status == 403
            assert descendants(served.proc.pid) == set()
            async with client.ws_connect(
                served.url + "/ws?width=100&height=30", headers={"Origin": served.url}
            ) as websocket:
                assert GAUGE.search(await read_until_gauge(websocket))
                await websocket.send_str(json.dumps(["stdin", F10]))

    asyncio.run(try_origins())


def test_stopping_the_server_ends_its_consoles(served: Served) -> None:
    """ctrl+c with a console open: the tab's websocket closes, the console process ends,
    the server exits 0 (a second ctrl+c while it stops changes nothing)."""

    async def open_console_then_stop() -> set[int]:
        async with (
            aiohttp.ClientSession() as client,
            client.ws_connect(served.url + "/ws?width=100&height=30") as websocket,
        ):
            await read_until_gauge(websocket)
            consoles = descendants(served.proc.pid)
            assert consoles, "no console process under the server"
            served.proc.send_signal(signal.SIGINT)
            message = await websocket.receive(timeout=30)
            while message.type == aiohttp.WSMsgType.BINARY:
                message = await websocket.receive(timeout=30)
            return consoles

    consoles = asyncio.run(open_console_then_stop())
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGINT)  # impatient: ctrl+c again
    code, out, err = served.stop()
    assert code == 0, err
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in consoles):
        assert time.monotonic() < deadline, "a console outlived the server"
        time.sleep(0.1)


@pytest.mark.skipif(
    find_chromium() is None, reason="no chromium on this machine (Debian: apt-get install chromium)"
)
def test_headless_chromium_draws_the_console_with_its_gauge(served: Served, tmp_path: Path) -> None:
    """The browser itself: the page's script opens the console; the picture is taken once
    the gauge's count has reached the browser (docs/serve-console.png is one such). Then
    F10, pressed in the page, quits the console: the page says the session ended."""
    picture = tmp_path / "console.png"
    _, shown = asyncio.run(
        screenshot(served.url + "/", picture, wait_for=GAUGE.pattern, timeout=90, then_quit=True)
    )
    assert "11 / 50 active" in shown
    data = picture.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 800)
    assert len(data) > 20_000  # a drawn console, not a blank page (about 11 KB)


def test_the_console_command_quotes_the_store_path() -> None:
    """Each tab's console runs through a shell: a path with spaces stays one argument;
    without a path (a database URL) the console reads SUBGROUPS_DB, so no password
    shows on a command line."""
    from app.web.console import console_command

    assert console_command(None).endswith(" -m app")
    assert console_command("/tmp/a b.db").endswith(" -m app --db '/tmp/a b.db'")


@pytest.mark.postgres
def test_a_postgresql_store_is_served_without_its_password_on_a_command_line(
    pg_url: str, python: str, subprocess_env: dict[str, str]
) -> None:
    """On PostgreSQL each tab's console reads the URL from its environment: the console
    comes up with its gauge, and no process under the server shows the password."""
    store = open_store(pg_url, create=True)
    try:
        load_sample_data(store=store, actor="test")
    finally:
        store.dispose()
    password = urlsplit(pg_url).password
    assert password
    secret = f":{password}@"  # as it stands in the URL (the test role's name is its password)
    proc = subprocess.Popen(
        [python, "-m", "app", "serve", "--port", "0", "--db", pg_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env,
    )
    server = None
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Serving the console of postgresql+psycopg://"), first
        assert secret not in first
        server = Served(proc, first.rsplit(" on ", 1)[1].strip(), [first])

        async def session() -> list[str]:
            async with (
                aiohttp.ClientSession() as client,
                client.ws_connect(server.url + "/ws?width=120&height=40") as websocket,
            ):
                assert "11 / 50 active" in await read_until_gauge(websocket)
                command_lines = []
                for pid in descendants(proc.pid):
                    with contextlib.suppress(OSError):
                        command_lines.append(Path(f"/proc/{pid}/cmdline").read_text())
                await websocket.send_str(json.dumps(["stdin", F10]))
                return command_lines

        command_lines = asyncio.run(session())
        assert any("-m\0app" in line for line in command_lines), command_lines
        assert not any(secret in line for line in command_lines)
    finally:
        if server is not None:
            code, _, err = server.stop()
            assert code == 0, err
        elif proc.poll() is None:
            proc.kill()
