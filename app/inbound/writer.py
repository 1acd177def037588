"""Group commit for inbound mail: one writer thread, many messages per transaction.

Each SMTP session hands its message over at DATA and waits. One thread takes
everything queued, applies it in one write transaction, commits, and only
then answers each message: an acknowledged message (250) is a committed one,
so a kill -9 after a 250 loses nothing. Under light load a batch is one
message; under heavy load batches grow by themselves, with no timer (as the
landing server's one-click writer does, ``app.web.writer``).

A ``mailto:`` unsubscribe or a complaint with one recipient (nearly all of
them) goes through ``one_click.one_click_many`` for the whole batch (the
complaints leaving all email); other messages each run in a savepoint, so
one refused message (550) changes nothing and leaves the others of its
batch alone.
"""

import asyncio
import contextlib
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from app.core import inbound, one_click
from app.core.errors import UnknownProfile
from app.core.store import Store
from app.core.tokens import LinkToken

log = logging.getLogger("subgroups.inbound")
MAX_BATCH = 256


@dataclass
class _Pending:
    """One queued message: its recipients, its bytes, and the future its session awaits."""

    recipients: list[inbound.Recipient]
    content: bytes
    loop: asyncio.AbstractEventLoop
    future: "asyncio.Future[Any]"

    def single(self, kind: str) -> bool:
        """Whether the message has one recipient, of this kind."""
        return len(self.recipients) == 1 and self.recipients[0].kind == kind


Answer = list[inbound.Outcome] | BaseException


def _settle(batch: list[_Pending], outcomes: list[Answer]) -> None:
    """Answer each message on its event loop (one wake-up per loop for the batch)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Answer]]] = {}
    for pending, outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
    for loop, answers in by_loop.items():

        def run(answers: list[tuple[asyncio.Future[Any], Answer]] = answers) -> None:
            for future, outcome in answers:
                if future.done():  # the client went away
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

        with contextlib.suppress(RuntimeError):  # the loop has closed (server stopping)
            loop.call_soon_threadsafe(run)


class InboundWriter:
    """Applies queued inbound messages in batches, from a thread of its own."""

    def __init__(self, store: Store, domain: inbound.InboundDomain) -> None:
        self.store = store
        self.domain = domain
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0  # how many transactions so far (for the tests and the curious)

    async def apply(
        self, recipients: list[inbound.Recipient], content: bytes
    ) -> list[inbound.Outcome]:
        """Apply one message; returns once committed (raises ``inbound.Refused``)."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Pending(recipients, content, loop, future))
        result: list[inbound.Outcome] = await future
        return result

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="inbound-writer", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._take(first)
            outcomes: list[Answer]
            try:
                outcomes = self._write(batch)
            except Exception as exc:  # nothing was committed: every message in it fails
                log.exception("inbound batch of %d failed; nothing was written", len(batch))
                refused = inbound.Refused(
                    f"4.3.0 not saved, try again later ({type(exc).__name__})"
                )
                outcomes = [refused] * len(batch)
            _settle(batch, outcomes)
            if stop:
                return

    def _take(self, first: _Pending) -> tuple[list[_Pending], bool]:
        """``first`` and what is queued after it (up to ``MAX_BATCH``); whether to stop after."""
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _write(self, batch: list[_Pending]) -> list[Answer]:
        """One committed transaction for ``batch``; each message's outcome."""
        outcomes: list[Answer] = [inbound.Refused("4.3.0 not handled")] * len(batch)
        # (index in batch, token) of the one-recipient mailto and complaint messages.
        mailto: list[tuple[int, LinkToken]] = []
        complaints: list[tuple[int, LinkToken]] = []
        others: list[int] = []
        for i, pending in enumerate(batch):
            token = pending.recipients[0].token
            if pending.single(inbound.UNSUBSCRIBE) and token is not None:
                mailto.append((i, token))
            elif pending.single(inbound.FEEDBACK):
                try:  # read before the transaction: a report that does not parse waits for nothing
                    complaints.append((i, inbound.complaint_token(self.domain, pending.content)))
                except inbound.Refused as exc:
                    outcomes[i] = exc
            else:
                others.append(i)
        with self.store.write() as session:
            for kind, source, planned in (
                (inbound.UNSUBSCRIBE, "mailto", mailto),
                (inbound.FEEDBACK, "complaint", complaints),
            ):
                if not planned:
                    continue
                results = one_click.one_click_many(
                    session=session,
                    requests=[(t.profile_id, t.campaign_id) for _, t in planned],
                    source=source,
                    all_email=kind == inbound.FEEDBACK,
                )
                for (i, token), result in zip(planned, results, strict=True):
                    if isinstance(result, UnknownProfile):
                        outcomes[i] = inbound.Refused(f"5.1.1 {result}")
                    else:
                        what = "all email" if result.all_email else ", ".join(result.group_names)
                        outcomes[i] = [
                            inbound.Outcome(kind, token.profile_id, f"unsubscribed from {what}")
                        ]
            for i in others:
                pending = batch[i]
                try:
                    with session.begin_nested():
                        outcomes[i] = [
                            inbound.accept(session, self.domain, recipient, pending.content)
                            for recipient in pending.recipients
                        ]
                except inbound.Refused as exc:
                    outcomes[i] = exc
        self.batches += 1
        return outcomes
