"""A campaign's messages: one RFC 5322 message per recipient, with the unsubscribe headers.

Every message carries (DESIGN.md §1, "Email campaigns"):

- ``From``, ``To`` (the profile's address, its name as display name),
  ``Subject``, ``Date``, ``Message-ID`` (the same whenever the same campaign
  goes to the same profile, so a resumed send makes the very same message);
- ``List-Unsubscribe: <https://…/u/TOKEN>`` and ``List-Unsubscribe-Post:
  List-Unsubscribe=One-Click`` (RFC 8058): the token is signed and names the
  profile and the campaign, so the landing page knows what to unsubscribe;
  with an inbound domain D set (``settings``), also ``<mailto:unsubscribe+TOKEN@D>``
  (RFC 2369), and the envelope sender is ``bounces+TOKEN@D`` (``bounce_address``;
  the Maildir copy shows it as ``Return-Path``);
- with DKIM set up (``settings``), a ``DKIM-Signature`` (``dkim_signing``);
- one ``List-Id`` per "do not send to" group (RFC 2919 expects one per
  message; the design asks for one per group), or one for all email when
  the campaign has no groups;
- the subject and the body template rendered with the name and both links
  (one template engine, ``app.core.body_template``), plus a footer with
  whichever link the body does not show.

``CampaignMail`` is prepared once per send: everything that is the same for
every recipient (headers, the template cut at its tags, the keyring) is
worked out then, so a message costs a token, a few string joins and one
encode. ``render`` makes the bytes that way (the sender's path: it must
keep up with 2,000 messages a second, and the ``email`` package takes about
2 ms a message). ``build`` makes the same message with the ``email``
package, as the reference: the tests parse both and compare them.
"""

import binascii
import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import quote

from sqlmodel import Session, col, select

from app.core import body_template, clock, settings, tokens
from app.core.dkim_signing import DkimSigner, signer_for
from app.core.models import Campaign, Group, Profile
from app.core.outbox import OutgoingMessage

POLICY = email_policy.SMTP.clone(max_line_length=78)
ONE_CLICK = "List-Unsubscribe=One-Click"
FOOTER_UNSUBSCRIBE = "Unsubscribe: "
FOOTER_PREFERENCES = "Manage your email preferences: "
MAX_LINE = 998  # RFC 5322: longer lines must be encoded
FOLD_AT = 78

# Tag values no real body contains: the template is rendered once with these
# and cut at them, then each message only joins its own values in.
_MARKS = {"name": "\x00\x01", "unsubscribe_url": "\x00\x02", "preferences_url": "\x00\x03"}
_MARK_SPLIT = re.compile("(\x00[\x01\x02\x03])")
_MARK_TAG = {mark: tag for tag, mark in _MARKS.items()}
# Characters that may stand in a display name without quotes (RFC 5322 atext and spaces).
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f\u0080-\u009f\u2028\u2029]+")
# What a mail server takes as a recipient: ASCII local part, dotted domain.
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")
UNSUBSCRIBE_LOCAL = "unsubscribe+"
BOUNCES_LOCAL = "bounces+"


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who one message goes to: the profile, its usable address and its name."""

    profile_id: int
    email: str
    name: str = ""


def usable_address(email: str | None) -> str | None:
    """The address as it goes on the envelope and in ``To``, or None when mail cannot go to it.

    Internationalised domains are written in their ASCII (IDNA) form; a
    non-ASCII local part would need SMTPUTF8, which this sender does not
    speak, so such an address is not usable.
    """
    if not email:
        return None
    text = email.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or len(text) > 320:
        return None
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if (
        not _LOCAL.fullmatch(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
        or not _DOMAIN.fullmatch(domain)
    ):
        return None
    return f"{local}@{domain}"


def clean_display_name(name: str | None) -> str:
    """A name fit for a header: control characters (line breaks above all) become spaces."""
    return " ".join(_CONTROLS.sub(" ", name or "").split())


def _encoded_words(text: str) -> list[str]:
    """``text`` as RFC 2047 encoded words (UTF-8, base64), each at most 75 characters.

    A word never splits a character: each must decode on its own.
    """
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for ch in text:
        n = len(ch.encode("utf-8"))
        if size + n > 45:  # 45 bytes -> 60 base64 characters -> a 72-character word
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(ch)
        size += n
    if chunk:
        words.append("".join(chunk))
    return [
        "=?utf-8?b?" + binascii.b2a_base64(w.encode("utf-8"), newline=False).decode("ascii") + "?="
        for w in words
    ]


def phrase(text: str) -> str:
    """A display name as a header writes it: as is, quoted, or encoded (non-ASCII)."""
    if not text.isascii():
        return " ".join(_encoded_words(text))
    if _ATEXT.fullmatch(text) and text == text.strip():
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fold(name: str, value: str) -> str:
    """One header line ``Name: value`` with CRLF, folded at spaces to keep lines under 78.

    As the ``email`` package does it: a word that does not fit goes to a
    continuation line (even the first one); a word longer than a line stays
    whole (the hard limit is 998).
    """
    line = f"{name}: {value}"
    if len(line) <= FOLD_AT:
        return line + "\r\n"
    lines: list[str] = []
    current = f"{name}:"
    for word in value.split(" "):
        if word and len(current) + 1 + len(word) > FOLD_AT:
            lines.append(current)
            current = " " + word
        else:
            current += " " + word
    lines.append(current)
    return "\r\n".join(lines) + "\r\n"


def _store_header(name: str, value: str) -> bytes:
    """A header the ``email`` package encodes and folds (done once per campaign)."""
    return POLICY.fold_binary(name, POLICY.header_store_parse(name, value)[1])


def list_id_label(name: str, group_id: int) -> str:
    """The list-id label of a group: ``promotions.g12`` (ASCII, from the name)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:40].strip("-")
    return f"{slug}.g{group_id}" if slug else f"g{group_id}"


def _ascii_url(url: str) -> str:
    """A URL fit for a header: non-ASCII characters and spaces percent-encoded."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")


@dataclass(frozen=True)
class _Template:
    """The body cut at its tags: literal text and tag names, alternating; line ends are \\n."""

    parts: tuple[str, ...]
    tags: frozenset[str]

    def render(self, values: Mapping[str, str]) -> str:
        out = list(self.parts)
        for i in range(1, len(out), 2):
            out[i] = values[out[i]]
        return "".join(out)


def _compile(body: str) -> _Template | None:
    """The template cut at its tags, or None when the body holds our marks itself."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        return None
    pieces = _MARK_SPLIT.split(body_template.render_body(text, _MARKS))
    parts = tuple(_MARK_TAG.get(p, p) if i % 2 else p for i, p in enumerate(pieces))
    return _Template(parts, frozenset(parts[1::2]))


class CampaignMail:
    """One campaign's messages, prepared once per send (see the module docstring)."""

    def __init__(
        self,
        *,
        campaign_id: int,
        created_at: datetime,
        subject: str,
        from_address: str,
        body: str,
        groups: Sequence[tuple[int, str]],
        base_url: str,
        keyring: tokens.Keyring,
        link_store: tokens.StoreBinding,
        inbound_domain: str | None = None,
        signer: DkimSigner | None = None,
    ) -> None:
        self.campaign_id = campaign_id
        self.inbound_domain = inbound_domain
        self.signer = signer
        self.link_store = link_store  # the store the links are signed for
        self.subject = subject
        self.from_address = from_address
        self.body = body
        self.keyring = keyring
        self.base_url = _ascii_url(base_url.rstrip("/"))
        display, sender = parseaddr(from_address)
        self.sender = usable_address(sender) or sender
        domain = self.sender.rpartition("@")[2]
        # Message-IDs are stored in 255 characters: an absurdly long domain is not used.
        self.domain = domain if domain and len(domain) <= 200 else "localhost"
        # Stable for the campaign's life (the name and the From may change while paused).
        self._salt = f"{campaign_id}:{created_at.timestamp():.6f}:".encode()
        self.list_ids = self._list_ids(groups)
        self.template = _compile(body)
        shown = self.template.tags if self.template else frozenset(body_template.TAGS)
        # A footer with whichever link the template does not show (both must be visible).
        footer: list[str] = ["\n-- \n"]
        for tag, label in (
            ("unsubscribe_url", FOOTER_UNSUBSCRIBE),
            ("preferences_url", FOOTER_PREFERENCES),
        ):
            if tag not in shown:
                footer[-1] += label
                footer += [tag, "\n"]
        self.footer = _Template(tuple(footer), frozenset(footer[1::2])) if len(footer) > 1 else None
        # The headers every message shares, encoded once.
        self._head_from = _store_header("From", from_address)
        # A subject with tags differs per recipient: encoded per message, else once.
        self.subject_has_tags = body_template.uses_tags(subject)
        self._head_subject = b"" if self.subject_has_tags else _store_header("Subject", subject)
        shared = fold("List-Unsubscribe-Post", ONE_CLICK)
        shared += "".join(fold("List-Id", value) for value in self.list_ids)
        shared += "MIME-Version: 1.0\r\n"
        shared += 'Content-Type: text/plain; charset="utf-8"\r\n'
        self._head_shared = shared.encode("ascii")
        self._cte_7bit = b"Content-Transfer-Encoding: 7bit\r\n\r\n"
        self._cte_qp = b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        self._date_key: datetime | None = None
        self._date_text = ""

    def _list_ids(self, groups: Sequence[tuple[int, str]]) -> tuple[str, ...]:
        if not groups:
            return (f"{phrase('All email')} <all-email.list-id.{self.domain}>",)
        return tuple(
            f"{phrase(name)} <{list_id_label(name, gid)}.list-id.{self.domain}>"
            for gid, name in groups
        )

    @classmethod
    def prepare(
        cls,
        session: Session,
        campaign: Campaign,
        *,
        keyring: tokens.Keyring | None = None,
        sign: bool = True,
    ) -> "CampaignMail":
        """The campaign's messages as the store stands: landing page URL, group names, keyring,
        inbound domain and (``sign``, when set up) the DKIM signer.

        Raises ``DkimKeyError`` when DKIM is set up but its key file is not right:
        mail the settings say to sign never goes out unsigned.
        """
        assert campaign.id is not None
        found = settings.get_settings(session)
        link_store = tokens.store_binding(session)
        signer = None
        if sign and found.dkim_ready:
            assert found.dkim_domain and found.dkim_selector and found.dkim_key
            signer = signer_for(
                link_store.store_id, found.dkim_domain, found.dkim_selector, found.dkim_key
            )
        names = dict(
            session.execute(
                select(Group.id, Group.name).where(col(Group.id).in_(campaign.do_not_send_to))
            ).all()
        )
        groups = [(gid, names.get(gid, f"Group {gid}")) for gid in campaign.do_not_send_to]
        return cls(
            campaign_id=campaign.id,
            created_at=campaign.created_at,
            subject=campaign.subject,
            from_address=campaign.from_address,
            body=campaign.body,
            groups=groups,
            base_url=found.base_url,
            keyring=keyring or tokens.load_keyring(),
            link_store=link_store,
            inbound_domain=found.inbound_domain,
            signer=signer,
        )

    # --- the parts of one message ----------------------------------------------------

    def message_key(self, profile_id: int) -> str:
        """The message's stable name (the Maildir file name, the Message-ID's left part)."""
        digest = hashlib.blake2b(self._salt + str(profile_id).encode(), digest_size=6).hexdigest()
        return f"c{self.campaign_id}.p{profile_id}.{digest}"

    def message_id(self, profile_id: int) -> str:
        return f"<{self.message_key(profile_id)}@{self.domain}>"

    def token(self, profile_id: int, *, today: date | None = None) -> str:
        """The message's signed token (links, the mailto: address, the bounce address)."""
        return self.keyring.sign(profile_id, self.campaign_id, store=self.link_store, today=today)

    def links(self, profile_id: int, *, today: date | None = None) -> tuple[str, str]:
        """The one-click unsubscribe URL and the preferences URL, with one signed token."""
        return self._links(self.token(profile_id, today=today))

    def _links(self, token: str) -> tuple[str, str]:
        return f"{self.base_url}/u/{token}", f"{self.base_url}/p/{token}"

    def list_unsubscribe(self, token: str) -> str:
        """The List-Unsubscribe value: the one-click URL, and the mailto: form with a domain."""
        url = f"<{self.base_url}/u/{token}>"
        if self.inbound_domain is None:
            return url
        return f"{url}, <mailto:{UNSUBSCRIBE_LOCAL}{token}@{self.inbound_domain}>"

    def envelope_sender(self, token: str) -> str:
        """MAIL FROM: the bounce address with an inbound domain, else the From address."""
        if self.inbound_domain is None:
            return self.sender
        return f"{BOUNCES_LOCAL}{token}@{self.inbound_domain}"

    @staticmethod
    def tag_values(
        recipient: Recipient, unsubscribe_url: str, preferences_url: str
    ) -> dict[str, str]:
        """What each tag stands for in this recipient's message."""
        return {
            "name": clean_display_name(recipient.name) or recipient.email,
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": preferences_url,
        }

    def subject_text(self, recipient: Recipient, unsubscribe_url: str, preferences_url: str) -> str:
        """The subject with its tags filled in for this recipient."""
        if not self.subject_has_tags:
            return self.subject
        values = self.tag_values(recipient, unsubscribe_url, preferences_url)
        return body_template.render(self.subject, values)

    def body_text(self, recipient: Recipient, unsubscribe_url: str, preferences_url: str) -> str:
        """The rendered body with the footer, line ends as \\n."""
        values = self.tag_values(recipient, unsubscribe_url, preferences_url)
        if self.template is not None:
            text = self.template.render(values)
        else:
            text = body_template.render_body(
                self.body.replace("\r\n", "\n").replace("\r", "\n"), values
            )
        if self.footer is not None:
            text = text.rstrip("\n") + "\n" + self.footer.render(values)
        return text

    def to_header(self, recipient: Recipient) -> str:
        name = clean_display_name(recipient.name)
        return f"{phrase(name)} <{recipient.email}>" if name else recipient.email

    # --- whole messages ----------------------------------------------------------------

    def render(self, recipient: Recipient, now: datetime) -> OutgoingMessage:
        """The message as bytes ready for an outbox (the fast path; see ``build``)."""
        if now != self._date_key:
            self._date_key, self._date_text = now, format_datetime(now)
        key = self.message_key(recipient.profile_id)
        token = self.token(recipient.profile_id, today=now.date())
        unsubscribe_url, preferences_url = self._links(token)
        text = self.body_text(recipient, unsubscribe_url, preferences_url)
        lines = text.split("\n")
        if text.isascii() and max(map(len, lines)) <= MAX_LINE:
            body = "\r\n".join(lines).encode("ascii")
            cte = self._cte_7bit
        else:
            body = binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
            cte = self._cte_qp
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        message_id = f"<{key}@{self.domain}>"
        to = fold("To", self.to_header(recipient)).encode("ascii")
        head = (
            f"Date: {self._date_text}\r\nMessage-ID: {message_id}\r\n"
            + fold("List-Unsubscribe", self.list_unsubscribe(token))
        ).encode("ascii")
        subject = self._head_subject or _store_header(
            "Subject", self.subject_text(recipient, unsubscribe_url, preferences_url)
        )
        data = b"".join((self._head_from, to, subject, head, self._head_shared, cte, body))
        if self.signer is not None:
            data = self.signer.sign(data)
        return OutgoingMessage(
            key=key,
            message_id=message_id,
            sender=self.envelope_sender(token),
            recipient=recipient.email,
            data=data,
            return_path=self.inbound_domain is not None,
        )

    def build(self, recipient: Recipient, now: datetime) -> EmailMessage:
        """The same message made with the ``email`` package (the reference for ``render``)."""
        token = self.token(recipient.profile_id, today=now.date())
        unsubscribe_url, preferences_url = self._links(token)
        message = EmailMessage(policy=POLICY)
        message["From"] = self.from_address
        name = clean_display_name(recipient.name)
        message["To"] = Address(display_name=name, addr_spec=recipient.email)
        message["Subject"] = self.subject_text(recipient, unsubscribe_url, preferences_url)
        message["Date"] = format_datetime(now)
        message["Message-ID"] = self.message_id(recipient.profile_id)
        message["List-Unsubscribe"] = self.list_unsubscribe(token)
        message["List-Unsubscribe-Post"] = ONE_CLICK
        for value in self.list_ids:
            message["List-Id"] = value
        message.set_content(
            self.body_text(recipient, unsubscribe_url, preferences_url), charset="utf-8"
        )
        return message


def recipient_of(profile: Profile) -> Recipient | None:
    """The profile as a recipient, or None when it has no usable address."""
    address = usable_address(profile.email)
    if address is None or profile.id is None:
        return None
    return Recipient(profile.id, address, profile.name or "")


def build_message(
    session: Session,
    campaign: Campaign,
    profile: Profile,
    *,
    now: datetime | None = None,
    keyring: tokens.Keyring | None = None,
) -> EmailMessage | None:
    """The message this campaign sends this profile (None: no usable address), for previews."""
    recipient = recipient_of(profile)
    if recipient is None:
        return None
    mail = CampaignMail.prepare(session, campaign, keyring=keyring, sign=False)
    return mail.build(recipient, now or clock.now())
