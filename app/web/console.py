"""The console in a browser: textual-serve's server, on a socket bound up front.

Each browser tab that opens the page gets a websocket and its own console
process (``python -m app --db STORE``: the same console a terminal gets),
which textual-serve runs with Textual's web driver and ends when the tab
goes. The socket is bound before anything is printed, so a port in use or an
address this machine does not have is one line and an exit code, and port 0
(any free port) prints the port it got.

Changes to textual-serve's own server: the page's links (its scripts and its
websocket) are made from the address the browser used, so a console served on
0.0.0.0 works from other machines; a websocket opened by another site's page
is refused; and the page is textual-serve's with its font served from here
rather than fetched from a font CDN.
"""

import asyncio
import logging
import shlex
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from textual_serve.server import Server, to_int

TEMPLATES = Path(__file__).resolve().parent / "templates"
TITLE = "subgroups"


def console_command(db: str | None) -> str:
    """The shell command each browser tab runs: this Python's ``-m app`` on the store
    (``--db`` for a store file; a database URL comes through ``SUBGROUPS_DB`` so its
    password is not on a command line that ``ps`` shows)."""
    command = f"{shlex.quote(sys.executable)} -m app"
    if db is not None:
        command += f" --db {shlex.quote(db)}"
    return command


def demo_tour_command() -> str:
    """The shell command each browser tab runs for ``serve --demo-tour``: the demo with
    its tour on a fresh sample store, removed (with its outbox) when the tab closes."""
    return f"{shlex.quote(sys.executable)} -m app demo --tour --discard"


class ConsoleServer(Server):
    """textual-serve's server for the subgroups console, serving on ``sock``."""

    def __init__(self, command: str, sock: socket.socket) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(command, host=host, port=port, title=TITLE, templates_path=TEMPLATES)
        self.sock = sock
        # The tasks serving open websockets (one console each), ended on shutdown.
        self._sessions: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def request_exit(self) -> None:
        """The first ctrl+c (or SIGTERM) stops the server; another, while its consoles
        are told to quit, changes nothing (raised again, it would end it with exit 1)."""
        if self._stopping:
            return
        self._stopping = True
        super().request_exit()

    def initialize_logging(self) -> None:
        # Problems only (a console that failed to start), not a line per request.
        logging.getLogger("textual-serve").setLevel(logging.WARNING)
        logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)

    async def on_startup(self, app: web.Application) -> None:
        # The CLI says where it serves (textual-serve would print a banner).
        return None

    async def on_shutdown(self, app: web.Application) -> None:
        # Each open session ends: its websocket closes and its console is told to
        # quit (textual-serve's handler does both when cancelled).
        sessions = [task for task in self._sessions if task is not asyncio.current_task()]
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One browser tab's console, for as long as its websocket is open.

        Only for this server's own page: a browser names the page that opens a
        websocket (Origin), and any other site's page (which could otherwise drive
        the console of whoever visits it) is refused. Clients that are not browsers
        send no Origin.
        """
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(
                text=f"refused: a page from {origin} may not open this console\n"
            )
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            return await super().handle_websocket(request)
        finally:
            self._sessions.discard(task)

    @aiohttp_jinja2.template("console_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        """The page: its links go back to the address the browser used."""
        base = f"{request.scheme}://{request.host}"
        websocket = ("wss" if request.scheme == "https" else "ws") + f"://{request.host}"
        return {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": websocket + str(request.app.router["websocket"].url_for()),
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": self.title},
        }

    def serve(self, debug: bool = False) -> None:
        """Serve until SIGINT or SIGTERM (each open console is told to quit)."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_exit)
        # run_app closes the loop when it is done.
        web.run_app(
            self._make_app(),
            sock=self.sock,
            handle_signals=False,
            loop=loop,
            print=None,
            access_log=None,
            shutdown_timeout=5.0,
        )
