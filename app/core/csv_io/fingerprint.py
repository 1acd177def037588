"""Which file a preview read: its size, modification time and SHA-256.

The console previews a file, then imports the plan it previewed: the file
is read once. ``read_csv`` hashes the bytes as it reads them (``Hashing``)
and keeps the file's ``Fingerprint`` with the rows; before writing,
``apply_import`` calls ``check_unchanged``: the same size, modification
time and inode need no second reading; otherwise the file is hashed again
and an import of a file whose bytes changed is refused with
``ImportFileChanged`` (nothing is written). A file only touched, or copied
back unchanged, is still the file that was previewed.
"""

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import ImportFileChanged

_BLOCK = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    """A file as it was read: where, how big, when last written, and its bytes' SHA-256."""

    path: str  # absolute
    size: int
    mtime_ns: int
    inode: int
    sha256: str


class Hashing(io.RawIOBase):
    """A binary file read through, its bytes hashed on the way (SHA-256)."""

    def __init__(self, raw: io.FileIO) -> None:
        super().__init__()
        self.raw = raw
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()
        super().close()

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        count = self.raw.readinto(buffer)
        if count:
            with memoryview(buffer) as view:
                self.hash.update(view[:count])
        return count or 0

    def fingerprint(self, path: Path) -> Fingerprint:
        """The file's fingerprint, once it has been read to its end."""
        stat = os.fstat(self.raw.fileno())
        return Fingerprint(
            str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, self.hash.hexdigest()
        )


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def check_unchanged(fingerprint: Fingerprint | None, *, file: str) -> None:
    """Refuse (``ImportFileChanged``) when the file read for the preview is gone or changed.

    ``fingerprint`` None: the preview read a stream, which cannot change.
    """
    if fingerprint is None:
        return
    again = f"nothing was imported; preview {file} again"
    try:
        stat = os.stat(fingerprint.path)
        if (stat.st_size, stat.st_mtime_ns, stat.st_ino) == (
            fingerprint.size,
            fingerprint.mtime_ns,
            fingerprint.inode,
        ):
            return  # the file as it was: no need to read it again
        if stat.st_size == fingerprint.size and _sha256(fingerprint.path) == fingerprint.sha256:
            return  # touched or copied back, but the same bytes
    except FileNotFoundError:
        raise ImportFileChanged(f"{file} is gone since it was previewed; {again}") from None
    except OSError as exc:
        raise ImportFileChanged(
            f"{file} cannot be read since it was previewed ({exc.strerror}); {again}"
        ) from exc
    if stat.st_size == fingerprint.size:
        how = f"the same size, {stat.st_size:,} bytes, but other contents"
    else:
        how = f"{fingerprint.size:,} bytes then, {stat.st_size:,} now"
    raise ImportFileChanged(f"{file} changed since it was previewed ({how}); {again}")
