"""Public keys for the admin tests, each with the fingerprint `ssh-keygen -lf` printed for it."""

from pathlib import Path
from typing import NamedTuple


class Key(NamedTuple):
    line: str
    fingerprint: str


ED25519 = Key(
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHEz5l3jtyI0QqwrwTXT2TXvUXuWN+JWlKbUXeXJX+nJ ann@laptop"),
    "SHA256:T0FoqS60MjCG6S7jDIC7tDS0gWcMtupfLmb0pJED5fQ",
)
RSA = Key(
    (
        "ssh-rsa "
        "AAAAB3NzaC1yc2EAAAADAQABAAABAQDuXZJjqxUuk3tH2i4V5PsDwY7tmxzmiZQT0GHJ19YdrBUB/W51"
        "21GZL3CsYdx2B/ZXYWSMTKkbo9gsYV7eRQLg3hqHdIVQYL4TrDc+w/fT4DlS29q3iaA3QcKL/lLmhSdx"
        "1QXlzHmFbXRjcTidhSaSyJydl54sQgTvxxVe6/hsarYjrDhaANPEmmPzBVDtFUISjQFDDeBu2IUvHIu7"
        "jNGp96oYAQjtvyv9wZjmM6KfJZNia31J0bbh6A3sP6FzTuriu7QC6OsTgRtdkbm3jkmfNKYbOAFRcFLx"
        "Jv6Mg14VMYKKxj6IB68PQ4xIAfM18LRQESOA2sRWI1Yuk4cGFvit"
        " root@vm"
    ),
    "SHA256:aGMHtrvhoKh7WkaQ6Kv8GEQwUJGXETfEAxa5XNHLndI",
)
ECDSA = Key(
    (
        "ecdsa-sha2-nistp256 "
        "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMP2T2yr02uQ4OBfAt2beha8FFKf"
        "yi8ldCq693a1klQ8wJJ36bVTIPI53BdtcnjYUaPvfWWEBRnTmp6a3iGhaMM="
        " root@vm"
    ),
    "SHA256:62STaDyXEHdYmgzIvnqSI2VHUd7nezv5Vd/WFCUjN4Q",
)
# A fourth key, for an admin added during a test.
SPARE = Key(
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICX8df6R8SVB0nQs/RHwvdptamEGcuKpRysCa4C/ZsMt dee@desk",
    "SHA256:gpJeymCBwmJaCfTHCGEvHI6c7q8JBZ5iOkPKXJd9RLo",
)
KEYS = (ED25519, RSA, ECDSA, SPARE)


def key_file(folder: Path, key: Key, name: str = "id.pub") -> Path:
    """``key`` written as a .pub file in ``folder``."""
    path = folder / name
    path.write_text(key.line + "\n", encoding="utf-8")
    return path
