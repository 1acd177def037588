"""Where a campaign's messages go: a Maildir outbox (the default) or an SMTP server.

An outbox takes finished messages (``OutgoingMessage``: envelope and the
RFC 5322 bytes). The sender opens it at the start of each batch and closes
it at the end: ``app.core.smtp_outbox.SmtpOutbox`` holds one connection for a batch;
``app.core.smtp_pool.SmtpPool`` (what ``campaigns send --smtp`` uses) keeps
its connections from batch to batch, until ``shutdown``.

What an outbox promises matters for "never mail anyone twice" after a crash
(``app.core.sending``): the Maildir outbox names each file after its message
(``OutgoingMessage.key``), so it can say which of a crashed batch's messages
are already there (``delivered_keys``) and writing one again is harmless;
an SMTP server cannot be asked, so a message whose fate is unknown is never
sent again.

Errors: ``OutboxUnavailable`` (the outbox cannot take messages now: the
send pauses and can be resumed) and ``DeliveryRefused`` (the server refused
this one message for good).

A batch goes through ``deliver_many``, which says what became of each
message (an ``Outcome``) as it is settled. The outboxes here take them one
by one (``deliver_one_by_one``); ``app.core.smtp_pool.SmtpPool`` spreads them
over several SMTP connections.
"""

import contextlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.core.errors import InvalidInput, SubgroupsError
from app.core.outcomes import AMBIGUOUS, NOT_SENT, REFUSED, SENT, Outcome, Report
from app.core.places import data_dir

OUTBOX_DIR_NAME = "outbox"
# A message file is personal data: readable by its owner only (as Maildir delivery agents do).
FILE_MODE = 0o600
DIR_MODE = 0o700


class OutboxUnavailable(SubgroupsError):
    """The outbox cannot take messages now (server unreachable, disk full): the send pauses.

    ``ambiguous`` is true when the message in hand may have been delivered
    all the same (the connection broke after the whole message was handed
    over): it must not be sent again.
    """

    exit_code = 1

    def __init__(self, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(message, field="outbox")
        self.ambiguous = ambiguous


class DeliveryRefused(SubgroupsError):
    """The server refused this one message for good (5xx for the recipient or the content)."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One finished message: the envelope and the RFC 5322 bytes (CRLF line endings)."""

    # Deterministic per campaign and profile: a resumed send makes the same one.
    key: str
    message_id: str
    sender: str
    recipient: str
    data: bytes
    # Whether the Maildir copy shows ``sender`` as ``Return-Path`` (as a delivery agent
    # adds it): when it is the bounce address, not the From.
    return_path: bool = False


class Outbox(Protocol):
    """Something that takes finished messages (see the module docstring)."""

    @property
    def description(self) -> str:
        """Where the messages go, as a user would name it (a folder, ``SMTP host:port``)."""
        ...

    @property
    def destination(self) -> str:
        """Where the messages go, as a key a campaign remembers (``maildir:/abs/path``,
        ``smtp:host:port``): a send is resumed into the same destination only."""
        ...

    @property
    def idempotent(self) -> bool:
        """Delivering a message with the same key again is harmless, and
        ``delivered_keys`` says which messages are there."""
        ...

    def open(self) -> None:
        """Get ready for a batch (create folders, connect). Raises ``OutboxUnavailable``."""
        ...

    def deliver(self, message: OutgoingMessage) -> None:
        """Hand over one message; returns once it is accepted.

        Raises ``OutboxUnavailable`` (nothing more can be delivered now) or
        ``DeliveryRefused`` (this message never will be).
        """
        ...

    def deliver_many(self, messages: Iterable[OutgoingMessage], report: Report) -> None:
        """Hand over a batch, calling ``report`` (in the caller's thread) as each is settled.

        ``messages`` is read lazily. On return every message taken from it is
        reported. Raises ``OutboxUnavailable`` when it stops taking messages:
        those taken but not reported may be in the outbox's hands (never send
        them again); those never taken were not handed over.
        """
        ...

    def close(self) -> None:
        """End the batch (disconnect); never raises."""
        ...

    def delivered_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these messages are already delivered (only for idempotent outboxes)."""
        ...


def deliver_one_by_one(
    deliver: Callable[[OutgoingMessage], None],
    messages: Iterable[OutgoingMessage],
    report: Report,
) -> None:
    """``deliver_many`` for an outbox that takes one message at a time with ``deliver``."""
    for index, message in enumerate(messages):
        try:
            deliver(message)
        except DeliveryRefused as exc:
            report(index, Outcome(REFUSED, exc.message))
        except OutboxUnavailable as exc:
            report(index, Outcome(AMBIGUOUS if exc.ambiguous else NOT_SENT, exc.message))
            raise
        else:
            report(index, Outcome(SENT))


# --- Maildir ------------------------------------------------------------------------


def default_outbox_dir(store_id: str) -> Path:
    """The default outbox of one store: ``outbox/<store id>/`` in the user data directory.

    Per store, so two stores sharing a data directory never mix their messages.
    """
    return data_dir() / OUTBOX_DIR_NAME / store_id


class MaildirOutbox:
    """Messages as files in a Maildir (``tmp/``, ``new/``, ``cur/``), one file per message.

    Each message is written to ``tmp/`` and renamed into ``new/``, so a
    reader never sees half a message. The file is named after the message's
    key, which is the same whenever the same campaign is sent to the same
    profile: a message written twice replaces itself, and a resumed send can
    see which messages of a crashed batch are already there (in ``new/``, or
    in ``cur/`` once a mail reader has seen them). A consumer that moves
    files out of the Maildir altogether takes that knowledge with it.

    Files are not fsynced one by one (that would cost a disk flush per
    message): a power cut may lose the last messages written, never
    duplicate them.
    """

    idempotent = True

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._tmp = self.path / "tmp"
        self._new = self.path / "new"
        self._cur = self.path / "cur"
        self._pid = os.getpid()
        self._ready = False

    @property
    def description(self) -> str:
        return str(self.path)

    @property
    def destination(self) -> str:
        return f"maildir:{self.path.resolve()}"

    def open(self) -> None:
        if self._ready:
            return
        if self.path.exists() and not self.path.is_dir():
            raise InvalidInput(f"--outbox {self.path} is not a folder", field="outbox")
        try:
            for folder in (self.path, self._tmp, self._new, self._cur):
                folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise OutboxUnavailable(
                f"outbox {self.path}: cannot create its folders: {exc.strerror}"
            ) from exc
        if not os.access(self._tmp, os.W_OK | os.X_OK) or not os.access(
            self._new, os.W_OK | os.X_OK
        ):
            raise OutboxUnavailable(f"outbox {self.path}: no permission to write in it")
        self._ready = True

    def deliver(self, message: OutgoingMessage) -> None:
        tmp = f"{self._tmp}/{message.key}.{self._pid}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                data = message.data
                if message.return_path:
                    data = f"Return-Path: <{message.sender}>\r\n".encode("ascii") + data
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, f"{self._new}/{message.key}")
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise OutboxUnavailable(
                f"outbox {self.path}: cannot write a message: {exc.strerror or exc}"
            ) from exc

    def deliver_many(self, messages: Iterable[OutgoingMessage], report: Report) -> None:
        deliver_one_by_one(self.deliver, messages, report)

    def close(self) -> None:
        return None

    def delivered_keys(self, keys: Iterable[str]) -> set[str]:
        wanted = set(keys)
        found = {key for key in wanted if (self._new / key).exists()}
        missing = wanted - found
        if missing and self._cur.is_dir():
            # A reader that has seen a message moves it to cur/ as "key:2,FLAGS".
            for name in os.listdir(self._cur):
                base = name.split(":", 1)[0]
                if base in missing:
                    found.add(base)
        return found

    def message_paths(self) -> list[Path]:
        """Every message file in the outbox (``new/`` and ``cur/``), sorted by name."""
        return sorted(
            [p for folder in (self._new, self._cur) if folder.is_dir() for p in folder.iterdir()]
        )
