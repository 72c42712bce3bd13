"""Container version 2: a compact binary header (docs/bitstream.md is the spec).

    magic "TCB\\x1a" | major 2 | minor 0 | flags (1 byte) | varint H | header body (H bytes) | CRC32 (4, LE)
    layer payloads, back to back, in layer-table order | [32-byte HMAC trailer: flags bit 0]

The body is varints (LEB128), enums and fixed-size references; labels are indexes into the policy's
label list, object boxes sit on the 8-pixel coding grid, and each layer's codec geometry is a short
list of varints whose meaning the codec and version fix (``SCHEMAS``). The task text and label names
live in the store; an optional annotation chunk (zlib-compressed JSON) carries them in the file.
"""

from __future__ import annotations

import binascii
import json
import math
import struct
import zlib
from typing import Any

from pydantic import ValidationError

from taskcodec.codec import varint
from taskcodec.codec.header import FLAG_MAC, MAGIC, MAX_FILE_BYTES, MAX_HEADER_BYTES, MAX_LAYERS, MAX_SIDE, Header, LayerEntry
from taskcodec.errors import BitstreamError

VERSION = (2, 0)
PREAMBLE = struct.Struct("<4sBBB")  # magic, major, minor, flags
GRID = 8  # object boxes are stored in units of the coding grid (AV1's 8x8 blocks)
CODECS = ("classical", "learned")
KINDS = ("base", "object", "background")
FORMATS = ("auto", "avif", "webp", "av1")
UID_BYTES = 8
HASH_BYTES = 4
MAX_ANNOTATION = 1 << 16
# (codec, codec version) -> kind -> ((meta key, count, divisor, signed), ...): a layer's geometry varints.
# A value is stored as round(value * divisor); signed ones zigzag-coded (0, -1, 1, -2... -> 0, 1, 2, 3...).
_CLASSICAL = {"base": (("scale", 1, 1, False),), "object": (("grid", 4, 1, False), ("scale16", 1, 1, False))}
SCHEMAS: dict[tuple[str, str], dict[str, tuple[tuple[str, int, int, bool], ...]]] = {
    ("classical", "2"): _CLASSICAL,
    ("classical", "3"): _CLASSICAL,  # the same table; version 3 changed the payloads (bare AV1) and the filter
    ("learned", "1"): {"base": (("latent", 2, 1, False), ("hyper", 2, 1, False), ("scale", 1, 1, False)),
                       "object": (("rect", 4, 1, False), ("level", 1, 10000, True)),
                       "background": (("rect", 4, 1, False), ("level", 1, 10000, True))},
}


_varint = varint.encode


def layer_crc(payload: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of a layer's payload: damage detection, not authentication."""
    return binascii.crc_hqx(payload, 0xFFFF)


def _str(s: str) -> bytes:
    raw = s.encode()
    return _varint(len(raw)) + raw


def grid_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    """A pixel box rounded outward onto the coding grid, in grid units (clipped to the image)."""
    x0, y0, x1, y1 = box
    gw, gh = -(-width // GRID), -(-height // GRID)
    gx0, gy0 = min(gw - 1, max(0, math.floor(x0) // GRID)), min(gh - 1, max(0, math.floor(y0) // GRID))
    gx1, gy1 = min(gw, -(-math.ceil(x1) // GRID)), min(gh, -(-math.ceil(y1) // GRID))
    return gx0, gy0, max(gx0 + 1, gx1), max(gy0 + 1, gy1)


def box_of_grid(g, width: int, height: int) -> tuple[float, float, float, float]:
    return (float(g[0] * GRID), float(g[1] * GRID), float(min(width, g[2] * GRID)), float(min(height, g[3] * GRID)))


def _label_ref(entry: LayerEntry, labels: tuple[str, ...], extras: list[str]) -> int:
    """0: none (base); 2k+2: policy label k; 2k+1: extra label k (not in the policy's list)."""
    if entry.kind != "object":
        return 0
    if entry.label is None:
        return 0 if entry.label_index is None else 2 * entry.label_index + 2
    if entry.label in labels:
        return 2 * labels.index(entry.label) + 2
    if entry.label not in extras:
        extras.append(entry.label)
    return 2 * extras.index(entry.label) + 1


def _settings(codec: str, s: dict[str, Any], extras: bool, note: bool) -> bytes:
    flags = int(bool(s.get("full"))) | (int(s.get("background") == "none") << 1)
    flags |= FORMATS.index(s.get("format", "auto")) << 2 | int(bool(s.get("predict"))) << 4
    flags |= int(extras) << 5 | int(note) << 6
    out = _varint(int(s.get("quality", 0))) + bytes([flags])
    if codec == "learned":
        bq = s.get("background_quality")
        out += _varint(0 if bq is None else int(bq) + 1) + _str(s.get("model") or "")
    return out


def pack(header: Header, payloads: list[bytes], annotation: dict[str, Any] | None = None) -> bytes:
    """The v2 bytes of ``header`` and ``payloads`` (an annotation chunk when ``annotation`` is given)."""
    schema = SCHEMAS.get((header.codec, header.codec_version))
    if schema is None:
        raise ValueError(f"no v2 layout for codec {header.codec!r} version {header.codec_version!r}")
    labels = header.policy_labels or ()
    extras: list[str] = []
    rows = bytearray()
    for entry, payload in zip(header.layers, payloads):
        rows += _varint(KINDS.index(entry.kind) | _label_ref(entry, labels, extras) << 2)
        for key, count, div, signed in schema[entry.kind]:
            value = entry.meta[key]
            for v in (value if count > 1 else [value]):
                n = round(v * div)
                rows += _varint(2 * n if n >= 0 else -2 * n - 1) if signed else _varint(n)
        rows += _varint(len(payload)) + struct.pack("<H", layer_crc(payload))
    body = bytearray(_varint(CODECS.index(header.codec)) + _varint(int(header.codec_version)))
    body += _varint(header.width) + _varint(header.height) + bytes.fromhex(header.encoding_uid[: 2 * UID_BYTES])
    if header.policy_id is None:
        body += _varint(0)
    else:
        body += _varint(header.policy_id + 1) + bytes.fromhex((header.policy_hash or "0" * 8)[: 2 * HASH_BYTES])
    note = zlib.compress(json.dumps(annotation, separators=(",", ":")).encode(), 9) if annotation else b""
    body += _settings(header.codec, header.settings, bool(extras), bool(note))
    if extras:
        body += _varint(len(extras)) + b"".join(_str(x) for x in extras)
    if note:
        body += _varint(len(note)) + note
    body += _varint(len(header.layers)) + rows
    return (PREAMBLE.pack(MAGIC, *VERSION, 0) + _varint(len(body)) + bytes(body)
            + struct.pack("<I", zlib.crc32(body)) + b"".join(payloads))


class _Reader:
    def __init__(self, data: bytes, path):
        self.data, self.pos, self.path = data, 0, path

    def fail(self, what: str):
        raise BitstreamError(f"header field {what!r} is invalid", self.path)

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            self.fail(what)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def varint(self, what: str, limit: int = 1 << 32) -> int:
        try:
            n, self.pos = varint.decode(self.data, self.pos)
        except ValueError:
            self.fail(what)
        if n > limit:
            raise BitstreamError(f"header field {what!r} is invalid: {n} exceeds {limit}", self.path)
        return n

    def string(self, what: str, limit: int = 256) -> str:
        try:
            return self.take(self.varint(what, limit), what).decode()
        except UnicodeDecodeError:
            self.fail(what)


def parse_header(data: bytes, path: object | None = None) -> tuple[Header, int]:
    """Validate the v2 preamble and header; returns the header and the payload offset."""
    start = PREAMBLE.size
    if data[6] & ~FLAG_MAC & 0xFF:
        raise BitstreamError(f"flags {data[6]:#04x} set reserved bits (forged, corrupt, or a newer minor version)", path)
    outer = _Reader(data, path)
    outer.pos = start
    try:
        hlen = outer.varint("header length", MAX_HEADER_BYTES)
    except BitstreamError:
        raise BitstreamError("file is truncated inside the header", path) from None
    end = outer.pos + hlen
    if end + 4 > len(data):
        raise BitstreamError(f"file is truncated inside the header ({len(data)} of {end + 4} header bytes)", path)
    body = data[outer.pos : end]
    if zlib.crc32(body) != struct.unpack_from("<I", data, end)[0]:
        raise BitstreamError("header is corrupt (CRC32 mismatch)", path)
    try:
        header = _parse_body(_Reader(body, path), path)
    except ValidationError as exc:  # a value the varint limits let through but the header types refuse
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "header"
        raise BitstreamError(f"header field {where!r} is invalid: {first['msg']}", path) from None
    return header, end + 4


def _parse_body(r: _Reader, path) -> Header:
    codec_id = r.varint("codec")
    if codec_id >= len(CODECS):
        raise BitstreamError(f"header field 'codec' is invalid: codec id {codec_id} is not known to this build", path)
    codec, version = CODECS[codec_id], str(r.varint("codec_version", 1000))
    width, height = r.varint("width", MAX_SIDE), r.varint("height", MAX_SIDE)
    if not width or not height:
        r.fail("width" if not width else "height")
    uid = r.take(UID_BYTES, "encoding_uid").hex()
    pid = r.varint("policy_id")
    policy_id, policy_hash = (pid - 1, r.take(HASH_BYTES, "policy_hash").hex()) if pid else (None, None)
    quality, flags = r.varint("settings.quality", 100), r.take(1, "settings.flags")[0]
    if flags >> 7:
        r.fail("settings.flags")
    settings: dict[str, Any] = {"quality": quality, "full": bool(flags & 1), "background": "none" if flags & 2 else
                                "coarse", "format": FORMATS[flags >> 2 & 3], "predict": bool(flags & 16)}
    if codec == "learned":
        bq = r.varint("settings.background_quality", 101)
        if bq:
            settings["background_quality"] = bq - 1
        model = r.string("settings.model")
        if model:
            settings["model"] = model
    extras = [r.string("extra labels") for _ in range(r.varint("extra labels", 1024))] if flags & 32 else []
    annotation = _annotation(r.take(r.varint("annotation", MAX_ANNOTATION), "annotation"), path) if flags & 64 else {}
    labels = annotation.get("labels")
    schema = SCHEMAS.get((codec, version), {})
    layers = []
    for i in range(r.varint("layers", MAX_LAYERS)):
        word = r.varint(f"layers.{i}.kind", 1 << 18)
        kind_id, ref = word & 3, word >> 2
        if kind_id >= len(KINDS) or KINDS[kind_id] not in schema and schema:
            r.fail(f"layers.{i}.kind")
        kind = KINDS[kind_id]
        meta: dict[str, Any] = {}
        for key, count, div, signed in schema.get(kind, ()):
            vals = [r.varint(f"layers.{i}.{key}", 2 * MAX_SIDE * div) for _ in range(count)]
            if signed:
                vals = [v // 2 if v % 2 == 0 else -(v + 1) // 2 for v in vals]
            vals = [v / div for v in vals] if div > 1 else vals
            meta[key] = vals if count > 1 else vals[0]
        length, crc = r.varint(f"layers.{i}.length", MAX_FILE_BYTES), struct.unpack("<H", r.take(2, f"layers.{i}.crc"))[0]
        label, label_index = _label(ref, kind, extras, labels, i, r)
        box = None
        if "grid" in meta:
            g = meta["grid"]
            if not (g[0] < g[2] and g[1] < g[3] and g[2] * GRID < width + GRID and g[3] * GRID < height + GRID):
                r.fail(f"layers.{i}.grid")
            box = box_of_grid(g, width, height)
        elif kind == "object" and "rect" in meta:  # learned: the latent rect, 16 px a cell
            box = box_of_grid([v * 2 for v in meta["rect"]], width, height)
        layers.append(LayerEntry(index=i, kind=kind, label=label, label_index=label_index, box=box,
                                 length=length, crc=crc, meta=meta))
    if r.pos != len(r.data):
        r.fail("header length")
    return Header(width=width, height=height, codec=codec, codec_version=version, settings=settings,
                  encoding_uid=uid, policy_id=policy_id, policy_hash=policy_hash, task=annotation.get("task"),
                  policy_labels=tuple(labels) if labels is not None else None, layers=tuple(layers))


def _label(ref: int, kind: str, extras: list[str], labels, i: int, r: _Reader) -> tuple[str | None, int | None]:
    if ref == 0:
        return ("background" if kind != "object" else None), None
    if ref % 2:
        if (ref - 1) // 2 >= len(extras):
            r.fail(f"layers.{i}.label")
        return extras[(ref - 1) // 2], None
    k = ref // 2 - 1
    if labels is not None and k >= len(labels):
        r.fail(f"layers.{i}.label")
    return (labels[k] if labels is not None else None), k


def _annotation(raw: bytes, path) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        note = json.loads(zlib.decompressobj().decompress(raw, MAX_ANNOTATION))
        task, labels = note.get("task"), note.get("labels")
        if (task is None or isinstance(task, str)) and (labels is None or all(isinstance(x, str) for x in labels)):
            return {"task": task, "labels": labels}
    except (ValueError, zlib.error, AttributeError, TypeError):
        pass
    raise BitstreamError("header field 'annotation' is invalid", path)
