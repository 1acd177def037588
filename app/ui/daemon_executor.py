"""Thread workers that quitting never waits for.

Textual runs a thread worker in the event loop's default executor. The
standard one is joined twice on the way out: ``asyncio.run`` shuts it down
waiting for its threads, and the interpreter joins them at exit. A read
worker that is slow (a profile's history, a segment count) then holds ctrl+q
for as long as it runs. Here each piece of work gets its own daemon thread,
and shutting down waits for none of them: their results are not wanted once
the console is quitting (the ``closing`` event tells long loops to stop).
"""

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class DaemonExecutor(ThreadPoolExecutor):
    """An executor (a ThreadPoolExecutor for asyncio's sake) of unjoined daemon threads."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> "Future[Any]":
        future: Future[Any] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:  # handed to whoever awaits the future
                future.set_exception(error)
            else:
                future.set_result(result)

        threading.Thread(target=run, name="console worker", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Waits for nothing: the threads are daemons, left to finish or die with the process."""
