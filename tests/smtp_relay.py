"""A real SMTP relay (aiosmtpd on a loopback port) that behaves as relays do: slow, with
or without PIPELINING, deferring (4xx) or refusing (5xx) some addresses, dropping
connections. For the SMTP pool's tests and ``bench/bench_smtp.py``.

Importable from any test folder (tests/ is on sys.path once tests/conftest.py is
loaded) and from bench/ (which puts tests/ on its path).
"""

import asyncio
import socket
import threading
from collections import Counter
from email import message_from_bytes
from email import policy as email_policy
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    """A loopback port nothing listens on (as far as anyone can tell)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RelayHandler:
    """What the relay does with each command (aiosmtpd's handler hooks)."""

    def __init__(
        self, *, delay_ms: float = 0.0, pipelining: bool = True, delay_mail: bool = False
    ) -> None:
        self.delay = delay_ms / 1000
        self.delay_mail = delay_mail  # also wait before answering MAIL FROM
        self.pipelining = pipelining
        self.defer: dict[str, int] = {}  # address -> how many more times to answer 451
        self.defer_reply = "451 4.7.1 Try again later"
        self.refuse: dict[str, str] = {}  # address -> a 5xx reply
        self.drop_after: int | None = None  # close the connection after this many messages
        self.max_connections: int | None = None  # refuse (421) the greetings after this many
        self.received: list[tuple[str, list[str], bytes]] = []
        self.rcpt_tries: Counter[str] = Counter()
        self.connections = 0
        self.lock = threading.Lock()

    async def handle_EHLO(  # noqa: N802 (aiosmtpd's hook names)
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            if self.max_connections is not None and self.connections >= self.max_connections:
                return ["421 4.7.0 Too many connections"]
            self.connections += 1
        offered = [r for r in responses if "PIPELINING" not in r.upper()]
        if self.pipelining:
            offered.insert(1, "250-PIPELINING")
        return offered

    async def handle_HELO(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, hostname: str
    ) -> str:
        return "421 4.7.0 Too many connections"  # only EHLO gets in here

    async def handle_MAIL(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.delay and self.delay_mail:
            await asyncio.sleep(self.delay)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.rcpt_tries[address] += 1
            if address in self.refuse:
                return self.refuse[address]
            if self.defer.get(address, 0) > 0:
                self.defer[address] -= 1
                return self.defer_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.received.append(
                (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
            )
            count = len(self.received)
        if self.drop_after is not None and count % self.drop_after == 0:
            # Accept, then go away before the next message (an idle timeout, a restart).
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 Message accepted"

    def message_ids(self) -> Counter[str]:
        """How many times each Message-ID arrived."""
        with self.lock:
            received = list(self.received)
        ids: Counter[str] = Counter()
        for _sender, _rcpts, data in received:
            message = message_from_bytes(data, policy=email_policy.default)
            ids[str(message["Message-ID"])] += 1
        return ids

    def recipients(self) -> Counter[str]:
        """How many messages went to each address (from the envelopes)."""
        with self.lock:
            return Counter(r for _s, rcpts, _d in self.received for r in rcpts)


class Relay:
    """A relay on a loopback port for the length of a ``with`` block."""

    def __init__(
        self,
        port: int | None = None,
        *,
        handler_class: type[RelayHandler] = RelayHandler,
        **behaviour: Any,
    ) -> None:
        self.handler = handler_class(**behaviour)
        self.port = port or free_port()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10
        )

    @property
    def where(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "Relay":
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
