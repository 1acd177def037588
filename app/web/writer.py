"""Group commit for one-click unsubscribes: one writer thread, many requests per transaction.

Mail providers post one-click unsubscribes in bursts. Each needs a write
transaction, and SQLite allows one writer at a time: one transaction per
request would spend most of its time opening and committing (about 4 ms of
CPU each through the ORM, a ceiling near 250 a second). Here the endpoints
queue their request and wait; one thread takes everything queued, writes it
in one transaction (``one_click.one_click_many``), commits, and only then
answers each waiting request. Under light load a batch is one request and
nothing waits; under heavy load the batches grow by themselves, with no
timer. An acknowledged unsubscribe is therefore always a committed one.

With several worker processes (``workers``) the writers take turns on one
write lock; a writer takes its batch only once it holds the lock, so what
queued while another process wrote goes into one transaction.
"""

import asyncio
import contextlib
import logging
import queue
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from app.core import landing, one_click
from app.core.errors import UnknownProfile
from app.core.store import Store

log = logging.getLogger("subgroups.landing")
MAX_BATCH = 256


@dataclass
class _Pending:
    """One queued request: what it asks, and the future its endpoint awaits."""

    profile_id: int
    campaign_id: int | None
    loop: asyncio.AbstractEventLoop
    future: "asyncio.Future[Any]"


def _settle(batch: list[_Pending], outcomes: list[object]) -> None:
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


class OneClickWriter:
    """Writes queued one-click unsubscribes in batches, from a thread of its own."""

    def __init__(self, store: Store, write_lock: AbstractContextManager[object]) -> None:
        self.store = store
        self.write_lock = write_lock
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0  # for the tests and the curious: how many transactions so far

    async def unsubscribe(
        self, profile_id: int, campaign_id: int | None
    ) -> tuple[landing.PageSettings, one_click.UnsubscribeScope]:
        """Unsubscribe as the link says; returns once committed (raises ``UnknownProfile``)."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Pending(profile_id, campaign_id, loop, future))
        result: tuple[landing.PageSettings, one_click.UnsubscribeScope] = await future
        return result

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="landing-one-click-writer", daemon=True
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
                    outcomes = self._write(batch)
            except Exception as exc:  # nothing was committed: every request in it fails
                log.exception("one-click batch of %d failed; nothing was written", len(batch))
                outcomes = [exc] * len(batch)
            # Committed (or failed), and the lock given back: now the requests are answered.
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

    def _write(self, batch: list[_Pending]) -> list[object]:
        """One committed transaction for ``batch`` (the write lock held); each one's outcome."""
        with self.store.write() as session:
            results = one_click.one_click_many(
                session=session,
                requests=[(p.profile_id, p.campaign_id) for p in batch],
            )
            settings = landing.page_settings(session)
        self.batches += 1
        return [r if isinstance(r, UnknownProfile) else (settings, r) for r in results]
