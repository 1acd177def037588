"""uvicorn's HTTP protocol with each answer written to the socket in one go.

uvicorn writes an answer's status line and headers in one ``transport.write``
and its body in another: two system calls, each a trip through the kernel's
TCP stack and a wake-up of the client. Under a burst of one-click
unsubscribes those writes were a fifth of the server's time
(bench/README.md). ``CoalescingTransport`` keeps what is written during one
turn of the event loop and hands it to the socket as one write at the end of
that turn (``loop.call_soon``): an answer's head and body go together, and
so do answers pipelined on one connection. Closing the transport writes what
is kept first.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport that gathers the writes of one event loop turn into one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._kept: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._kept:
            self._loop.call_soon(self.flush)
        self._kept.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Hand what was kept to the socket, as one write."""
        if not self._kept:
            return
        data = self._kept[0] if len(self._kept) == 1 else b"".join(self._kept)
        self._kept.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._kept.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        # Everything else (get_extra_info, is_closing, pause_reading, ...) as the transport's.
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(
            CoalescingTransport(transport, self.loop)  # type: ignore[arg-type]
        )
