"""Decoder of ``classical`` version 1 streams (written before container v2): Pillow AVIF/WebP layers whose
geometry (rect, crop, raster size) the JSON layer table spells out. Kept so old files still decode."""

from __future__ import annotations


from taskcodec.codec.header import Bitstream
from taskcodec.codec.raster import decode_raster, resize
from taskcodec.errors import BitstreamError


def check_rect(r, w, h, what) -> tuple[int, int, int, int]:
    if not (isinstance(r, (list, tuple)) and len(r) == 4 and all(isinstance(v, int) for v in r)):
        raise BitstreamError(f"{what}: malformed rectangle {r!r}")
    x0, y0, x1, y1 = r
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise BitstreamError(f"{what}: rectangle {r} lies outside the {w}x{h} image")
    return x0, y0, x1, y1


def _size(meta, what, limit_w, limit_h) -> tuple[int, int]:
    s = meta.get("size")
    if not (isinstance(s, list) and len(s) == 2 and all(isinstance(v, int) and v >= 1 for v in s)):
        raise BitstreamError(f"{what}: malformed raster size {s!r}")
    if s[0] > limit_w or s[1] > limit_h:
        raise BitstreamError(f"{what}: raster {s[0]}x{s[1]} is larger than the region it covers")
    return s[0], s[1]


def layers(bs: Bitstream, max_objects: int | None):
    """Yield (entry, kind, decoded raster resized to its region, crop) for the layers to use."""
    w, h = bs.header.width, bs.header.height
    n_obj = 0
    for entry, payload in zip(bs.layers, bs.payloads):
        what = f"layer {entry.index} ({entry.kind})"
        fmt = entry.meta.get("format")
        if entry.kind == "base":
            factor = entry.meta.get("scale")
            if entry.index != 0 or not isinstance(factor, int) or factor < 1:
                raise BitstreamError(f"{what}: malformed base layer entry")
            sw, sh = _size(entry.meta, what, w, h)
            yield entry, resize(decode_raster(payload, fmt, (sw, sh), what), w, h), None, None
            continue
        if max_objects is not None and n_obj >= max_objects:
            break
        rect = check_rect(entry.meta.get("rect"), w, h, what)
        cx0, cy0, cx1, cy1 = check_rect(entry.meta.get("crop"), w, h, what)
        if not (rect[0] <= cx0 and rect[1] <= cy0 and cx1 <= rect[2] and cy1 <= rect[3]):
            raise BitstreamError(f"{what}: crop lies outside its rectangle")
        sw, sh = _size(entry.meta, what, cx1 - cx0, cy1 - cy0)
        raster = resize(decode_raster(payload, fmt, (sw, sh), what), cx1 - cx0, cy1 - cy0)
        n_obj += 1
        yield entry, raster, rect, (cx0, cy0, cx1, cy1)


__all__ = ["check_rect", "layers"]
