"""Sets of profile ids as bitsets: profile ``id`` n is bit n of a Python ``int``.

AND, OR, NOT and ``int.bit_count`` on 125 KB integers run in microseconds,
which is what keeps the segment builder's counts live (``segment_index``).
"""

from collections.abc import Iterable, Iterator


def bits_from_ids(ids: Iterable[int], size: int) -> int:
    """A bitset with the given bit positions set."""
    buf = bytearray((size >> 3) + 1)
    for i in ids:
        byte = i >> 3
        if byte >= len(buf):
            # An id newer than the caller knew of (PostgreSQL reads see new commits).
            buf.extend(bytes(byte + 1 - len(buf)))
        buf[byte] |= 1 << (i & 7)
    return int.from_bytes(buf, "little")


def iter_ids(bits: int, *, start: int = 0) -> Iterator[int]:
    """The positions of the set bits, ascending, from ``start``."""
    if bits <= 0:
        return
    data = (bits >> start << start).to_bytes((bits.bit_length() + 7) >> 3, "little")
    for byte_index, byte in enumerate(data):
        if not byte:
            continue
        base = byte_index << 3
        for bit in range(8):
            if byte >> bit & 1:
                yield base + bit
