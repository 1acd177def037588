"""A child process on a pseudo-terminal, bridged to an SSH channel.

The child gets the pty's slave side as its controlling terminal (a session of
its own, so the kernel sends it ``SIGWINCH`` when the size changes and
``SIGHUP`` when the terminal goes). The parent keeps the master side: what the
child writes goes to the client, what the client types goes to the child,
and a window change from the client is set on the pty (``TIOCSWINSZ``).
"""

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
from collections.abc import Callable, Mapping, Sequence


def console_command() -> list[str]:
    """The console, run by the interpreter running the server."""
    return [sys.executable, "-m", "app", "console"]


def set_size(fd: int, columns: int, rows: int) -> None:
    """Give the terminal at ``fd`` this size (the kernel tells its foreground processes)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def _take_terminal() -> None:  # pragma: no cover - runs in the child, before exec
    """Make stdin (the pty's slave side) the controlling terminal of the new session."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyProcess:
    """One child on its own pty; ``output`` is called with what it writes, ``ended``
    with its exit status once it has exited and everything it wrote was handed on."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        columns: int,
        rows: int,
        output: Callable[[bytes], None],
        ended: Callable[[int], None],
    ) -> None:
        self._output = output
        self._ended = ended
        self._loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        set_size(slave, columns, rows)
        try:
            self.process = subprocess.Popen(
                list(command),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=dict(env),
                start_new_session=True,
                preexec_fn=_take_terminal,  # noqa: PLW1509 - the one way to set a controlling tty
                close_fds=True,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.master = master
        os.set_blocking(master, False)
        self._closed = False
        self._pending = bytearray()
        self._waiting = False
        self._loop.add_reader(master, self._readable)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the child closed the terminal (it exited)
            data = b""
        if data:
            self._output(data)
            return
        self._finish()

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self.master)
        if self._waiting:
            self._loop.remove_writer(self.master)
        os.close(self.master)
        # The child closed its terminal: it is exiting; reap it off the event loop.
        self._loop.run_in_executor(None, self._reap)

    def _reap(self) -> None:
        code = self.process.wait()
        self._loop.call_soon_threadsafe(self._ended, code)

    def write(self, data: bytes) -> None:
        """What the client typed, to the child; kept while the pty's input is full (a long
        paste) and written when it has room, so one busy session never holds up the others."""
        if self._closed:
            return
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        while self._pending and not self._closed:
            try:
                written = os.write(self.master, self._pending)
            except BlockingIOError:
                if not self._waiting:
                    self._waiting = True
                    self._loop.add_writer(self.master, self._writable)
                return
            except OSError:  # the child is gone
                self._pending.clear()
                return
            del self._pending[:written]

    def _writable(self) -> None:
        self._waiting = False
        self._loop.remove_writer(self.master)
        self._flush()

    def resize(self, columns: int, rows: int) -> None:
        """The client's window changed size."""
        if not self._closed:
            set_size(self.master, columns, rows)

    def hang_up(self) -> None:
        """The client went away: the child's session gets SIGHUP, as a closed terminal gives."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGHUP)
