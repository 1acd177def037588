"""The DKIM private key: a file in the data directory, bound to its store, never in the database.

``subgroups settings set dkim-key FILE.pem`` reads an RSA private key (PKCS#1
or PKCS#8 PEM, no passphrase, 1024 bits or more: RFC 8301; 2048 advised),
and writes a copy readable by its owner only (0600, in a 0700 folder) at
``<data dir>/dkim/<store id>/<fingerprint>.pem``. The store keeps only the
key's fingerprint (``sha256:`` and the hex SHA-256 of its public key, DER):
a copy of the store says which key signed its mail but cannot sign, and a
store never signs with a key file another store put there (the folder is
per store, and the fingerprint must match the file's key when it is read).

Keeping one file per fingerprint means a rolled-back change never leaves
the store naming a file that holds another key.
"""

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import InvalidInput, SubgroupsError
from app.core.places import data_dir

DKIM_DIR_NAME = "dkim"
FINGERPRINT_PREFIX = "sha256:"
MIN_BITS = 1024  # RFC 8301 section 3.2: verifiers refuse shorter keys
MAX_KEY_FILE_BYTES = 64 * 1024
FILE_MODE = 0o600
DIR_MODE = 0o700


class DkimKeyError(SubgroupsError):
    """The key file the store names is missing, unreadable, readable by others, or another key."""

    exit_code = 1


@dataclass(frozen=True)
class DkimKey:
    """A checked RSA private key: its PEM (PKCS#1, what dkimpy signs with) and public parts."""

    private_pem: bytes
    public_der: bytes  # SubjectPublicKeyInfo, DER: what the DNS record's p= holds
    bits: int

    @property
    def fingerprint(self) -> str:
        return FINGERPRINT_PREFIX + hashlib.sha256(self.public_der).hexdigest()

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_der).decode("ascii")


def parse_key(data: bytes, *, where: str) -> DkimKey:
    """The RSA private key in ``data`` (PEM), or ``InvalidInput`` saying what is wrong with it."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise InvalidInput(
            f"{where}: the key has a passphrase; give it without one "
            "(openssl rsa -in KEY.pem -out PLAIN.pem)",
            field="dkim-key",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidInput(
            f"{where}: not a PEM private key; make one with: openssl genrsa -out dkim.pem 2048",
            field="dkim-key",
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidInput(
            f"{where}: a {type(key).__name__.removeprefix('_')} key; DKIM here signs with RSA "
            "(rsa-sha256): make one with: openssl genrsa -out dkim.pem 2048",
            field="dkim-key",
        )
    if key.key_size < MIN_BITS:
        raise InvalidInput(
            f"{where}: the key has {key.key_size} bits; mailbox providers ignore DKIM keys "
            f"under {MIN_BITS} (RFC 8301); 2048 is usual",
            field="dkim-key",
        )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(private_pem=private_pem, public_der=public_der, bits=key.key_size)


def read_key_file(path: Path) -> DkimKey:
    """The key in a file the user names (``settings set dkim-key FILE.pem``)."""
    where = f"dkim-key {path}"
    try:
        if path.is_dir():
            raise InvalidInput(f"{where}: is a folder, not a key file", field="dkim-key")
        if path.stat().st_size > MAX_KEY_FILE_BYTES:
            raise InvalidInput(f"{where}: too large to be a key file", field="dkim-key")
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(
            f"{where}: cannot read: {exc.strerror or exc}", field="dkim-key"
        ) from exc
    return parse_key(data, where=where)


def key_dir(store_id: str) -> Path:
    """The store's own folder of DKIM keys."""
    return data_dir() / DKIM_DIR_NAME / store_id


def key_path(store_id: str, fingerprint: str) -> Path:
    """Where the key with this fingerprint is kept for this store."""
    return key_dir(store_id) / f"{fingerprint.removeprefix(FINGERPRINT_PREFIX)[:32]}.pem"


def install_key(store_id: str, key: DkimKey) -> Path:
    """Write the key's copy for the store (0600, replaced in one rename); returns its path."""
    path = key_path(store_id, key.fingerprint)
    folder = path.parent
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(folder, DIR_MODE)
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private_pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_key(store_id: str, fingerprint: str) -> DkimKey:
    """The store's key with this fingerprint, checked; ``DkimKeyError`` says why not."""
    path = key_path(store_id, fingerprint)
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise DkimKeyError(
            f"DKIM key {path}: cannot read: {exc.strerror or exc}; "
            "set it again with: subgroups settings set dkim-key FILE.pem"
        ) from exc
    if mode & 0o077:
        raise DkimKeyError(f"DKIM key {path}: readable by others; run: chmod 600 {path}")
    try:
        key = parse_key(data, where=f"DKIM key {path}")
    except InvalidInput as exc:
        raise DkimKeyError(exc.message) from exc
    if key.fingerprint != fingerprint:
        raise DkimKeyError(
            f"DKIM key {path}: holds another key than the store names ({fingerprint[:23]}…); "
            "set it again with: subgroups settings set dkim-key FILE.pem"
        )
    return key
