"""Group commit: one writer thread, many waiting requests per write transaction.

Requests that each need a write (one-click unsubscribes on the landing
server, messages at DATA on the inbound listener) come in bursts, and SQLite
allows one writer at a time: one transaction per request would spend most of
its time opening and committing. Here each request is queued by the code
serving it (an asyncio endpoint or SMTP session), which then waits; one
thread takes everything queued, writes it in one transaction, commits, and
only then answers each waiting request. Under light load a batch is one
request and nothing waits; under heavy load the batches grow by themselves,
with no timer. An acknowledged request is therefore always a committed one.

With a ``write_lock`` shared by several processes (the landing server's
workers) the writers take turns on it; a writer takes its batch only once it
holds the lock, so what queued while another process wrote goes into one
transaction.

A subclass says how to write a batch (``write``) and what each request of a
batch that failed as a whole gets (``failed``).
"""

import asyncio
import contextlib
import logging
import queue
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Request = TypeVar("Request")
Answer = TypeVar("Answer")

MAX_BATCH = 256


@dataclass
class _Pending(Generic[Request]):
    """One queued request, and the future its caller awaits on its own event loop."""

    request: Request
    loop: asyncio.AbstractEventLoop
    future: "asyncio.Future[Any]"


def _settle(batch: "list[_Pending[Any]]", outcomes: list[object]) -> None:
    """Answer each request on its event loop: a result, or an exception it raises.

    One wake-up of each loop for the whole batch: waking a loop from another
    thread costs a system call and a turn of the GIL.
    """
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], object]]] = {}
    for pending, outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
    for loop, answers in by_loop.items():

        def run(answers: list[tuple[asyncio.Future[Any], object]] = answers) -> None:
            for future, outcome in answers:
                if future.done():  # the client went away
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

        with contextlib.suppress(RuntimeError):  # the loop has closed (server stopping)
            loop.call_soon_threadsafe(run)


class GroupCommit(Generic[Request, Answer]):
    """Writes queued requests in batches, from a thread of its own (started on first use)."""

    thread_name = "group-commit"
    log = logging.getLogger("subgroups")

    def __init__(self, write_lock: AbstractContextManager[object] | None = None) -> None:
        self.write_lock = write_lock if write_lock is not None else contextlib.nullcontext()
        self._queue: queue.SimpleQueue[_Pending[Request] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0  # for the tests and the curious: how many transactions so far

    # --- what a subclass says -----------------------------------------------------------

    def write(self, requests: list[Request]) -> list[Answer | BaseException]:
        """One committed transaction for ``requests`` (the write lock held); each answer,
        or the exception that request raises to its caller."""
        raise NotImplementedError

    def failed(self, exc: Exception) -> BaseException:
        """What each request of a batch gets when the batch failed (nothing was committed)."""
        return exc

    # --- the queue ------------------------------------------------------------------------

    async def submit(self, request: Request) -> Answer:
        """Queue ``request`` and wait until its batch is committed; its answer."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Pending(request, loop, future))
        answer: Answer = await future
        return answer

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=self.thread_name, daemon=True
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
            batch, stop = [first], False
            outcomes: list[object]
            try:
                # The batch is taken once the write lock is held: with several
                # worker processes taking turns on it, what queued meanwhile
                # joins this transaction instead of waiting for another turn.
                with self.write_lock:
                    batch, stop = self._take(first)
                    outcomes = list(self.write([p.request for p in batch]))
                self.batches += 1
            except Exception as exc:  # nothing was committed: every request in it fails
                self.log.exception("batch of %d failed; nothing was written", len(batch))
                outcomes = [self.failed(exc)] * len(batch)
            # Committed (or failed), and the lock given back: now the requests are answered.
            _settle(batch, outcomes)
            if stop:
                return

    def _take(self, first: _Pending[Request]) -> tuple[list[_Pending[Request]], bool]:
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
