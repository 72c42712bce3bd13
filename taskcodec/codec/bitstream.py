"""Bitstream container v1 (``.tcb``); the byte layout is documented in docs/bitstream.md.

    offset  size  field
    0       4     magic  b"TCB\\x1a"
    4       1     major version (1)
    5       1     minor version (0)
    6       2     flags: bit 0 = a 32-byte HMAC-SHA256 trailer ends the file (``sign``)
    8       4     header length H (uint32 LE), at most MAX_HEADER_BYTES
    12      4     CRC32 of the header bytes
    16      H     header: UTF-8 JSON (image size, policy, codec, layer table)
    16+H    ...   layer payloads, in layer-table order, back to back
    [end-32 32    HMAC-SHA256 of every byte before it, with a user's key: flags bit 0]

Layers are stored in importance order, base first, each with its length and
CRC32 in the layer table, so a file cut anywhere still yields every complete
layer before the cut (``Bitstream.layers``) and says what is missing.
Parsing is bounded: every length is checked against the limits below and
against the bytes actually present before anything is allocated.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from taskcodec.errors import BitstreamError

MAGIC = b"TCB\x1a"
VERSION = (1, 0)
PREAMBLE = struct.Struct("<4sBBHII")
MAX_HEADER_BYTES = 1 << 20
MAX_LAYERS = 4096
MAX_SIDE = 65535
MAX_FILE_BYTES = 1 << 31
# Decoding allocates a few bytes per pixel, so the pixel count a header may declare is bounded by the
# bytes actually present: a forged 1 kB header cannot ask for a 65535x65535 canvas. Real streams sit far
# below this (a 640x480 photo at the lowest quality is ~500 bytes: ~600 pixels per byte).
MAX_PIXELS_PER_BYTE = 16384
MIN_PIXEL_ALLOWANCE = 1 << 22


class LayerEntry(BaseModel):
    """One row of the layer table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)
    kind: str = Field(pattern=r"^(base|object|background)$")
    label: str | None = None
    box: tuple[float, float, float, float] | None = None  # the detection box, pixels
    importance: float | None = None
    quality: int | None = Field(default=None, ge=0, le=100)
    length: int = Field(ge=0, le=MAX_FILE_BYTES)
    crc32: int = Field(ge=0, le=0xFFFFFFFF)
    meta: dict[str, Any] = Field(default_factory=dict)  # codec-specific geometry


class Header(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    width: int = Field(ge=1, le=MAX_SIDE)
    height: int = Field(ge=1, le=MAX_SIDE)
    codec: str
    codec_version: str
    settings: dict[str, Any] = Field(default_factory=dict)
    encoding_uid: str
    policy_id: int | None = None
    policy_hash: str | None = None
    task: str | None = None
    layers: tuple[LayerEntry, ...] = Field(max_length=MAX_LAYERS)


@dataclass
class Bitstream:
    header: Header
    payloads: list[bytes]  # the complete, CRC-verified prefix of the layer table
    problems: list[str] = field(default_factory=list)  # what is missing or corrupt after the prefix
    corrupt: bool = False  # a layer failed its CRC (damage), as opposed to a file cut short
    signed: bool = False  # flags bit 0: an HMAC-SHA256 trailer (checked by ``verify``, with the key)

    @property
    def complete(self) -> bool:
        return len(self.payloads) == len(self.header.layers)

    @property
    def layers(self) -> tuple[LayerEntry, ...]:
        return self.header.layers[: len(self.payloads)]


def pack(header: Header, payloads: list[bytes]) -> bytes:
    if len(payloads) != len(header.layers):
        raise ValueError("one payload per layer-table entry")
    for entry, data in zip(header.layers, payloads):
        if entry.length != len(data) or entry.crc32 != zlib.crc32(data):
            raise ValueError(f"layer {entry.index}: table length/CRC do not match its payload")
    hdr = header.model_dump_json(exclude_none=True).encode()
    if len(hdr) > MAX_HEADER_BYTES:
        raise ValueError(f"header of {len(hdr)} bytes exceeds {MAX_HEADER_BYTES}")
    return PREAMBLE.pack(MAGIC, *VERSION, 0, len(hdr), zlib.crc32(hdr)) + hdr + b"".join(payloads)


FLAG_MAC = 1
MAC_BYTES = 32


def sign(data: bytes, key: bytes) -> bytes:
    """``data`` with flags bit 0 set and an HMAC-SHA256 (``key``) of the result appended: tamper
    evidence, which CRCs are not (anyone can recompute a CRC)."""
    import hashlib
    import hmac

    magic, major, minor, flags, hlen, hcrc = PREAMBLE.unpack_from(data)
    body = PREAMBLE.pack(magic, major, minor, flags | FLAG_MAC, hlen, hcrc) + data[PREAMBLE.size:]
    return body + hmac.new(key, body, hashlib.sha256).digest()


def verify(data: bytes, key: bytes, path: object | None = None) -> None:
    """Raise ``BitstreamError`` unless ``data`` is signed and its HMAC matches ``key``."""
    import hashlib
    import hmac

    if len(data) < PREAMBLE.size or not PREAMBLE.unpack_from(data)[3] & FLAG_MAC:
        raise BitstreamError("not signed, but a MAC key is set (TASKCODEC_MAC_KEY_FILE): cannot prove it unchanged",
                             path)
    body, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), mac):
        raise BitstreamError("MAC mismatch: the file was changed after it was signed (or signed with another key)",
                             path)


def entry_for(payload: bytes, **fields: Any) -> LayerEntry:
    return LayerEntry(length=len(payload), crc32=zlib.crc32(payload), **fields)


def packed_size(header: Header, payloads: list[bytes]) -> int:
    return PREAMBLE.size + len(header.model_dump_json(exclude_none=True).encode()) + sum(map(len, payloads))


def parse_header(data: bytes, path: object | None = None) -> tuple[Header, int]:
    """Validate the preamble and header; returns the header and the payload offset."""
    if len(data) < PREAMBLE.size:
        raise BitstreamError(f"file is {len(data)} bytes, too short for a taskcodec bitstream", path)
    magic, major, minor, _flags, hlen, hcrc = PREAMBLE.unpack_from(data)  # flags: see unpack
    if magic != MAGIC:
        raise BitstreamError("not a taskcodec bitstream (bad magic bytes)", path)
    if major != VERSION[0]:
        raise BitstreamError(f"bitstream version {major}.{minor} is not supported (this build reads {VERSION[0]}.x)", path)
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


def unpack(data: bytes, path: object | None = None) -> Bitstream:
    """Parse a bitstream; the header must be intact, layers are kept up to the first bad one."""
    if len(data) > MAX_FILE_BYTES:
        raise BitstreamError(f"file of {len(data)} bytes exceeds {MAX_FILE_BYTES}", path)
    header, offset = parse_header(data, path)
    signed = bool(PREAMBLE.unpack_from(data)[3] & FLAG_MAC)
    if signed:  # the trailer is not a layer; ``verify`` checks it
        data = data[:-MAC_BYTES] if len(data) - MAC_BYTES >= offset else data[:offset]
    allowance = max(MIN_PIXEL_ALLOWANCE, MAX_PIXELS_PER_BYTE * len(data))
    if header.width * header.height > allowance:
        raise BitstreamError(f"header declares {header.width}x{header.height} pixels, implausible for a "
                             f"{len(data):,}-byte stream (forged or corrupt); refused before any allocation", path)
    payloads: list[bytes] = []
    problems: list[str] = []
    corrupt = False
    for entry in header.layers:
        end = offset + entry.length
        if end > len(data):
            have = max(0, len(data) - offset)
            problems.append(
                f"file is truncated: layer {entry.index} ({_name(entry)}) has {have} of {entry.length} bytes; "
                f"layers {entry.index}..{len(header.layers) - 1} are missing"
            )
            break
        chunk = data[offset:end]
        if zlib.crc32(chunk) != entry.crc32:
            problems.append(
                f"layer {entry.index} ({_name(entry)}) is corrupt (CRC32 mismatch); "
                f"layers {entry.index}..{len(header.layers) - 1} are not used"
            )
            corrupt = True
            break
        payloads.append(chunk)
        offset = end
    else:
        if offset != len(data):
            problems.append(f"{len(data) - offset} unexpected bytes after the last layer were ignored")
    return Bitstream(header, payloads, problems, corrupt, signed)


def read(path, mac_key: bytes | None = None) -> Bitstream:
    """Read and parse a file; with ``mac_key`` its HMAC signature must match (``verify``)."""
    from pathlib import Path

    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise BitstreamError(f"cannot read file ({exc.strerror or exc})", p) from None
    if size > MAX_FILE_BYTES:
        raise BitstreamError(f"file of {size} bytes exceeds {MAX_FILE_BYTES}", p)
    data = p.read_bytes()
    if mac_key is not None:
        verify(data, mac_key, p)
    return unpack(data, p)


def _name(entry: LayerEntry) -> str:
    return entry.kind if entry.kind == "base" else f"{entry.kind} '{entry.label}'"
