"""OpenSSH public keys, as an admin's ``.pub`` file holds them: read, checked, fingerprinted.

A key line is ``TYPE BASE64 [COMMENT]``. The blob inside the base64 names its
type again and holds the key's numbers; it is read far enough to know it is
a whole key of that type (no new dependency: the SSH wire format is a few
length-prefixed strings). The fingerprint is the one ``ssh-keygen -lf``
prints: ``SHA256:`` and the unpadded base64 of the blob's SHA-256.
"""

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import InvalidInput
from app.core.text_rules import control_problem

# The key types accepted, each with the parts its blob holds after the type name.
KEY_TYPES = {
    "ssh-ed25519": ("key",),
    "ssh-rsa": ("e", "n"),
    "ecdsa-sha2-nistp256": ("curve", "point"),
    "ecdsa-sha2-nistp384": ("curve", "point"),
    "ecdsa-sha2-nistp521": ("curve", "point"),
}
# A public key file is one short line; anything far larger is not one.
MAX_FILE_BYTES = 16384


@dataclass(frozen=True)
class PublicKey:
    """One checked public key: its type, its blob, its comment and its fingerprint."""

    kind: str
    blob: bytes
    comment: str

    @property
    def fingerprint(self) -> str:
        """``SHA256:...``, as ``ssh-keygen -lf`` prints it."""
        return fingerprint_of(self.blob)

    @property
    def line(self) -> str:
        """The key as one OpenSSH line (what ``authorized_keys`` would hold)."""
        text = f"{self.kind} {base64.b64encode(self.blob).decode('ascii')}"
        return f"{text} {self.comment}" if self.comment else text


def fingerprint_of(blob: bytes) -> str:
    """The SHA-256 fingerprint of a key blob, as OpenSSH prints it."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii")
    return "SHA256:" + digest.rstrip("=")


def _strings(blob: bytes) -> list[bytes]:
    """The length-prefixed strings a key blob is made of; ValueError if it is not whole."""
    parts: list[bytes] = []
    at = 0
    while at < len(blob):
        if at + 4 > len(blob):
            raise ValueError("cut short")
        size = int.from_bytes(blob[at : at + 4], "big")
        at += 4
        if size > len(blob) - at:
            raise ValueError("cut short")
        parts.append(blob[at : at + size])
        at += size
    return parts


def parse_key_line(text: str, *, where: str) -> PublicKey:
    """The key on one OpenSSH public key line; ``InvalidInput`` naming ``where`` if not one."""
    if "PRIVATE KEY" in text:
        raise InvalidInput(
            f"{where} is a private key; give the public key (the .pub file beside it)", field="key"
        )
    problem = control_problem(text.strip())
    if problem is not None:
        raise InvalidInput(f"{where} {problem}", field="key")
    fields = text.strip().split(None, 2)
    if len(fields) < 2:
        raise InvalidInput(
            f"{where} is not an OpenSSH public key (expected 'TYPE BASE64 [COMMENT]', "
            "as in id_ed25519.pub)",
            field="key",
        )
    kind, encoded = fields[0], fields[1]
    comment = fields[2].strip() if len(fields) == 3 else ""
    if kind not in KEY_TYPES:
        raise InvalidInput(
            f"{where}: key type {kind[:40]!r} is not one of: {', '.join(KEY_TYPES)}", field="key"
        )
    try:
        blob = base64.b64decode(encoded.encode("ascii"), validate=True)
        parts = _strings(blob)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidInput(
            f"{where}: the {kind} key is not valid base64 of a key (is the file cut short?)",
            field="key",
        ) from None
    expected = KEY_TYPES[kind]
    if not parts or parts[0] != kind.encode("ascii") or len(parts) != 1 + len(expected):
        raise InvalidInput(
            f"{where}: the key's data is not a {kind} key (its type or parts do not match)",
            field="key",
        )
    if kind == "ssh-ed25519" and len(parts[1]) != 32:
        raise InvalidInput(f"{where}: an ssh-ed25519 key is 32 bytes long", field="key")
    if kind.startswith("ecdsa-") and parts[1] != kind.rsplit("-", 1)[1].encode("ascii"):
        raise InvalidInput(f"{where}: the key's curve does not match its type {kind}", field="key")
    return PublicKey(kind=kind, blob=blob, comment=comment)


def read_key_file(path: Path) -> PublicKey:
    """The one public key in the file at ``path``; ``InvalidInput`` saying what is wrong."""
    where = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InvalidInput(f"no key file at {where}", field="key") from None
    except IsADirectoryError:
        raise InvalidInput(f"{where} is a folder, not a key file", field="key") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {where}: {exc.strerror}", field="key") from None
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(
            f"{where} is larger than a public key file ({MAX_FILE_BYTES:,} bytes at most)",
            field="key",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(
            f"{where} is not a text file (a public key is one line)", field="key"
        ) from None
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        raise InvalidInput(f"{where} is empty; give a public key file", field="key")
    if len(lines) > 1 and "PRIVATE KEY" not in text:
        raise InvalidInput(
            f"{where} holds {len(lines)} lines; give a file with one public key", field="key"
        )
    return parse_key_line(text if "PRIVATE KEY" in text else lines[0], where=where)
