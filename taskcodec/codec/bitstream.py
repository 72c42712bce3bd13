"""The ``.tcb`` container: write v2, read v1 and v2 (docs/bitstream.md is the spec).

Every version starts ``magic "TCB\\x1a" | major | minor | flags``; byte 6 bit 0 says a 32-byte
HMAC-SHA256 trailer ends the file (``sign`` / ``verify``). The header (v1: JSON; v2: compact
binary, ``format_v2``) holds the layer table; the payloads follow back to back in its order, each
with its length and CRC32 in the table, so a file cut anywhere still yields every complete layer
before the cut (``Bitstream.layers``) and says what is missing. Parsing is bounded: every length is
checked against the limits in ``header`` and against the bytes present before anything is allocated.
"""

from __future__ import annotations

from typing import Any

from taskcodec.codec import format_v1, format_v2
from taskcodec.codec.header import (FLAG_MAC, MAC_BYTES, MAGIC, MAX_FILE_BYTES, MAX_PIXELS_PER_BYTE,
                                    MIN_PIXEL_ALLOWANCE, Bitstream, Header, LayerEntry, layer_name)
from taskcodec.errors import BitstreamError

__all__ = ["Bitstream", "Header", "LayerEntry", "MAGIC", "VERSION", "annotate", "entry_for", "pack", "packed_size",
           "parse_header", "read", "resolve", "sign", "unpack", "verify", "version_of"]

VERSION = format_v2.VERSION  # what this build writes
READS = {1: format_v1, 2: format_v2}
FLAGS_OFFSET = 6


def pack(header: Header, payloads: list[bytes], annotation: dict[str, Any] | None = None) -> bytes:
    if len(payloads) != len(header.layers):
        raise ValueError("one payload per layer-table entry")
    for entry, data in zip(header.layers, payloads):
        if entry.length != len(data) or entry.crc != format_v2.layer_crc(data):
            raise ValueError(f"layer {entry.index}: table length/CRC do not match its payload")
    return format_v2.pack(header, payloads, annotation)


def packed_size(header: Header, payloads: list[bytes]) -> int:
    return len(format_v2.pack(header, payloads))


def entry_for(payload: bytes, **fields: Any) -> LayerEntry:
    return LayerEntry(length=len(payload), crc=format_v2.layer_crc(payload), **fields)


def annotate(data: bytes, task: str | None, labels: tuple[str, ...] | list[str] | None) -> bytes:
    """``data`` rewritten with an annotation chunk (task text and the policy's labels), so the file
    explains itself without a store. Signed files must be annotated before signing."""
    bs = unpack(data)
    if bs.signed:
        raise ValueError("annotate before signing: the signature covers the header")
    if not bs.complete:
        raise ValueError("cannot annotate an incomplete stream")
    header = bs.header.model_copy(update={"policy_labels": tuple(labels) if labels is not None else None})
    return format_v2.pack(header, bs.payloads, {"task": task, "labels": list(labels) if labels is not None else None})


def resolve(header: Header, task: str | None, labels: tuple[str, ...] | list[str]) -> Header:
    """``header`` with the label names and task text a v2 header leaves to the store filled in."""
    labels = tuple(labels)
    layers = tuple(e.model_copy(update={"label": labels[e.label_index]})
                   if e.label is None and e.label_index is not None and e.label_index < len(labels) else e
                   for e in header.layers)
    return header.model_copy(update={"task": header.task or task, "policy_labels": labels, "layers": layers})


def sign(data: bytes, key: bytes) -> bytes:
    """``data`` with flags bit 0 set and an HMAC-SHA256 (``key``) of the result appended: tamper
    evidence, which CRCs are not (anyone can recompute a CRC)."""
    import hashlib
    import hmac

    body = data[:FLAGS_OFFSET] + bytes([data[FLAGS_OFFSET] | FLAG_MAC]) + data[FLAGS_OFFSET + 1:]
    return body + hmac.new(key, body, hashlib.sha256).digest()


def _flags(data: bytes) -> int:
    return data[FLAGS_OFFSET] if len(data) > FLAGS_OFFSET else 0


def verify(data: bytes, key: bytes, path: object | None = None) -> None:
    """Raise ``BitstreamError`` unless ``data`` is signed and its HMAC matches ``key``."""
    import hashlib
    import hmac

    if len(data) < 8 or not _flags(data) & FLAG_MAC:
        raise BitstreamError("not signed, but a MAC key is set (TASKCODEC_MAC_KEY_FILE): cannot prove it unchanged",
                             path)
    body, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), mac):
        raise BitstreamError("MAC mismatch: the file was changed after it was signed (or signed with another key)",
                             path)


def version_of(data: bytes, path: object | None = None) -> tuple[int, int]:
    """The container version a file declares; refuses what is not a taskcodec bitstream."""
    if len(data) < 8:
        raise BitstreamError(f"file is {len(data)} bytes, too short for a taskcodec bitstream", path)
    if data[:4] != MAGIC:
        raise BitstreamError("not a taskcodec bitstream (bad magic bytes)", path)
    major, minor = data[4], data[5]
    if major not in READS:
        raise BitstreamError(f"bitstream version {major}.{minor} is not supported (this build reads "
                             f"{', '.join(f'{v}.x' for v in READS)})", path)
    return major, minor


def parse_header(data: bytes, path: object | None = None) -> tuple[Header, int]:
    """Validate the preamble and header; returns the header and the payload offset."""
    major, _ = version_of(data, path)
    return READS[major].parse_header(data, path)


def unpack(data: bytes, path: object | None = None) -> Bitstream:
    """Parse a bitstream; the header must be intact, layers are kept up to the first bad one."""
    if len(data) > MAX_FILE_BYTES:
        raise BitstreamError(f"file of {len(data)} bytes exceeds {MAX_FILE_BYTES}", path)
    version = version_of(data, path)
    header, offset = READS[version[0]].parse_header(data, path)
    signed = bool(_flags(data) & FLAG_MAC)
    if signed:  # the trailer is not a layer; ``verify`` checks it
        data = data[:-MAC_BYTES] if len(data) - MAC_BYTES >= offset else data[:offset]
    allowance = max(MIN_PIXEL_ALLOWANCE, MAX_PIXELS_PER_BYTE * len(data))
    if header.width * header.height > allowance:
        raise BitstreamError(f"header declares {header.width}x{header.height} pixels, implausible for a "
                             f"{len(data):,}-byte stream (forged or corrupt); refused before any allocation", path)
    payloads: list[bytes] = []
    problems: list[str] = []
    corrupt = False
    pos = offset
    for entry in header.layers:
        end = pos + entry.length
        if end > len(data):
            have = max(0, len(data) - pos)
            problems.append(
                f"file is truncated: layer {entry.index} ({layer_name(entry)}) has {have} of {entry.length} bytes; "
                f"layers {entry.index}..{len(header.layers) - 1} are missing"
            )
            break
        chunk = data[pos:end]
        if READS[version[0]].layer_crc(chunk) != entry.crc:
            problems.append(
                f"layer {entry.index} ({layer_name(entry)}) is corrupt (CRC mismatch); "
                f"layers {entry.index}..{len(header.layers) - 1} are not used"
            )
            corrupt = True
            break
        payloads.append(chunk)
        pos = end
    else:
        if pos != len(data):
            problems.append(f"{len(data) - pos} unexpected bytes after the last layer were ignored")
    return Bitstream(header, payloads, problems, corrupt, signed, version, offset)


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
