"""The SMTP side of ``subgroups inbound``: aiosmtpd sessions, RCPT checks, DATA answers.

RCPT TO is checked at once (``InboundDomain.recipient``): a forged or
altered token, or an address we do not have, gets 550 there. At DATA the
message goes to the writer, and the answer waits for its commit: 250 when
applied, 550 when refused (nothing changed), 451 when the store could not
take it (try again).
"""

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from app.core import inbound
from app.core.store import Store
from app.inbound.writer import InboundWriter

log = logging.getLogger("subgroups.inbound")
_UNSAFE = re.compile(r"[^\x20-\x7e]")


def _reply(code: int, exc: BaseException) -> str:
    """One SMTP reply line: printable ASCII only (the text may quote what the client sent)."""
    return f"{code} {_UNSAFE.sub('?', str(exc))[:400]}"


def _code(refused: BaseException) -> int:
    """451 (try again later) for a temporary failure (status 4.x.x), else 550."""
    return 451 if str(refused).startswith("4.") else 550


class InboundHandler:
    """aiosmtpd's handler: checks recipients, hands messages to the writer."""

    def __init__(self, domain: inbound.InboundDomain, writer: InboundWriter) -> None:
        self.domain = domain
        self.writer = writer

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        try:
            self.domain.recipient(address)
        except inbound.Refused as exc:
            log.info("refused RCPT %s: %s", address, exc)
            return _reply(_code(exc), exc)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw: Any = envelope.original_content or envelope.content or b""
        content = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "replace")
        try:
            recipients = [self.domain.recipient(address) for address in envelope.rcpt_tos]
            outcomes = await self.writer.apply(recipients, content)
        except inbound.Refused as exc:
            log.info("refused message to %s: %s", ", ".join(envelope.rcpt_tos), exc)
            return _reply(_code(exc), exc)
        for outcome in outcomes:
            log.info("%s (profile %d): %s", outcome.kind, outcome.profile_id, outcome.summary)
        return "250 2.0.0 OK: " + ", ".join(o.kind for o in outcomes)


class InboundServer:
    """The listener: ``start`` in a thread of its own (tests), or ``run`` until stopped."""

    def __init__(
        self, store: Store, domain: inbound.InboundDomain, *, host: str, port: int
    ) -> None:
        self.store = store
        self.domain = domain
        self.host = host
        self.port = port
        self.writer = InboundWriter(store, domain)
        self.handler = InboundHandler(domain, self.writer)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    def _session(self) -> SMTP:
        return SMTP(
            self.handler,
            hostname=self.domain.domain,  # never a DNS lookup for the greeting's name
            data_size_limit=inbound.MAX_MESSAGE_BYTES,
            command_call_limit=None,
            loop=self._loop,
        )

    async def _open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._server = await self._loop.create_server(self._session, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, on_ready: Callable[[], None] | None = None) -> None:
        await self._open()
        if on_ready is not None:
            on_ready()
        assert self._stopped is not None and self._server is not None
        try:
            await self._stopped.wait()
        finally:
            self._server.close()
            await self._server.wait_closed()
            self.writer.close()

    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until ctrl+c (or ``stop``); ``on_ready()`` is called once listening."""
        asyncio.run(self._serve(on_ready))

    def start(self) -> None:
        """Listen from a thread of its own; returns once the port is open."""
        ready = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve(ready.set)), name="inbound-smtp", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the inbound listener did not start")

    def stop(self) -> None:
        """Stop listening (the writer finishes what is queued)."""
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None:
            loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
