"""Container version 1 (``.tcb`` written before v2): a fixed preamble and a UTF-8 JSON header.

    offset  size  field
    0       4     magic  b"TCB\\x1a"
    4       1     major version (1)
    5       1     minor version (0)
    6       2     flags: bit 0 = a 32-byte HMAC-SHA256 trailer ends the file
    8       4     header length H (uint32 LE), at most MAX_HEADER_BYTES
    12      4     CRC32 of the header bytes
    16      H     header: UTF-8 JSON (image size, policy, codec, layer table)
    16+H    ...   layer payloads, in layer-table order, back to back

This build still reads v1 files (docs/bitstream.md, "Version 1"); it writes v2. ``pack`` stays for
tests and tools that need a v1 file.
"""

from __future__ import annotations

import json
import struct
import zlib

from pydantic import ValidationError

from taskcodec.codec.header import MAGIC, MAX_HEADER_BYTES, Header
from taskcodec.errors import BitstreamError

VERSION = (1, 0)
PREAMBLE = struct.Struct("<4sBBHII")


def layer_crc(payload: bytes) -> int:
    return zlib.crc32(payload)


def pack(header: Header, payloads: list[bytes]) -> bytes:
    """A v1 file of ``header`` (each layer's checksum recomputed as CRC32) and ``payloads``."""
    layers = tuple(e.model_copy(update={"crc": layer_crc(p)}) for e, p in zip(header.layers, payloads))
    header = header.model_copy(update={"layers": layers})
    hdr = header.model_dump_json(exclude_none=True, exclude={"policy_labels"}, by_alias=True).encode()
    if len(hdr) > MAX_HEADER_BYTES:
        raise ValueError(f"header of {len(hdr)} bytes exceeds {MAX_HEADER_BYTES}")
    return PREAMBLE.pack(MAGIC, *VERSION, 0, len(hdr), zlib.crc32(hdr)) + hdr + b"".join(payloads)


def parse_header(data: bytes, path: object | None = None) -> tuple[Header, int]:
    """Validate the v1 preamble and JSON header; returns the header and the payload offset."""
    if len(data) < PREAMBLE.size:
        raise BitstreamError(f"file is {len(data)} bytes, too short for a taskcodec bitstream", path)
    _magic, _major, _minor, _flags, hlen, hcrc = PREAMBLE.unpack_from(data)
    if hlen > MAX_HEADER_BYTES:
        raise BitstreamError(f"header length {hlen} exceeds the limit of {MAX_HEADER_BYTES} bytes (forged or corrupt)", path)
    if PREAMBLE.size + hlen > len(data):
        raise BitstreamError(f"file is truncated inside the header ({len(data)} of {PREAMBLE.size + hlen} header bytes)", path)
    hdr = data[PREAMBLE.size : PREAMBLE.size + hlen]
    if zlib.crc32(hdr) != hcrc:
        raise BitstreamError("header is corrupt (CRC32 mismatch)", path)
    try:
        header = Header.model_validate(json.loads(hdr))
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
        where = ".".join(str(p) for p in first["loc"]) or "header"
        raise BitstreamError(f"header field {where!r} is invalid: {first['msg']}", path) from None
    for i, entry in enumerate(header.layers):
        if entry.index != i:
            raise BitstreamError(f"layer table entry {i} has index {entry.index}", path)
    return header, PREAMBLE.size + hlen
