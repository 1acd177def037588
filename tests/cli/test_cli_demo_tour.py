"""``subgroups demo --tour`` and ``subgroups serve --demo-tour``: the demo console with
its guided tour, in a terminal and in a browser tab (each tab a fresh sample store of
its own, removed when the tab closes)."""

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
from cli_runner import CliRunner
from headless_chromium import plain

from app.cli import console as console_cli
from app.ui.app import SubgroupsApp
from app.ui.tour_app import TourApp

F8 = "\x1b[19~"  # what a terminal (and the page's xterm.js) sends for F8
F10 = "\x1b[21~"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[type, bool]]:
    """The consoles the demo starts (their class, whether a demo), not run on a screen."""
    runs: list[tuple[type, bool]] = []

    def run_without_a_screen(app: SubgroupsApp) -> None:
        runs.append((type(app), app.demo))

    monkeypatch.setattr(SubgroupsApp, "run", run_without_a_screen)
    return runs


@pytest.mark.parametrize("tour", [True, False])
def test_demo_runs_the_console_with_the_tour_if_asked(
    cli: CliRunner, tmp_path: Path, started: list[tuple[type, bool]], tour: bool
) -> None:
    db = tmp_path / "demo.db"
    code, out, err = cli("demo", *(["--tour"] if tour else []), "--db", str(db))
    assert code == 0, err
    assert started == [(TourApp if tour else SubgroupsApp, True)]
    assert out == f"The demo store is kept at {db}.\n"
    assert db.is_file()


def test_a_discarded_demo_leaves_no_store_and_no_outbox(
    cli: CliRunner,
    tmp_path: Path,
    started: list[tuple[type, bool]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What each browser tab of ``serve --demo-tour`` runs: its store's folder and its
    outbox (the sample's sent campaign) are gone when it ends, and it prints nothing."""
    from app.core import outbox

    folder = tmp_path / f"{console_cli.DEMO_PREFIX}tab"
    folder.mkdir()
    monkeypatch.setattr(console_cli, "demo_db", lambda: str(folder / "demo.db"))
    made: list[Path] = []
    real_outbox_dir = outbox.default_outbox_dir

    def outbox_dir(store_id: str) -> Path:
        made.append(real_outbox_dir(store_id))
        return made[-1]

    monkeypatch.setattr(outbox, "default_outbox_dir", outbox_dir)
    code, out, err = cli("demo", "--tour", "--discard")
    assert code == 0, err
    assert started == [(TourApp, True)]
    assert out == ""
    assert "Loading the sample data" not in err
    assert made and not made[0].exists(), "the outbox is left behind"
    assert not folder.exists(), "the store is left behind"


def test_serve_demo_tour_takes_no_store(cli: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    code, out, err = cli("serve", "--demo-tour", "--db", str(db))
    assert (code, out) == (2, "")
    assert err == (
        "subgroups: --demo-tour gives each browser tab a fresh sample store of its own: "
        "leave out --db\n"
    )
    assert not db.exists()


async def read_until(websocket: aiohttp.ClientWebSocketResponse, text: str) -> str:
    """The console's output until ``text`` shows (bounded: 60 s)."""
    output = ""
    deadline = time.monotonic() + 60
    while text not in plain(output):
        left = deadline - time.monotonic()
        assert left > 0, f"no {text!r} in the console's output: {plain(output)[-2000:]!r}"
        message = await websocket.receive(timeout=left)
        assert message.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT), message
        if message.type == aiohttp.WSMsgType.BINARY:
            output += message.data.decode("utf-8", "replace")
    return plain(output)


def test_serve_demo_tour_in_a_browser_tab(python: str, subprocess_env: dict[str, str]) -> None:
    """A tab's websocket gets the demo with its tour (its first step on screen); F8, as
    the page sends it, moves the tour on; F10 quits; ctrl+c stops the server."""
    proc = subprocess.Popen(
        [python, "-m", "app", "serve", "--demo-tour", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Serving the demo with its guided tour on http://127.0.0.1:")
        assert "its own fresh sample store" in proc.stdout.readline()
        url = first.rsplit(" on ", 1)[1].strip()

        async def session() -> None:
            async with (
                aiohttp.ClientSession() as client,
                client.ws_connect(url + "/ws?width=80&height=24") as websocket,
            ):
                shown = await read_until(websocket, "Tour 1/6: Create a group")
                assert "F8 next step" in shown and "11 / 50 active" in shown
                await websocket.send_str(json.dumps(["stdin", F8]))
                await read_until(websocket, "Tour 2/6: A segment that excludes a group")
                await websocket.send_str(json.dumps(["stdin", F10]))
                while True:
                    message = await websocket.receive(timeout=30)
                    if message.type in (
                        aiohttp.WSMsgType.CLOSE,
                        aiohttp.WSMsgType.CLOSING,
                        aiohttp.WSMsgType.CLOSED,
                    ):
                        break

        asyncio.run(session())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out.strip().endswith("Stopped.")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def test_serve_demo_tour_on_an_address_not_here_is_one_line_and_exit_2(cli: CliRunner) -> None:
    # An address of no interface here (TEST-NET-1): binding fails.
    code, out, err = cli("serve", "--demo-tour", "--host", "192.0.2.1", "--port", "0")
    assert (code, out) == (2, "")
    assert err.startswith("subgroups: cannot listen on 192.0.2.1:0") and "Traceback" not in err
    assert len(err.splitlines()) == 1
