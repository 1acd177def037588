"""Signed link tokens: the opaque part of every unsubscribe and preferences link.

A token names a profile and (optionally) the campaign whose message carried
it. It is HMAC-SHA256 signed with a per-install key kept in a file in the data
directory (mode 0600), never in the database: whoever can read the store
cannot forge links. The file is a small keyring, so the key can be rotated:
new links are signed with the newest key while links already in inboxes keep
working with the key they name, until that key is retired.

Links are bound to their store: the key a token is signed with is derived
from the keyring key and the store's id (``schema_meta.store_id``), so two
stores sharing one data directory and keyring never accept each other's
links. Links signed before that (version 1) are accepted only by a store
that existed then, and only if issued on or before the day it was upgraded
(``schema_meta.unbound_links_until``).

Layout (before base64url, no padding): version (1 byte), key id (2),
profile id (8), campaign id (4; 0 means none), issue day (4; days since
1970-01-01 UTC), then the first 16 bytes of the HMAC over all of that.
Exactly one spelling of a token is accepted: the canonical base64url of
those bytes (no padding, no stray characters, unused bits zero).
Links are valid for ``MAX_AGE_DAYS`` (two years: DESIGN asks for at least one).

Tokens in mail addresses (issue 12): with an inbound domain D the same token
stands in ``unsubscribe+TOKEN@D`` (List-Unsubscribe's mailto:) and
``bounces+TOKEN@D`` (the envelope sender). A token is always ``TOKEN_LENGTH``
(47) characters of ``[A-Za-z0-9_-]``, all RFC 5321 atext, so each address is a
plain dot-atom whose local part is at most 59 characters (the limit is 64; no
shorter form is needed). The inbound side takes the local part after the
first ``+`` as it came and checks it with ``Keyring.verify``, like a link.
Local parts are case-sensitive (RFC 5321 section 2.4) and mail servers pass
them on as written; a relay that lower-cased them would make the token fail
verification (refused, never misread: the MAC covers every bit).
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import struct
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from app.core import clock
from app.core.errors import InvalidInput, SubgroupsError
from app.core.migrations import LEGACY_LINKS_KEY
from app.core.places import data_dir
from app.core.store import read_store_id

ENV_SECRET_FILE = "SUBGROUPS_SECRET_FILE"
SECRET_FILE_NAME = "link-keys.json"
VERSION = 2  # bound to a store
UNBOUND_VERSION = 1  # signed before links were bound to their store
MAX_AGE_DAYS = 730
_BODY = struct.Struct(">BHQII")
_MAC_BYTES = 16
TOKEN_LENGTH = -(-(_BODY.size + _MAC_BYTES) * 4 // 3)  # base64url, no padding: 47
_EPOCH = date(1970, 1, 1)
_lock = threading.Lock()
_CANONICAL = re.compile(r"[A-Za-z0-9_-]+")
# What every refusal of a link that is not ours says: one answer for all of them,
# so a prober learns nothing about which key ids or stores exist.
NOT_VALID = "this link is not valid (signature does not match)"


class BadToken(InvalidInput):
    """A link token that is malformed, altered, forged, expired or signed by a retired key."""


class ExpiredToken(BadToken):
    """A token that was valid once: too old, or signed by a key since retired."""


class SecretFileError(SubgroupsError):
    """The keyring file cannot be read or written safely."""

    exit_code = 2


@dataclass(frozen=True)
class StoreBinding:
    """The store links are signed for: its id, and until which day it accepts unbound links."""

    store_id: str
    unbound_links_until: date | None = None


def store_binding(session: Session) -> StoreBinding:
    """The binding of the store the session is on (its ``schema_meta``)."""
    store_id = read_store_id(session)
    until = session.execute(
        text("SELECT value FROM schema_meta WHERE key = :k"), {"k": LEGACY_LINKS_KEY}
    ).scalar()
    return StoreBinding(store_id, date.fromisoformat(until) if until else None)


@dataclass(frozen=True)
class LinkToken:
    """What a valid token says."""

    profile_id: int
    campaign_id: int | None
    key_id: int
    issued: date


def secret_path() -> Path:
    """Where the keyring lives: ``$SUBGROUPS_SECRET_FILE`` or the data directory."""
    override = os.environ.get(ENV_SECRET_FILE)
    return Path(override).expanduser() if override else data_dir() / SECRET_FILE_NAME


def _today() -> date:
    return clock.now().date()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(token: str) -> bytes:
    """The token's bytes, from its one canonical spelling only (decoding it again gives it)."""
    if not token or len(token) > 200 or not _CANONICAL.fullmatch(token):
        raise BadToken("this link is not valid (malformed token)")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadToken("this link is not valid (malformed token)") from exc
    if _b64encode(raw) != token:
        raise BadToken("this link is not valid (malformed token)")
    return raw


def _store_key(secret: bytes, store_id: str) -> bytes:
    """The key links of one store are signed with: derived from the keyring key and its id."""
    return hmac.new(secret, b"subgroups link key for store " + store_id.encode(), "sha256").digest()


class Keyring:
    """The install's signing keys: ``{key id: secret bytes}`` and the current key id."""

    def __init__(self, keys: dict[int, bytes], current: int, path: Path | None = None) -> None:
        if current not in keys:
            raise SecretFileError(f"{path or 'keyring'}: the current key {current} is missing")
        self.keys = dict(keys)
        self.current = current
        self.path = path

    # --- signing and checking -------------------------------------------------

    def _mac(self, key_id: int, body: bytes, store_id: str | None) -> bytes:
        secret = self.keys[key_id]
        if store_id is not None:
            secret = _store_key(secret, store_id)
        return hmac.new(secret, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def sign(
        self,
        profile_id: int,
        campaign_id: int | None = None,
        *,
        store: StoreBinding,
        today: date | None = None,
    ) -> str:
        """A token for the profile (and campaign) of this store, signed with the current key."""
        issued = ((today or _today()) - _EPOCH).days
        body = _BODY.pack(VERSION, self.current, profile_id, campaign_id or 0, issued)
        return _b64encode(body + self._mac(self.current, body, store.store_id))

    def verify(self, token: str, *, store: StoreBinding, today: date | None = None) -> LinkToken:
        """What the token says, or ``BadToken`` saying why it is refused.

        A token of another store, another install, with an unknown (or retired)
        key id, or altered, gets the same answer: it is not ours.
        """
        raw = _b64decode(token)
        if len(raw) != _BODY.size + _MAC_BYTES:
            raise BadToken("this link is not valid (wrong length: cut short or altered)")
        body, mac = raw[: _BODY.size], raw[_BODY.size :]
        version, key_id, profile_id, campaign_id, issued_day = _BODY.unpack(body)
        if version == VERSION:
            store_id: str | None = store.store_id
        elif version == UNBOUND_VERSION and store.unbound_links_until is not None:
            store_id = None
        else:
            raise BadToken(NOT_VALID)
        # An unknown key id is checked against a key of ours all the same: its answer
        # (and its time) is that of any other forged link.
        expected = self._mac(key_id if key_id in self.keys else self.current, body, store_id)
        if not hmac.compare_digest(mac, expected) or key_id not in self.keys:
            raise BadToken(NOT_VALID)
        issued = date.fromordinal(_EPOCH.toordinal() + issued_day)
        if store_id is None and store.unbound_links_until and issued > store.unbound_links_until:
            raise BadToken(NOT_VALID)  # unbound links were never signed after the upgrade
        age = ((today or _today()) - issued).days
        if age > MAX_AGE_DAYS:
            raise ExpiredToken(f"this link has expired (issued {issued.isoformat()})")
        return LinkToken(
            profile_id=profile_id,
            campaign_id=campaign_id or None,
            key_id=key_id,
            issued=issued,
        )

    # --- rotation -------------------------------------------------------------

    def rotate(self) -> int:
        """Add a new key and sign with it from now on; older links keep working."""
        new_id = max(self.keys) + 1
        self.keys[new_id] = secrets.token_bytes(32)
        self.current = new_id
        self.save()
        return new_id

    def retire(self, key_id: int) -> None:
        """Forget a key: links signed with it stop working. The current key stays."""
        if key_id == self.current:
            raise InvalidInput("the current key cannot be retired: rotate first")
        self.keys.pop(key_id, None)
        self.save()

    # --- the file ---------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "keys": {str(k): v.hex() for k, v in sorted(self.keys.items())},
        }

    def save(self) -> None:
        if self.path is None:
            return
        _write_private(self.path, json.dumps(self.to_json(), indent=1) + "\n")


def _write_private(path: Path, text: str) -> None:
    """Write the file readable by its owner only (created 0600, then renamed in place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read(path: Path) -> Keyring:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        keys = {int(k): bytes.fromhex(v) for k, v in data["keys"].items()}
        current = int(data["current"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SecretFileError(f"{path}: not a readable link keyring ({exc})") from exc
    if path.stat().st_mode & 0o077:
        raise SecretFileError(
            f"{path}: the link keyring is readable by others; run: chmod 600 {path}"
        )
    return Keyring(keys, current, path)


def load_keyring(path: Path | None = None, *, create: bool = True) -> Keyring:
    """The install's keyring, created (mode 0600) on first use."""
    path = path or secret_path()
    with _lock:
        if path.exists():
            return _read(path)
        if not create:
            raise SecretFileError(f"{path}: no link keyring yet (send a campaign first)")
        ring = Keyring({1: secrets.token_bytes(32)}, 1, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.with_suffix(".lock")
        try:
            # O_EXCL: two processes creating it at once must not end with two secrets.
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process is writing it: wait for the file below
        else:
            os.close(fd)
            try:
                if not path.exists():
                    ring.save()
            finally:
                lock.unlink(missing_ok=True)
        for _ in range(100):
            if path.exists():
                return _read(path)
            threading.Event().wait(0.02)
        raise SecretFileError(f"{path}: another process is creating the link keyring")


def unsubscribe_url(base_url: str, token: str) -> str:
    """The one-click / group unsubscribe link (``/u/<token>``)."""
    return f"{base_url.rstrip('/')}/u/{token}"


def preferences_url(base_url: str, token: str) -> str:
    """The manage-preferences link (``/p/<token>``)."""
    return f"{base_url.rstrip('/')}/p/{token}"
