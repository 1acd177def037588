"""The SMTP outbox: messages handed to an SMTP server, one connection per batch.

``SmtpOutbox`` is what ``campaigns send --smtp HOST:PORT --connections 1``
amounts to; ``app.core.smtp_pool.SmtpPool`` (more connections) shares its
helpers here: ``parse_host_port`` for ``--smtp``, ``failure_reason`` for a
connection that failed, ``data_section`` for a message's bytes after DATA.
What an SMTP outbox promises after a crash is in ``app.core.outbox``.
"""

import contextlib
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Iterable
from ipaddress import ip_address

from app.core.errors import InvalidInput
from app.core.outbox import (
    DeliveryRefused,
    OutboxUnavailable,
    OutgoingMessage,
    deliver_one_by_one,
)
from app.core.outcomes import Report

ENV_SMTP_USER = "SUBGROUPS_SMTP_USER"
ENV_SMTP_PASSWORD = "SUBGROUPS_SMTP_PASSWORD"
SMTP_TIMEOUT = 30.0  # seconds for connecting and for each SMTP command


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
