"""Sending over several SMTP connections at once, pipelined where the server allows.

A relay answers each command after some milliseconds; one message after
another over one connection then spends nearly all its time waiting. The
``SmtpPool`` outbox hides that wait:

- **N connections** (``--connections N``), each with a thread of its own and
  its own ``smtplib.SMTP`` (opened by an ``SmtpOutbox``: STARTTLS and login as
  there), kept for the whole send, across batches; the messages of a batch go
  to whichever connection is free.
- **PIPELINING** (RFC 2920) when the server's EHLO offers it: MAIL FROM,
  RCPT TO and DATA are written together and the three replies read after,
  so a message costs two round trips instead of four. Replies are read
  with smtplib's ``getreply`` (multi-line replies included).
- **Replies**: 250 after the message is *sent*; a 5xx for the recipient or
  the content is *refused* for good (the sender records the person as
  failed; a 5.1.x is a hard bounce); any other 4xx is tried again after
  ``retry_delays`` (0.5 s, 1 s, 2 s) and, still refused, *deferred* (not
  sent; the next run of the send tries again). A 5xx to MAIL FROM (the
  sender address) stops the batch: no message could go.
- **A dropped connection** (or a 421, the server closing it) before the
  message itself was handed over: reconnect once and try again; if that
  fails too, the connection is given up for the batch and its message goes
  to another. Once no connection is left, the outbox is unavailable (the
  send pauses). A connection that breaks *after* the message was handed
  over leaves it ``ambiguous``: never sent again.

Every outcome is reported from the caller's thread, so the sender's
bookkeeping needs no locks.
"""

import os
import smtplib
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from app.core.errors import InvalidInput
from app.core.outbox import DeliveryRefused, OutboxUnavailable, OutgoingMessage
from app.core.outcomes import AMBIGUOUS, DEFERRED, NOT_SENT, REFUSED, SENT, Outcome, Report
from app.core.smtp_outbox import (
    ENV_SMTP_PASSWORD,
    ENV_SMTP_USER,
    SMTP_TIMEOUT,
    SmtpOutbox,
    data_section,
    failure_reason,
)

MAX_CONNECTIONS = 64
RETRY_DELAYS = (0.5, 1.0, 2.0)  # seconds before each new try of a 4xx
SERVER_CLOSING = 421


class _Dropped(Exception):
    """The connection broke; ``handed`` says whether the message itself was handed over."""

    def __init__(self, reason: str, *, handed: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.handed = handed


def _words(code: int, text: bytes) -> str:
    said = text.decode("utf-8", "replace")
    return f"{code} {' '.join(said.split())}".strip()


class _Link:
    """One connection of the pool (owned by its worker thread while a message is on it)."""

    def __init__(self, opener: SmtpOutbox) -> None:
        self.opener = opener
        self.broken = False  # given up for this batch: the next batch connects again

    @property
    def smtp(self) -> smtplib.SMTP | None:
        return self.opener.connection

    def connect(self) -> None:
        self.opener.open()

    def drop(self) -> None:
        self.opener.abandon()

    @property
    def pipelining(self) -> bool:
        smtp = self.smtp
        return smtp is not None and bool(smtp.has_extn("pipelining"))


@dataclass
class _Batch:
    """One ``deliver_many`` call: the messages waiting, in flight and settled."""

    pending: deque[tuple[int, OutgoingMessage]] = field(default_factory=deque)
    results: list[tuple[int, Outcome]] = field(default_factory=list)
    in_flight: int = 0
    error: OutboxUnavailable | None = None  # no message more can go in this batch
    abandoned: bool = False


class SmtpPool:
    """An SMTP outbox over ``connections`` connections at once (see the module docstring).

    Connections live across batches; ``shutdown`` (or leaving a ``with``
    block) says goodbye to the server. ``close`` only ends a batch.
    """

    idempotent = False

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        connections: int = 1,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = SMTP_TIMEOUT,
        local_hostname: str | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        pipelining: bool = True,
    ) -> None:
        if not 1 <= connections <= MAX_CONNECTIONS:
            raise InvalidInput(
                f"--connections {connections}: must be between 1 and {MAX_CONNECTIONS}",
                field="connections",
            )

        def opener() -> SmtpOutbox:
            return SmtpOutbox(
                host, port, starttls=starttls, username=username, password=password,
                timeout=timeout, local_hostname=local_hostname,
            )  # fmt: skip

        self._first = opener()  # checks the credentials' rules before anything is sent
        self._links = [_Link(self._first)] + [_Link(opener()) for _ in range(connections - 1)]
        self.connections = connections
        self.retry_delays = tuple(retry_delays)
        self.use_pipelining = pipelining
        self._cond = threading.Condition()
        self._batch: _Batch | None = None
        self._threads: list[threading.Thread] = []
        self._shut = False
        self.pipelined = False  # whether a message went pipelined (the server offered it)

    @classmethod
    def from_env(
        cls, host: str, port: int, *, connections: int = 1, starttls: bool = False
    ) -> "SmtpPool":
        """A pool whose credentials (if any) come from the environment, as ``SmtpOutbox``'s."""
        return cls(
            host, port, connections=connections, starttls=starttls,
            username=os.environ.get(ENV_SMTP_USER) or None,
            password=os.environ.get(ENV_SMTP_PASSWORD),
        )  # fmt: skip

    # --- the Outbox protocol ------------------------------------------------------------

    @property
    def description(self) -> str:
        return self._first.description

    @property
    def destination(self) -> str:
        return self._first.destination

    def open(self) -> None:
        """Connect the first connection now (so an unreachable server is said at once);
        the others connect in their threads when they first have a message."""
        with self._cond:
            for link in self._links:
                link.broken = False
            live = any(link.smtp is not None for link in self._links)
        if not live:
            self._first.open()  # raises OutboxUnavailable
        if not self._threads:
            for number, link in enumerate(self._links):
                thread = threading.Thread(
                    target=self._work, args=(link,), name=f"smtp-{number}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def deliver(self, message: OutgoingMessage) -> None:
        """One message, as ``SmtpOutbox.deliver`` (its errors included)."""
        said: list[Outcome] = []
        self.deliver_many([message], lambda _index, outcome: said.append(outcome))
        outcome = said[0]
        if outcome.status == REFUSED:
            raise DeliveryRefused(outcome.reply)
        if outcome.status != SENT:
            raise OutboxUnavailable(outcome.reply, ambiguous=outcome.status == AMBIGUOUS)

    def deliver_many(self, messages: Iterable[OutgoingMessage], report: Report) -> None:
        self.open()
        batch = _Batch()
        with self._cond:
            self._batch = batch
        taken = 0
        settled = 0
        try:
            for index, message in enumerate(messages):
                with self._cond:
                    batch.pending.append((index, message))
                    taken += 1
                    # All: the thread woken must be one whose connection can take it.
                    self._cond.notify_all()
                    results, batch.results = batch.results, []
                    stopped = batch.error is not None
                for done in results:
                    report(*done)
                settled += len(results)
                if stopped:
                    break
            while True:
                with self._cond:
                    while not batch.results and not self._over(batch, taken, settled):
                        self._cond.wait(1.0)
                    results, batch.results = batch.results, []
                    unsent = []
                    if batch.error is not None and batch.in_flight == 0:
                        unsent, batch.pending = list(batch.pending), deque()
                for done in results:
                    report(*done)
                settled += len(results)
                for index, _message in unsent:
                    report(index, Outcome(NOT_SENT, batch.error.message if batch.error else ""))
                settled += len(unsent)
                if settled >= taken:
                    break
            if batch.error is not None:
                raise batch.error
        finally:
            with self._cond:
                batch.abandoned = True  # after an error (ctrl+c): the workers take no more
                results, batch.results = batch.results, []
                unsent, batch.pending = list(batch.pending), deque()
                self._batch = None
            for done in results:
                report(*done)
            for index, _message in unsent:
                report(index, Outcome(NOT_SENT))

    @staticmethod
    def _over(batch: _Batch, taken: int, settled: int) -> bool:
        if batch.error is not None:
            return batch.in_flight == 0
        return settled >= taken

    def close(self) -> None:
        """End of a batch: the connections stay open for the next one."""
        return None

    def shutdown(self) -> None:
        """Stop the threads and say goodbye (QUIT) on every connection; never raises."""
        with self._cond:
            self._shut = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        for link in self._links:
            link.opener.close()
        self._shut = False

    def __enter__(self) -> "SmtpPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def delivered_keys(self, keys: Iterable[str]) -> set[str]:
        return set()  # an SMTP server cannot be asked: the sender never resends unknowns

    # --- the connections' threads ----------------------------------------------------------

    def _work(self, link: _Link) -> None:
        while True:
            with self._cond:
                while not self._shut and not self._can_take(link):
                    self._cond.wait()
                if self._shut:
                    return
                batch = self._batch
                assert batch is not None
                index, message = batch.pending.popleft()
                batch.in_flight += 1
            try:
                outcome, stop = self._deliver_on(link, message)
            except BaseException as exc:  # a bug: the message's fate is unknown
                link.drop()
                outcome, stop = Outcome(AMBIGUOUS, f"{exc.__class__.__name__}: {exc}"), None
            with self._cond:
                batch.in_flight -= 1
                if outcome is not None:
                    batch.results.append((index, outcome))
                else:  # not handed over: another connection takes it
                    batch.pending.appendleft((index, message))
                    link.broken = True
                    if stop is not None and (
                        stop.fatal or all(other.broken for other in self._links)
                    ):
                        batch.error = batch.error or stop.error
                self._cond.notify_all()

    def _can_take(self, link: _Link) -> bool:
        batch = self._batch
        return (
            batch is not None
            and not batch.abandoned
            and batch.error is None
            and not link.broken
            and bool(batch.pending)
        )

    def _deliver_on(
        self, link: _Link, message: OutgoingMessage
    ) -> tuple[Outcome | None, "_Stop | None"]:
        """Send one message on this connection: its outcome, or None and why not."""
        where = self._first.where
        rcpt = message.recipient
        reconnected = False
        tries = 0
        while True:
            if link.smtp is None:
                try:
                    link.connect()
                except OutboxUnavailable as exc:
                    return None, _Stop(exc)
            try:
                code, text, stage = self._transact(link, message)
            except _Dropped as exc:
                link.drop()
                if exc.handed:
                    return Outcome(AMBIGUOUS, f"SMTP server {where} went away while taking "
                                   f"the message to {rcpt}: {exc.reason}"), None  # fmt: skip
                if reconnected:
                    return None, _Stop(
                        OutboxUnavailable(f"SMTP server {where} unreachable: {exc.reason}")
                    )
                reconnected = True
                continue
            reply = _words(code, text)
            if code == 250:
                return Outcome(SENT, reply), None
            if code == SERVER_CLOSING:
                link.drop()
                if reconnected:
                    return None, _Stop(
                        OutboxUnavailable(
                            f"SMTP server {where} deferred the message to {rcpt} ({stage}): {reply}"
                        )
                    )
                reconnected = True
                continue
            if 400 <= code < 500:
                if tries < len(self.retry_delays):
                    time.sleep(self.retry_delays[tries])
                    tries += 1
                    continue
                return Outcome(DEFERRED, reply), None
            if stage == "MAIL FROM":
                return None, _Stop(
                    OutboxUnavailable(f"SMTP server {where} refused the sender address: {reply}"),
                    fatal=True,
                )
            return Outcome(REFUSED, reply), None

    def _transact(self, link: _Link, message: OutgoingMessage) -> tuple[int, bytes, str]:
        """MAIL, RCPT, DATA and the message: the reply that settles it, and at which stage."""
        smtp = link.smtp
        assert smtp is not None
        try:
            commands = [
                ("MAIL FROM", f"MAIL FROM:{smtplib.quoteaddr(message.sender)}\r\n".encode("ascii")),
                ("RCPT TO", f"RCPT TO:{smtplib.quoteaddr(message.recipient)}\r\n".encode("ascii")),
                ("DATA", b"DATA\r\n"),
            ]
        except UnicodeEncodeError:
            return 553, b"5.1.3 the address is not ASCII (no SMTPUTF8 here)", "RCPT TO"
        wanted = {"MAIL FROM": (250,), "RCPT TO": (250, 251), "DATA": (354,)}
        replies: list[tuple[str, int, bytes]] = []
        try:
            if self.use_pipelining and link.pipelining:
                self.pipelined = True
                smtp.send(b"".join(command for _stage, command in commands))
                replies = [(stage, *smtp.getreply()) for stage, _command in commands]
            else:
                for stage, command in commands:
                    smtp.send(command)
                    replies.append((stage, *smtp.getreply()))
                    if replies[-1][1] not in wanted[stage]:
                        break
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            raise _Dropped(failure_reason(exc), handed=False) from exc
        problem = next(((s, c, t) for s, c, t in replies if c not in wanted[s]), None)
        if problem is not None:
            self._after_refusal(link, data_accepted=replies[-1][1] == 354)
            stage, code, text = problem
            return code, text, stage
        # From here on the server may keep the message even if the connection breaks.
        try:
            smtp.send(data_section(message.data))
            code, text = smtp.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            raise _Dropped(failure_reason(exc), handed=True) from exc
        return code, text, "end of DATA"

    @staticmethod
    def _after_refusal(link: _Link, *, data_accepted: bool) -> None:
        """Leave the connection ready for the next message (or drop it if it cannot be)."""
        smtp = link.smtp
        assert smtp is not None
        try:
            if data_accepted:
                # A pipelining server took DATA though RCPT failed: end an empty message
                # with no recipient (RFC 2920 section 3.1); it goes nowhere.
                smtp.send(b".\r\n")
                smtp.getreply()
            smtp.send(b"RSET\r\n")
            smtp.getreply()
        except (OSError, smtplib.SMTPServerDisconnected):
            link.drop()


@dataclass(frozen=True)
class _Stop:
    """Why a connection gave up a message: the error, and whether no connection can go on."""

    error: OutboxUnavailable
    fatal: bool = False
