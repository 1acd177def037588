"""Headless Chromium on a served console (``subgroups serve``): open the page, wait
until the console has drawn some text, take a screenshot.

The console is drawn on a canvas, so the page has no text to read. Before the
page loads, a small script records what the console's websocket brings (the
terminal output the browser draws); the wait ends once that output, without
its escape sequences, shows the text asked for. Chromium is driven over its
DevTools protocol (aiohttp, which textual-serve brings, is the client), with
its background network features off: it talks to the served page only.
"""

import asyncio
import base64
import json
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",  # as root (CI) it would not start otherwise
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-pings",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
)

# Keeps the text of every websocket message the page receives in window.__terminal.
RECORDER = """
(() => {
  const Original = window.WebSocket;
  const decoder = new TextDecoder();
  window.__terminal = [];
  const keep = (data) => {
    if (typeof data === "string") { window.__terminal.push(data); }
    else if (data instanceof ArrayBuffer) { window.__terminal.push(decoder.decode(data)); }
    else if (data instanceof Blob) { data.text().then((t) => window.__terminal.push(t)); }
  };
  function Recording(...args) {
    const socket = new Original(...args);
    socket.addEventListener("message", (event) => keep(event.data));
    return socket;
  }
  Recording.prototype = Original.prototype;
  Object.assign(Recording, Original);
  window.WebSocket = Recording;
})();
"""

ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b."
)


def find_chromium() -> str | None:
    """The Chromium on this machine (Debian's ``chromium``), or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def plain(terminal_output: str) -> str:
    """Terminal output without its escape sequences (colours, cursor moves)."""
    return ESCAPES.sub("", terminal_output)


class DevTools:
    """One page's DevTools connection: ``await call(method, **params)``."""

    def __init__(self, websocket: aiohttp.ClientWebSocketResponse) -> None:
        self.websocket = websocket
        self.last_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        sent = self.last_id
        await self.websocket.send_json({"id": sent, "method": method, "params": params})
        while True:
            message = await self.websocket.receive()
            if message.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"Chromium's DevTools connection ended: {message.type}")
            answer = json.loads(message.data)
            if answer.get("id") == sent:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result


async def _devtools_url(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    while True:
        line = await process.stderr.readline()
        if not line:
            raise RuntimeError("Chromium exited before its DevTools endpoint was up")
        found = re.search(rb"DevTools listening on (ws://\S+)", line)
        if found:
            return found.group(1).decode()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


async def screenshot(
    url: str,
    out: Path,
    *,
    wait_for: str,
    size: tuple[int, int] = (1280, 800),
    timeout: float = 60.0,
    then_quit: bool = False,
) -> tuple[float, str]:
    """Open ``url``, wait until the console shows ``wait_for`` (a regular expression),
    save a PNG to ``out``; with ``then_quit``, press F10 in the page and wait for the
    page's "Session ended" (the console quit).

    Returns the seconds from navigation to that text arriving, and the console's
    output so far (escape sequences removed). Raises TimeoutError if it never comes.
    """
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("no chromium on this machine")
    with tempfile.TemporaryDirectory(prefix="subgroups-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            chromium,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={size[0]},{size[1]}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        drain: asyncio.Task[None] | None = None
        try:
            endpoint = await asyncio.wait_for(_devtools_url(process), timeout)
            assert process.stderr is not None
            drain = asyncio.create_task(_drain(process.stderr))
            http_base = "http://" + endpoint.split("/")[2]
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{http_base}/json") as answer:
                    targets = await answer.json()
                page = next(t for t in targets if t["type"] == "page")
                async with session.ws_connect(
                    page["webSocketDebuggerUrl"], max_msg_size=0
                ) as websocket:
                    devtools = DevTools(websocket)
                    shot = await _shoot(devtools, url, out, wait_for, size, timeout)
                    if then_quit:
                        await _quit_with_f10(devtools, timeout)
                    return shot
        finally:
            if process.returncode is None:
                process.terminate()
            await process.wait()
            if drain is not None:
                drain.cancel()


async def _shoot(
    devtools: DevTools,
    url: str,
    out: Path,
    wait_for: str,
    size: tuple[int, int],
    timeout: float,
) -> tuple[float, str]:
    width, height = size
    await devtools.call("Page.enable")
    await devtools.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    await devtools.call("Page.addScriptToEvaluateOnNewDocument", source=RECORDER)
    started = time.monotonic()
    await devtools.call("Page.navigate", url=url)
    text = ""
    while not re.search(wait_for, text):
        if time.monotonic() - started > timeout:
            raise TimeoutError(
                f"the console never showed {wait_for!r}; it showed: {text[-2000:]!r}"
            )
        await asyncio.sleep(0.2)
        found = await devtools.call(
            "Runtime.evaluate", expression="(window.__terminal || []).join('')"
        )
        text = plain(found.get("result", {}).get("value", ""))
    seconds = time.monotonic() - started
    # The browser draws what arrived on its next frames; then the picture.
    await asyncio.sleep(1.0)
    await devtools.call(
        "Runtime.evaluate",
        expression="new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))",
        awaitPromise=True,
    )
    shot = await devtools.call("Page.captureScreenshot", format="png")
    out.write_bytes(base64.b64decode(shot["data"]))
    return seconds, text


async def _quit_with_f10(devtools: DevTools, timeout: float) -> None:
    """F10 as a person presses it (key down, key up), then the page's "Session ended"."""
    key = {"key": "F10", "code": "F10", "windowsVirtualKeyCode": 121, "nativeVirtualKeyCode": 121}
    # The terminal takes keys through its hidden text box, which has focus once clicked.
    await devtools.call(
        "Runtime.evaluate", expression="document.querySelector('.xterm-helper-textarea').focus()"
    )
    await devtools.call("Input.dispatchKeyEvent", type="rawKeyDown", **key)
    await devtools.call("Input.dispatchKeyEvent", type="keyUp", **key)
    started = time.monotonic()
    while True:
        found = await devtools.call(
            "Runtime.evaluate", expression="document.body.classList.contains('-closed')"
        )
        if found.get("result", {}).get("value"):
            return
        if time.monotonic() - started > timeout:
            raise TimeoutError("F10 in the page did not end the console's session")
        await asyncio.sleep(0.2)
