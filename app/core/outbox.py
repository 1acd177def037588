"""Where a campaign's messages go: a Maildir outbox (the default) or an SMTP server.

An outbox takes finished messages (``OutgoingMessage``: envelope and the
RFC 5322 bytes). The sender opens it at the start of each batch and closes
it at the end: ``SmtpOutbox`` holds one connection for a batch;
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
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Protocol

from app.core.errors import InvalidInput, SubgroupsError
from app.core.outcomes import AMBIGUOUS, NOT_SENT, REFUSED, SENT, Outcome, Report
from app.core.places import data_dir

ENV_SMTP_USER = "SUBGROUPS_SMTP_USER"
ENV_SMTP_PASSWORD = "SUBGROUPS_SMTP_PASSWORD"
OUTBOX_DIR_NAME = "outbox"
SMTP_TIMEOUT = 30.0  # seconds for connecting and for each SMTP command
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


# --- SMTP ------------------------------------------------------------------------


def parse_host_port(text: str, *, default_port: int = 25) -> tuple[str, int]:
    """``HOST:PORT`` (or ``HOST``; ``[v6]:PORT``) as a host and a port; InvalidInput otherwise."""
    value = text.strip()
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:\s\[\]]+)(?::(\d+))?", value)
    if not match:
        raise InvalidInput(
            f"--smtp {text!r} is not HOST:PORT (for example --smtp mail.example.com:587)",
            field="smtp",
        )
    host = match.group(1) or match.group(3)
    port_text = match.group(2) or match.group(4)
    port = int(port_text) if port_text else default_port
    if not 1 <= port <= 65535:
        raise InvalidInput(f"--smtp {text!r}: port {port} is not between 1 and 65535", field="smtp")
    return host, port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def failure_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words ("Connection refused", "timed out")."""
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__


def _reply(code: int, text: bytes | str) -> str:
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(said.split())}".strip()


_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


def data_section(data: bytes) -> bytes:
    """A message as sent after DATA (RFC 5321 4.5.2): leading dots doubled, ended by CRLF.CRLF."""
    data = _LEADING_DOT.sub(b"..", data)
    return data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")


class SmtpOutbox:
    """Messages handed to an SMTP server: one connection per batch, optional STARTTLS and login.

    Credentials come from ``SUBGROUPS_SMTP_USER`` and ``SUBGROUPS_SMTP_PASSWORD``
    (``from_env``) and are only sent over STARTTLS, or to a server on this
    machine. Each message goes as MAIL, RCPT, DATA: a failure before the
    message itself was handed over means it was not sent; a broken
    connection after that leaves it unknown (``OutboxUnavailable.ambiguous``).
    """

    idempotent = False

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = SMTP_TIMEOUT,
        local_hostname: str | None = None,
    ) -> None:
        if username and not starttls and not _is_loopback(host):
            raise InvalidInput(
                f"SMTP credentials ({ENV_SMTP_USER}) are only sent over an encrypted "
                f"connection: add --starttls, or unset {ENV_SMTP_USER} for {host}",
                field="smtp",
            )
        if username and password is None:
            raise InvalidInput(
                f"{ENV_SMTP_USER} is set but {ENV_SMTP_PASSWORD} is not", field="smtp"
            )
        self.host = host
        self.port = port
        self.starttls = starttls
        self.username = username or None
        self.password = password
        self.timeout = timeout
        self.local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None

    @classmethod
    def from_env(cls, host: str, port: int, *, starttls: bool = False) -> "SmtpOutbox":
        """An SMTP outbox whose credentials (if any) come from the environment."""
        return cls(
            host,
            port,
            starttls=starttls,
            username=os.environ.get(ENV_SMTP_USER) or None,
            password=os.environ.get(ENV_SMTP_PASSWORD),
        )

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def description(self) -> str:
        return f"SMTP server {self.where}"

    @property
    def destination(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"smtp:{host.lower()}:{self.port}"

    def _unavailable(self, what: str, *, ambiguous: bool = False) -> OutboxUnavailable:
        return OutboxUnavailable(f"SMTP server {self.where} {what}", ambiguous=ambiguous)

    def open(self) -> None:
        if self._smtp is not None:
            return
        try:
            smtp = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
        except (OSError, smtplib.SMTPException) as exc:
            raise self._unavailable(f"unreachable: {failure_reason(exc)}") from exc
        try:
            smtp.ehlo_or_helo_if_needed()
            if self.starttls:
                if not smtp.has_extn("starttls"):
                    raise self._unavailable("does not offer STARTTLS (drop --starttls?)")
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            self._drop(smtp)
            raise self._unavailable(
                f"refused the credentials in {ENV_SMTP_USER}/{ENV_SMTP_PASSWORD}: "
                f"{failure_reason(exc)}"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            self._drop(smtp)
            raise self._unavailable(f"cannot log in: {exc}") from exc
        except ssl.SSLError as exc:
            self._drop(smtp)
            raise self._unavailable(f"TLS failed: {exc.reason or exc}") from exc
        except OutboxUnavailable:
            self._drop(smtp)
            raise
        except (OSError, smtplib.SMTPException) as exc:
            self._drop(smtp)
            raise self._unavailable(f"unreachable: {failure_reason(exc)}") from exc
        self._smtp = smtp

    @staticmethod
    def _drop(smtp: smtplib.SMTP) -> None:
        with contextlib.suppress(Exception):  # a broken connection: nothing left to close
            smtp.close()

    def _refused(self, smtp: smtplib.SMTP, stage: str, code: int, text: bytes, rcpt: str) -> None:
        """Act on a reply that is not a success: raise the matching error."""
        try:
            smtp.rset()  # leave the connection ready for the next message
        except (OSError, smtplib.SMTPException):
            self.close()
        reply = _reply(code, text)
        if code >= 500 and stage != "MAIL FROM":
            raise DeliveryRefused(
                f"SMTP server {self.where} refused the message to {rcpt}: {reply}"
            )
        if code >= 500:
            raise self._unavailable(f"refused the sender address: {reply}")
        raise self._unavailable(f"deferred the message to {rcpt} ({stage}): {reply}")

    def deliver(self, message: OutgoingMessage) -> None:
        if self._smtp is None:
            self.open()
        smtp = self._smtp
        assert smtp is not None
        rcpt = message.recipient
        try:
            code, text = smtp.mail(message.sender)
            if code != 250:
                self._refused(smtp, "MAIL FROM", code, text, rcpt)
            code, text = smtp.rcpt(rcpt)
            if code not in (250, 251):
                self._refused(smtp, "RCPT TO", code, text, rcpt)
            code, text = smtp.docmd("DATA")
            if code != 354:
                self._refused(smtp, "DATA", code, text, rcpt)
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self.close()
            raise self._unavailable(f"unreachable: {failure_reason(exc)}") from exc
        # From here on the server may keep the message even if the connection breaks.
        try:
            smtp.send(data_section(message.data))
            code, text = smtp.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self.close()
            raise self._unavailable(
                f"went away while taking the message to {rcpt}: {failure_reason(exc)}",
                ambiguous=True,
            ) from exc
        if code != 250:
            self._refused(smtp, "end of DATA", code, text, rcpt)

    def deliver_many(self, messages: Iterable[OutgoingMessage], report: Report) -> None:
        deliver_one_by_one(self.deliver, messages, report)

    @property
    def connection(self) -> smtplib.SMTP | None:
        """The open connection (after ``open``), for a caller that speaks SMTP on it itself."""
        return self._smtp

    def abandon(self) -> None:
        """Forget a broken connection without a goodbye (there is nobody to say it to)."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            self._drop(smtp)

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except Exception:  # the server is gone already: nothing to say goodbye to
            self._drop(smtp)

    def delivered_keys(self, keys: Iterable[str]) -> set[str]:
        # An SMTP server cannot be asked what it has; the sender never resends unknowns.
        return set()
