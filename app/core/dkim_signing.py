"""DKIM signatures on every message (RFC 6376; RFC 8058 section 3.1 asks them of one-click mail).

With ``dkim-domain``, ``dkim-selector`` and ``dkim-key`` set (``app.core.settings``),
each message gets a ``DKIM-Signature`` made by dkimpy: rsa-sha256,
relaxed/relaxed canonicalisation, ``h=`` covering ``SIGNED_HEADERS``. From,
Subject, List-Unsubscribe and List-Unsubscribe-Post are named twice
("oversigned", RFC 6376 section 8.15), so a second such header added on the way
breaks the signature as surely as an altered one does.

One thing is not dkimpy's: the RSA operation itself. dkimpy does it with
Python's ``pow`` (about 10 ms a message with a 2048-bit key, which would hold
a send to some 100 messages a second); here the same PKCS#1 v1.5 signature
over the same SHA-256 digest is made by OpenSSL (``cryptography``, about
0.5 ms). RSASSA-PKCS1-v1_5 is deterministic, so the bytes are the ones
dkimpy would make (a test compares them); dkimpy still parses the message,
canonicalises, hashes, builds and folds the header. The hook is a
replacement of ``dkim.RSASSA_PKCS1_v1_5_sign`` that takes the OpenSSL path
only for a key a ``DkimSigner`` registered (by its modulus) and a SHA-256
digest, and hands every other call to dkimpy's own function.

``dns_record`` is the TXT record to publish (``subgroups dkim dns``).
"""

import threading
from dataclasses import dataclass
from typing import Any

import dkim
import dkim.crypto

from app.core.dkim_keys import DkimKey, load_key
from app.core.errors import SubgroupsError

SIGNED_HEADERS: tuple[bytes, ...] = (
    b"From",
    b"From",
    b"To",
    b"Subject",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Unsubscribe",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
    b"Content-Transfer-Encoding",
)
CANONICALIZE = (b"relaxed", b"relaxed")
TXT_CHUNK = 250  # a DNS character-string holds at most 255 bytes

_dkimpy_rsa_sign = dkim.crypto.RSASSA_PKCS1_v1_5_sign
_openssl_keys: dict[int, Any] = {}  # modulus -> cryptography RSAPrivateKey
_keys_lock = threading.Lock()


def _rsa_sign(hash: Any, private_key: Any) -> bytes:  # noqa: A002 - dkimpy's own names
    """dkimpy's RSA step, by OpenSSL for a key a signer registered (see the docstring)."""
    fast = _openssl_keys.get(private_key.get("modulus")) if hasattr(private_key, "get") else None
    if fast is None or getattr(hash, "name", "") != "sha256":
        return bytes(_dkimpy_rsa_sign(hash, private_key))
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    signature: bytes = fast.sign(
        hash.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
    )
    return signature


dkim.RSASSA_PKCS1_v1_5_sign = _rsa_sign


class SigningFailed(SubgroupsError):
    """dkimpy refused to sign a message (it names why)."""

    exit_code = 1


@dataclass(frozen=True)
class DkimSigner:
    """Signs messages for one domain and selector with one key."""

    domain: str
    selector: str
    key: DkimKey

    def __post_init__(self) -> None:
        from cryptography.hazmat.primitives import serialization

        private = serialization.load_pem_private_key(self.key.private_pem, password=None)
        modulus = private.private_numbers().public_numbers.n  # type: ignore[union-attr]
        with _keys_lock:
            _openssl_keys[modulus] = private

    def signature(self, message: bytes) -> bytes:
        """The ``DKIM-Signature: ...`` header (folded, ending in CRLF) for these bytes."""
        try:
            header: bytes = dkim.sign(
                message,
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self.key.private_pem,
                canonicalize=CANONICALIZE,
                include_headers=list(SIGNED_HEADERS),
            )
        except dkim.DKIMException as exc:
            raise SigningFailed(f"DKIM signing failed: {exc}") from exc
        return header

    def sign(self, message: bytes) -> bytes:
        """The message with its signature on top."""
        return self.signature(message) + message


def signer_for(store_id: str, domain: str, selector: str, fingerprint: str) -> DkimSigner:
    """The signer of the store's settings (``DkimKeyError`` when its key file is not right)."""
    return DkimSigner(domain=domain, selector=selector, key=load_key(store_id, fingerprint))


def txt_value(key: DkimKey) -> str:
    """The TXT record's text: ``v=DKIM1; k=rsa; p=<public key>``."""
    return f"v=DKIM1; k=rsa; p={key.public_b64}"


def dns_record(domain: str, selector: str, key: DkimKey) -> str:
    """The record as a zone file line, the text cut into strings of at most 250 characters."""
    value = txt_value(key)
    strings = " ".join(f'"{value[i : i + TXT_CHUNK]}"' for i in range(0, len(value), TXT_CHUNK))
    return f"{dns_name(domain, selector)} IN TXT {strings}"


def dns_name(domain: str, selector: str) -> str:
    """Where the record goes: ``<selector>._domainkey.<domain>``."""
    return f"{selector}._domainkey.{domain}"
