"""The suppression list: addresses of erased people, kept as keyed hashes (issue 12, ask 5).

An address is kept as ``HMAC-SHA256(store key, email key)`` (hex), the store
key derived from a secret in the data directory (``erasure-key.json`` next to
the link keyring, mode 0600, never in the database) and the store's id. A
profile created or imported later with that address starts unsubscribed
from all email, with the reason "suppressed: erased on DATE".

Every host writing to one store needs the same secret file, as with the
link keyring: a host with another secret would not recognise the addresses.
"""

import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, func, select

from app.core.models import AddressSuppression, email_key
from app.core.store import read_store_id
from app.core.tokens import SecretFileError, secret_path

SECRET_FILE_NAME = "erasure-key.json"
_lock = threading.Lock()
_secrets: dict[Path, bytes] = {}


def suppression_secret_path() -> Path:
    """Next to the link keyring (``$SUBGROUPS_SECRET_FILE`` or the data directory)."""
    return secret_path().with_name(SECRET_FILE_NAME)


def _read(path: Path) -> bytes:
    try:
        secret = bytes.fromhex(json.loads(path.read_text(encoding="utf-8"))["key"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SecretFileError(f"{path}: not a readable erasure key ({exc})") from exc
    if path.stat().st_mode & 0o077:
        raise SecretFileError(
            f"{path}: the erasure key is readable by others; run: chmod 600 {path}"
        )
    return secret


def install_secret(*, create: bool) -> bytes | None:
    """The install's erasure secret; made (0600) on first use when ``create``, else None."""
    path = suppression_secret_path()
    with _lock:
        found = _secrets.get(path)
        if found is not None and path.exists():
            return found
        if not path.exists():
            if not create:
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            try:  # O_EXCL: two processes creating it at once keep one secret
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(json.dumps({"key": secrets.token_hex(32)}) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
        for _ in range(100):
            try:
                _secrets[path] = _read(path)
                return _secrets[path]
            except SecretFileError:  # another process is still writing it
                threading.Event().wait(0.02)
        _secrets[path] = _read(path)
        return _secrets[path]


def address_hash(secret: bytes, store_id: str, key: str) -> str:
    """The keyed hash of an address key for this store."""
    store_key = hmac.new(secret, b"subgroups suppression for store " + store_id.encode(), "sha256")
    return hmac.new(store_key.digest(), key.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Suppressed:
    """An address on the list: when it was erased, and why."""

    erased_at: datetime
    reason: str

    @property
    def words(self) -> str:
        """What profiles show and the explainer say."""
        return f"suppressed: erased on {self.erased_at.date().isoformat()}"


class SuppressionList:
    """The store's list, read for many addresses at once (an import)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.empty = session.exec(select(func.count()).select_from(AddressSuppression)).one() == 0
        self._secret: bytes | None = None
        self._store_id = ""

    def hash_of(self, email: str | None, *, create: bool = False) -> str | None:
        key = email_key(email)
        if key is None:
            return None
        if self._secret is None:
            self._secret = install_secret(create=create)
            if self._secret is None:
                return None
            self._store_id = read_store_id(self.session)
        return address_hash(self._secret, self._store_id, key)

    def lookup(self, emails: list[str | None]) -> dict[str, Suppressed]:
        """The suppressed ones among ``emails``, by address key."""
        if self.empty:
            return {}
        hashes: dict[str, str] = {}
        for email in emails:
            found = self.hash_of(email)
            key = email_key(email)
            if found is not None and key is not None:
                hashes[found] = key
        result: dict[str, Suppressed] = {}
        values = list(hashes)
        for start in range(0, len(values), 500):
            rows = self.session.exec(
                select(AddressSuppression).where(
                    col(AddressSuppression.address_hash).in_(values[start : start + 500])
                )
            ).all()
            for row in rows:
                result[hashes[row.address_hash]] = Suppressed(row.erased_at, row.reason)
        return result


def suppressed(session: Session, email: str | None) -> Suppressed | None:
    """Whether this address was erased, and when."""
    key = email_key(email)
    if key is None:
        return None
    return SuppressionList(session).lookup([email]).get(key)
