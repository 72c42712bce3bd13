"""Unsigned LEB128 varints: 7 bits a byte, low bits first, the top bit set on every byte but the last."""

from __future__ import annotations

MAX_BYTES = 5  # values up to 2**35: every length and field in a .tcb fits


def encode(n: int) -> bytes:
    if n < 0:
        raise ValueError(f"varint of negative {n}")
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def decode(data: bytes, pos: int) -> tuple[int, int]:
    """The value at ``data[pos:]`` and the position after it; ``ValueError`` when cut short or too long."""
    n = shift = 0
    for i in range(MAX_BYTES):
        if pos + i >= len(data):
            raise ValueError("truncated varint")
        b = data[pos + i]
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos + i + 1
    raise ValueError("varint longer than 5 bytes")
