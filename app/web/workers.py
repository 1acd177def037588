"""Several landing page processes on one socket: ``subgroups landing --workers N``.

One process spends most of a one-click unsubscribe in Python (parsing the
request, checking the link, rendering the answer), so it tops out near one
core. Here the parent binds the socket, then forks N workers that all accept
on it; each runs its own uvicorn and its own group commit
(``writer.OneClickWriter``).

On SQLite one process writes at a time: every write transaction of every
worker is taken under an ``flock`` on ``<db>-landing-lock`` (a blocking lock
the kernel hands over at once, where SQLite's busy handler would sleep and
retry). A worker answers only after its commit, so an acknowledged
unsubscribe is a committed one whichever worker took it.

The workers die with their parent: each asks the kernel for SIGKILL when the
parent goes (``prctl(PR_SET_PDEATHSIG)`` on Linux; elsewhere a thread that
watches the parent's pid), so a kill -9 of the parent leaves no orphan
serving the port. Ctrl+C or SIGTERM to the parent stops the workers
gracefully (each finishes its queued writes).
"""

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType, TracebackType
from typing import TextIO

from sqlalchemy.engine import make_url

from app.core.store import Store
from app.web.serving import LandingServer

PR_SET_PDEATHSIG = 1
LOCK_SUFFIX = "-landing-lock"


class ProcessWriteLock:
    """One writer at a time across processes: this process's thread lock, then an flock.

    The lock file is opened in the process that first takes the lock (an
    flock belongs to one open file, and a file opened before a fork would be
    shared by parent and workers, excluding nobody).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> "ProcessWriteLock":
        self._threads.acquire()
        try:
            if self._fd is None or self._pid != os.getpid():
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                self._pid = os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


def lock_path(store: Store) -> Path | None:
    """``<db>-landing-lock`` next to an SQLite file; None for a database server."""
    parsed = make_url(store.url)
    if parsed.get_backend_name() != "sqlite":
        return None
    return Path(f"{parsed.database}{LOCK_SUFFIX}")


def die_with_parent(parent: int) -> None:
    """Be killed when ``parent`` ends, however it ends (kill -9 included)."""
    asked = False
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            asked = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    if os.getppid() != parent:  # it went before we asked
        os._exit(1)
    if asked:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _serve_in_worker(store: Store, sock: socket.socket, log: TextIO | None) -> int:
    path = lock_path(store)
    server = LandingServer(
        store,
        sock=sock,
        access_log=log,
        write_lock=ProcessWriteLock(path) if path is not None else None,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0


def run_workers(
    *, store: Store, sock: socket.socket, workers: int, access_log: TextIO | None
) -> int:
    """Fork ``workers`` processes serving on ``sock``; wait for them. Returns the exit code.

    The parent keeps no database connection across the fork. When a worker
    ends on its own (it failed), the others are stopped and the answer is 1.
    """
    parent = os.getpid()
    store.dispose()  # no connection crosses the fork
    if access_log is not None:
        access_log.flush()
    sys.stdout.flush()
    children: set[int] = set()
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                die_with_parent(parent)
                code = _serve_in_worker(store, sock, access_log)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        children.add(pid)
    sock.close()  # the workers hold it now
    return _supervise(children)


def _supervise(children: set[int]) -> int:
    stopping = False

    def stop(signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    # Both stop the workers, even where SIGINT came in ignored (a parent that
    # ignores it, as test runners' workers may): ctrl+c must always work.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        while children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            children.discard(pid)
            if not stopping:
                print(
                    f"subgroups: landing worker {pid} stopped "
                    f"(exit status {os.waitstatus_to_exitcode(status)}); stopping the others",
                    file=sys.stderr,
                    flush=True,
                )
                code = 1
                stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
