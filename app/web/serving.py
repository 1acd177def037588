"""Running the landing page app: the socket, uvicorn, and the access log.

``LandingServer`` binds its socket first, so the address it serves on (and
the port, when 0 asked for a free one) is known before it starts; the CLI
runs it in the foreground, the tests in a thread.
"""

import socket
import sys
import threading
import time
from collections.abc import MutableMapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, TextIO

import uvicorn

from app.core.errors import InvalidInput
from app.core.store import Store
from app.core.tokens import Keyring
from app.web.fast_path import OneClickFastPath
from app.web.http_protocol import CoalescingHttpToolsProtocol
from app.web.server import create_app, redact_path

ASGIApp = Any  # an ASGI callable (scope, receive, send)


class AccessLog:
    """ASGI middleware: one line per request on ``stream``.

    ``client - - [time] "METHOD path HTTP/v" status bytes duration``, the
    time in UTC and any link token shortened (see ``server.redact_path``). Lines are
    written when the response is done, failed requests included.
    """

    def __init__(self, app: ASGIApp, stream: TextIO) -> None:
        self.app = app
        self.stream = stream
        self._lock = threading.Lock()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        size = 0

        async def send_and_note(message: MutableMapping[str, Any]) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self._write(scope, status or 500, size, time.perf_counter() - started)

    def _write(self, scope: MutableMapping[str, Any], status: int, size: int, took: float) -> None:
        client = scope.get("client")
        host = client[0] if client else "-"
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = (
            f'{host} - - [{when}] "{scope.get("method", "-")} {redact_path(scope.get("path", ""))} '
            f'HTTP/{scope.get("http_version", "1.1")}" {status} {size} {took * 1000:.1f}ms\n'
        )
        try:
            with self._lock:
                self.stream.write(line)
                if not getattr(self.stream, "line_buffering", False):
                    self.stream.flush()
        except (OSError, ValueError):  # a closed or broken log must not fail requests
            pass


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one); refused with one line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidInput(f"--host {host!r}: {exc.strerror}", field="host") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise InvalidInput(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", field="port"
        ) from exc
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """The URL of a listening socket, e.g. ``http://127.0.0.1:8080``."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class LandingServer:
    """The landing page served by uvicorn on a socket bound up front."""

    def __init__(
        self,
        store: Store,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        access_log: TextIO | None = sys.stderr,
        keyring: Keyring | None = None,
        sock: socket.socket | None = None,
        write_lock: AbstractContextManager[object] | None = None,
    ) -> None:
        self.store = store
        self.app = create_app(store, keyring=keyring, write_lock=write_lock)
        # A worker process serves on the socket its parent bound (``workers``).
        self.socket = sock if sock is not None else listen(host, port)
        # The usual one-click unsubscribe below Starlette, inside the access log.
        served: ASGIApp = OneClickFastPath(self.app)
        if access_log is not None:
            served = AccessLog(served, access_log)
        self.config = uvicorn.Config(
            served,
            http=CoalescingHttpToolsProtocol,  # an answer's head and body in one write
            lifespan="off",
            access_log=False,  # ours, with tokens cut short
            log_config=None,  # leave the process's logging alone (tests, the CLI)
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(self.config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where it serves, e.g. ``http://127.0.0.1:8080``."""
        return url_of(self.socket)

    def run(self) -> None:
        """Serve until interrupted (ctrl+c or SIGTERM stop it cleanly)."""
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()
            self.app.state.landing.close()

    def start(self, *, timeout: float = 10.0) -> "LandingServer":
        """Serve from a thread; returns once it accepts connections."""
        self._thread = threading.Thread(target=self.run, name="landing-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the landing server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop a server started with ``start`` and wait for it."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
