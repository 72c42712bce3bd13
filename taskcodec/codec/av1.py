"""A raster as raw AV1: SVT-AV1 encodes, dav1d decodes (both in PyAV's FFmpeg), no container.

A payload is the low-overhead OBU stream of one 4:2:0 8-bit key frame (sequence header and frame
OBUs) without its leading temporal delimiter, which ``decode_av1`` puts back. Sides SVT-AV1 cannot
code are padded (``coded_size``) and cropped after decoding; a raster wider than 16384 or taller than
8704 (SVT-AV1's limits) is cut into tiles, each an independent key frame prefixed by its varint length.
A *bare* payload (``bare=True``, classical codec version 3) leaves out each frame's sequence header
when it is the one ``av1_obu.sequence_header`` rebuilds from the coded size.

``ENCODER = "aom"`` writes the same kind of payload with libaom instead (Pillow's AVIF encoder, the
OBUs taken out of the file): any taskcodec decodes it. It is not shipped: on the training photos it
gained on one task and lost on the other (docs/benchmarks.md, *Tuning*).
"""

from __future__ import annotations

import io
import math
import os
import struct
from fractions import Fraction

import numpy as np

from taskcodec.codec import av1_obu, varint
from taskcodec.errors import BitstreamError

MIN_SIDE = 8  # SVT-AV1 refuses sides under 4; smaller rasters are edge-padded to this and cropped
MAX_WIDTH, MAX_HEIGHT = 16384, 8704  # SVT-AV1's largest frame (AV1 level 6); larger rasters are tiled
PRESET = 6  # SVT-AV1 speed preset (0 slowest .. 13 fastest)
ENCODER = "svt"  # "svt": SVT-AV1 through PyAV; "aom": libaom through Pillow's AVIF, container stripped
AOM_SPEED = 6  # libaom's speed (0 slowest .. 10 fastest), as the AVIF anchor in ``taskcodec bench``
SVT_PARAMS = ""  # extra ``svtav1-params`` (none shipped: benchmarks/svt_params.py and tune_classical.py measure them)
TEMPORAL_DELIMITER = b"\x12\x00"  # the OBU every temporal unit starts with; dropped, and put back to decode
os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration to stderr otherwise


def crf(quality: int) -> int:
    """Quality 1-100 onto AV1's quantiser scale 63-0 (libavif's mapping)."""
    return int(round((100 - min(100, max(1, quality))) * 63 / 100))


def coded_size(width: int, height: int) -> tuple[int, int]:
    """The size a tile is coded at: sides under 8 are padded to 8, and a side under 32 beside one
    over 64 is padded to 32 (SVT-AV1 4.1 never returns on such strips, e.g. 16x65 or 24x200)."""
    w, h = max(width, MIN_SIDE), max(height, MIN_SIDE)
    if max(w, h) > 64:
        w, h = max(w, 32), max(h, 32)
    return w, h


def _cuts(side: int, most: int) -> list[tuple[int, int]]:
    n = math.ceil(side / most)
    step = math.ceil(side / n)
    return [(i, min(side, i + step)) for i in range(0, side, step)]


def tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The (x0, y0, x1, y1) tiles of a raster, row by row: one unless it exceeds MAX_WIDTH or MAX_HEIGHT."""
    return [(x0, y0, x1, y1) for y0, y1 in _cuts(height, MAX_HEIGHT) for x0, x1 in _cuts(width, MAX_WIDTH)]


def _boxes(data: bytes):
    """(type, start, end) of each top-level ISOBMFF box."""
    i = 0
    while i + 8 <= len(data):
        size, typ = struct.unpack_from(">I4s", data, i)
        head = 8
        if size == 1:
            size, head = struct.unpack_from(">Q", data, i + 8)[0], 16
        elif size == 0:
            size = len(data) - i
        yield typ, i + head, i + size
        i += size


def _encode_tile_aom(pixels: np.ndarray, quality: int) -> bytes:
    """The AV1 OBUs libaom writes for one still image (Pillow's AVIF, one thread so the bytes never depend
    on the core count), taken out of the file's ``mdat``: the file holds nothing else there."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "AVIF", quality=int(min(100, max(1, quality))), speed=AOM_SPEED, max_threads=1)
    data = buf.getvalue()
    mdat = [data[s:e] for typ, s, e in _boxes(data) if typ == b"mdat"]
    if len(mdat) != 1:
        raise RuntimeError(f"libaom's AVIF has {len(mdat)} mdat boxes, not 1")
    return mdat[0]


def _encode_tile(pixels: np.ndarray, quality: int, bare: bool) -> bytes:
    data = _encode_frame(pixels, quality)
    return av1_obu.bare(data, *coded_size(*pixels.shape[1::-1])) if bare else data


def _encode_frame(pixels: np.ndarray, quality: int) -> bytes:
    import av

    h, w = pixels.shape[:2]
    pw, ph = coded_size(w, h)
    if (ph, pw) != (h, w):
        pixels = np.pad(pixels, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    if ENCODER == "aom":
        data = _encode_tile_aom(np.ascontiguousarray(pixels), quality)
        return data[len(TEMPORAL_DELIMITER):] if data.startswith(TEMPORAL_DELIMITER) else data
    cc = av.CodecContext.create("libsvtav1", "w")
    cc.width, cc.height, cc.pix_fmt, cc.time_base = pw, ph, "yuv420p", Fraction(1, 25)
    cc.options = {"crf": str(crf(quality)), "preset": str(PRESET)}
    if SVT_PARAMS:
        cc.options = {**cc.options, "svtav1-params": SVT_PARAMS}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24").reformat(format="yuv420p")
    data = b"".join(bytes(p) for p in [*cc.encode(frame), *cc.encode(None)])
    return data[len(TEMPORAL_DELIMITER):] if data.startswith(TEMPORAL_DELIMITER) else data


def _decode_tile(data: bytes, w: int, h: int, what: str, bare: bool) -> np.ndarray:
    import av

    pw, ph = coded_size(w, h)
    if bare:
        data = av1_obu.dress(data, pw, ph)
    try:
        cc = av.CodecContext.create("libdav1d", "r")
        # A bare payload's frame size comes from the layer table alone; decoded strictly, a table that
        # lies about it fails dav1d's checks of the tile data instead of giving a picture of the wrong size.
        cc.options = {"max_frame_delay": "1", **({"strict": "strict"} if bare else {})}
        frames = [*cc.decode(av.Packet(TEMPORAL_DELIMITER + data)), *cc.decode(None)]
    except Exception as exc:  # PyAV raises its own error types on damaged data
        at = f" at the layer table's {pw}x{ph}" if bare else ""
        raise BitstreamError(f"{what}: AV1 payload does not decode{at} ({exc})") from None
    if len(frames) != 1:
        raise BitstreamError(f"{what}: AV1 payload holds {len(frames)} frames, not 1")
    if (frames[0].width, frames[0].height) != (pw, ph):
        raise BitstreamError(f"{what}: payload is {frames[0].width}x{frames[0].height}, the layer table says {pw}x{ph}")
    return frames[0].to_ndarray(format="rgb24")[:h, :w]


def encode_av1(pixels: np.ndarray, quality: int, bare: bool = False) -> bytes:
    h, w = pixels.shape[:2]
    parts = tiles(w, h)
    if len(parts) == 1:
        return _encode_tile(pixels, quality, bare)
    out = bytearray()
    for x0, y0, x1, y1 in parts:
        tile = _encode_tile(pixels[y0:y1, x0:x1], quality, bare)
        out += varint.encode(len(tile)) + tile
    return bytes(out)


def decode_av1(data: bytes, size: tuple[int, int], what: str, bare: bool = False) -> np.ndarray:
    w, h = size
    parts = tiles(w, h)
    if len(parts) == 1:
        return np.ascontiguousarray(_decode_tile(data, w, h, what, bare))
    out = np.empty((h, w, 3), np.uint8)
    pos = 0
    for x0, y0, x1, y1 in parts:
        try:
            n, pos = varint.decode(data, pos)
        except ValueError:
            raise BitstreamError(f"{what}: AV1 tile table is truncated") from None
        if pos + n > len(data):
            raise BitstreamError(f"{what}: AV1 tile table is truncated")
        out[y0:y1, x0:x1] = _decode_tile(data[pos:pos + n], x1 - x0, y1 - y0, what, bare)
        pos += n
    if pos != len(data):
        raise BitstreamError(f"{what}: {len(data) - pos} bytes after the last AV1 tile")
    return out
