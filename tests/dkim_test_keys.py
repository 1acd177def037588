"""RSA keys for the DKIM tests, made once per test process (making one takes a moment)."""

from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@cache
def rsa_pem(bits: int = 2048, *, pkcs8: bool = False) -> bytes:
    """A new RSA private key as PEM (PKCS#1, or PKCS#8 as ``openssl genpkey`` writes)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    form = (
        serialization.PrivateFormat.PKCS8
        if pkcs8
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption())


def ec_pem() -> bytes:
    """An EC private key (not RSA: refused)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def encrypted_pem() -> bytes:
    """An RSA key with a passphrase (refused: the sender cannot type it)."""
    key = serialization.load_pem_private_key(rsa_pem(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )


def key_file(folder: Path, data: bytes | None = None, name: str = "dkim.pem") -> Path:
    """``data`` (default: the 2048-bit test key) written to ``folder/name``."""
    path = folder / name
    path.write_bytes(rsa_pem() if data is None else data)
    return path
