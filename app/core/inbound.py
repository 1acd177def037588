"""Inbound mail for the store's inbound domain D: what each address and message means.

Three kinds of mail come back (README, "Inbound mail"):

- ``unsubscribe+T@D`` (the ``mailto:`` List-Unsubscribe): the one-click
  effect (``app.core.one_click``), Source ``mailto``, the Campaign ID from T;
- ``bounces+T@D`` (the envelope sender): a delivery status notification
  (RFC 3464, ``multipart/report; report-type=delivery-status``), recorded by
  ``app.core.bounces``, Source ``bounce``;
- ``fbl@D``: a feedback report (RFC 5965, ``report-type=feedback-report``)
  quoting one of our messages; the token is found in the quoted
  List-Unsubscribe (or envelope sender) and the person is unsubscribed from
  all email, Source ``complaint``.

T is the message's signed link token (``app.core.tokens``), checked with the
install's keyring and the store's binding. Anything else (a forged or
altered token, an address we do not have, a report that does not parse) is
refused with ``Refused``, whose text the listener answers with 550; nothing
is changed. This module knows no SMTP: ``app.inbound`` is the listener.
"""

import email
import email.policy
import functools
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any, TypeVar

from sqlmodel import Session

from app.core import bounces, landing, one_click
from app.core.errors import SubgroupsError, UnknownProfile
from app.core.landing import RECIPIENT
from app.core.ledger import EventRecord
from app.core.models import UNSUBSCRIBED
from app.core.tokens import (
    BadToken,
    Keyring,
    LinkToken,
    SecretFileError,
    StoreBinding,
    load_keyring,
)

UNSUBSCRIBE, BOUNCES, FEEDBACK = "unsubscribe", "bounces", "fbl"
# Longest message taken: reports quote at most headers and a part of a message.
MAX_MESSAGE_BYTES = 1_000_000
_TOKEN = r"[A-Za-z0-9_-]{20,200}"
_QUOTED_TOKEN = re.compile(rf"(?:unsubscribe\+|bounces\+|/u/|/p/)({_TOKEN})")


class Refused(SubgroupsError):
    """Mail the listener refuses (550) and that changes nothing; the text says why."""

    exit_code = 1


@dataclass(frozen=True)
class Recipient:
    """What one RCPT TO address is: its kind and, for the token addresses, the token."""

    kind: str
    address: str
    token: LinkToken | None = None


@dataclass(frozen=True)
class Outcome:
    """What one accepted message did, for the 250 answer and the log."""

    kind: str
    profile_id: int
    summary: str


class InboundDomain:
    """Checks addresses of the domain D with the install's keyring and the store's binding.

    The keyring file is looked at again (one ``stat``) at most every
    ``CHECK_SECONDS``: mail about messages signed with a key added after the
    listener started must be taken without a restart, and a retired key must
    stop working (as the landing server's ``LinkKeys`` does). A keyring that
    becomes unreadable answers 451 (try later) until it is readable again.
    """

    CHECK_SECONDS = 1.0

    def __init__(self, domain: str, keyring: Keyring, binding: StoreBinding) -> None:
        self.domain = clean_domain(domain)
        self.keyring = keyring
        self.binding = binding
        self._seen = self._stamp()
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[int, int] | None:
        if self.keyring.path is None:
            return None
        try:
            st = os.stat(self.keyring.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def _current_keyring(self) -> Keyring:
        now = time.monotonic()
        if now - self._checked < self.CHECK_SECONDS:
            return self.keyring
        with self._lock:
            self._checked = now
            stamp = self._stamp()
            if stamp is not None and stamp != self._seen:
                try:
                    self.keyring = load_keyring(self.keyring.path, create=False)
                except SecretFileError as exc:
                    self._checked = 0.0  # look again at the next message
                    raise Refused(f"4.3.0 the link keyring cannot be read: {exc}") from exc
                self._seen = stamp
            return self.keyring

    def verify(self, token: str) -> LinkToken:
        """The token's profile and campaign, or ``Refused`` (forged, altered, expired)."""
        keyring = self._current_keyring()
        try:
            return keyring.verify(token, store=self.binding)
        except BadToken as exc:
            raise Refused(f"5.7.1 {exc}") from exc

    def recipient(self, address: str) -> Recipient:
        """What mail to ``address`` means here, or ``Refused`` saying why not."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or domain.lower().rstrip(".") != self.domain:
            raise Refused(f"5.1.1 <{address}>: not a domain this server takes mail for")
        kind, plus, token = local.partition("+")
        kind = kind.lower()
        if kind == FEEDBACK and not plus:
            return Recipient(FEEDBACK, address)
        if kind in (UNSUBSCRIBE, BOUNCES) and plus:
            return Recipient(kind, address, self.verify(token))
        raise Refused(f"5.1.1 <{address}>: no such mailbox")


def clean_domain(value: str) -> str:
    """An inbound domain as compared: stripped, lower case, no trailing dot; checked."""
    domain = value.strip().lower().rstrip(".")
    labels = domain.split(".")
    if (
        not domain
        or len(domain) > 253
        or any(not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", label) for label in labels)
    ):
        raise Refused(f"{value!r} is not a mail domain (such as mail.example.com)")
    return domain


# --- reading reports ------------------------------------------------------------

_T = TypeVar("_T")


def _unreadable_is_refused(read: Callable[[bytes], _T]) -> Callable[[bytes], _T]:
    """A report the ``email`` package chokes on is refused (550), never an error that
    would fail the other messages of its batch and be retried for ever."""

    @functools.wraps(read)
    def reading(content: bytes) -> _T:
        try:
            return read(content)
        except Refused:
            raise
        except (ValueError, TypeError, LookupError, AttributeError, UnicodeError) as exc:
            raise Refused(f"5.6.0 the report cannot be read ({type(exc).__name__})") from exc

    return reading


def _parse(content: bytes) -> Message:
    if len(content) > MAX_MESSAGE_BYTES:
        raise Refused(f"5.3.4 message too big for a report ({len(content)} bytes)")
    return email.message_from_bytes(content, policy=email.policy.compat32)


def _report_parts(message: Message, report_type: str) -> list[Message]:
    """The parts of a ``multipart/report`` of this type, or ``Refused``."""
    if message.get_content_type() != "multipart/report":
        raise Refused(f"5.6.0 not a report (Content-Type {message.get_content_type()})")
    found = (message.get_param("report-type") or "").__str__().lower()
    if found != report_type:
        raise Refused(f"5.6.0 not a {report_type} report (report-type={found or 'none'})")
    parts = message.get_payload()
    if not isinstance(parts, list) or len(parts) < 2:
        raise Refused("5.6.0 the report has no machine-readable part")
    return [part for part in parts if isinstance(part, Message)]


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a ``message/delivery-status`` or feedback part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    if isinstance(payload, str):
        text = payload.replace("\r\n", "\n")
        return [email.message_from_string(chunk + "\n") for chunk in text.split("\n\n")]
    return []


@_unreadable_is_refused
def parse_dsn(content: bytes) -> bounces.Bounce:
    """The first failed recipient of a delivery status notification (RFC 3464).

    Only ``Action: failed`` is a bounce: a ``delayed`` report is a warning
    (the sender keeps trying, the message may yet arrive), so it counts for nothing.
    """
    parts = _report_parts(_parse(content), "delivery-status")
    status_part = next(
        (p for p in parts if p.get_content_type() == "message/delivery-status"), None
    )
    if status_part is None:
        raise Refused("5.6.0 the report has no message/delivery-status part")
    blocks = _field_blocks(status_part)
    for block in blocks[1:] if len(blocks) > 1 else blocks:
        action = (block.get("Action") or "").strip().lower()
        status = (block.get("Status") or "").strip()
        if action != "failed":
            continue
        match = bounces.STATUS.match(status)
        if match is None or match.group(1) == "2":
            raise Refused(f"5.6.0 the report's Status is not a failure ({status[:40]!r})")
        recipient = (block.get("Final-Recipient") or block.get("Original-Recipient") or "").strip()
        diagnostic = " ".join((block.get("Diagnostic-Code") or "").split())
        return bounces.Bounce(
            status=match.group(0),
            action=action,
            diagnostic=diagnostic[:500],
            recipient=recipient.partition(";")[2].strip()[:320],
        )
    raise Refused("5.6.0 the report names no failed recipient (Action: failed)")


@_unreadable_is_refused
def quoted_tokens(content: bytes) -> list[str]:
    """The link tokens in the message a feedback report (RFC 5965) quotes, in order."""
    parts = _report_parts(_parse(content), "feedback-report")
    feedback = next((p for p in parts if p.get_content_type() == "message/feedback-report"), None)
    if feedback is None:
        raise Refused("5.6.0 the report has no message/feedback-report part")
    quoted = [p for p in parts if p.get_content_type() in ("message/rfc822", "text/rfc822-headers")]
    if not quoted:
        raise Refused("5.6.0 the report quotes no message of ours")
    found: list[str] = []
    for part in quoted:
        payload: Any = part.get_payload()
        text = (
            "\n".join(m.as_string() for m in payload if isinstance(m, Message))
            if isinstance(payload, list)
            else str(payload)
        )
        # Header lines may be folded anywhere: unfold before looking.
        text = re.sub(r"\r?\n[ \t]+", " ", text)
        found += [t for t in _QUOTED_TOKEN.findall(text) if t not in found]
    return found


# --- acting on them ---------------------------------------------------------------


def complaint_token(domain: InboundDomain, content: bytes) -> LinkToken:
    """The token of our message a feedback report quotes, verified; or ``Refused``."""
    tokens = quoted_tokens(content)
    for token in tokens:
        try:
            return domain.verify(token)
        except Refused:
            continue
    if tokens:
        raise Refused("5.7.1 the quoted message's link token is not valid (forged or altered)")
    raise Refused("5.6.0 the quoted message carries none of our link tokens")


def mailto_unsubscribe(
    session: Session, *, profile_id: int, campaign_id: int | None, actor: str = RECIPIENT
) -> tuple[one_click.UnsubscribeScope, list[EventRecord]]:
    """Mail to ``unsubscribe+T@D``: the one-click effect, Source ``mailto``."""
    return one_click.one_click(
        session=session,
        profile_id=profile_id,
        campaign_id=campaign_id,
        source="mailto",
        actor=actor,
    )


def complaint(
    session: Session, *, profile_id: int, campaign_id: int | None, actor: str = RECIPIENT
) -> list[EventRecord]:
    """A spam complaint about our message: unsubscribed from all email, Source ``complaint``."""
    profile = landing.linked_profile(session, profile_id, lock=True)
    return landing.set_state_records(
        session, profile, None, UNSUBSCRIBED, "complaint", actor, campaign_id
    )


def bounce_outcome(profile_id: int, bounce: bounces.Bounce, event: EventRecord) -> Outcome:
    """What a recorded bounce did, as the listener logs it."""
    deliverable = "deliverable" if event.properties["Deliverable"] else "undeliverable"
    return Outcome(BOUNCES, profile_id, f"{bounce.kind} bounce {bounce.status}, {deliverable}")


def accept(
    session: Session, domain: InboundDomain, recipient: Recipient, content: bytes
) -> Outcome:
    """Do what a message to ``recipient`` asks, in the caller's transaction; or ``Refused``.

    The caller commits before it answers 250 (and rolls back on ``Refused``).
    """
    try:
        if recipient.kind == UNSUBSCRIBE:
            assert recipient.token is not None
            token = recipient.token
            scope, _events = mailto_unsubscribe(
                session, profile_id=token.profile_id, campaign_id=token.campaign_id
            )
            what = "all email" if scope.all_email else ", ".join(scope.group_names)
            return Outcome(UNSUBSCRIBE, token.profile_id, f"unsubscribed from {what}")
        if recipient.kind == BOUNCES:
            assert recipient.token is not None
            token = recipient.token
            bounce = parse_dsn(content)
            event = bounces.record_bounce(
                session,
                profile_id=token.profile_id,
                campaign_id=token.campaign_id,
                bounce=bounce,
            )
            return bounce_outcome(token.profile_id, bounce, event)
        token = complaint_token(domain, content)
        complaint(session, profile_id=token.profile_id, campaign_id=token.campaign_id)
        return Outcome(FEEDBACK, token.profile_id, "complaint: unsubscribed from all email")
    except UnknownProfile as exc:
        raise Refused(f"5.1.1 {exc}") from exc
