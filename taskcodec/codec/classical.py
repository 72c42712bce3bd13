"""``classical``: a layered codec built from Pillow's AVIF/WebP, one pixel coded once.

Layers, in the order they are written::

    0  base     whole image at 1/f scale (f = 2, 4 or 8 by quality)   -> upsampled: the prediction P
    1  object   rect_1 = box_1 + margin; owns rect_1                    -> pasted over P where it owns
    2  object   rect_2 = box_2 + margin; owns rect_2 minus rect_1       -> ...
    k  object   owns rect_k minus the union of rect_1..rect_{k-1}

Ownership needs nothing but the rects in the layer table, so the decoder
rebuilds every mask exactly, and any prefix of the layers decodes.
Each object layer codes only the bounding box of the pixels it owns; inside
it, pixels owned by earlier layers are replaced by the prediction P (smooth,
cheap to code) and ignored at decode. So overlaps are paid once, and the base
keeps the context around objects that detectors rely on.

Quality follows importance: layer quality = Q + the policy's offset for the
object's tier (high / medium / low). Detail follows size: a layer whose rect
is longer than ``target = 64 + 3.2 * quality`` pixels is coded at
``long side / target`` scale (capped at 4), since a detector needs less
detail on a large object than on a small one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from taskcodec.codec.bitstream import Bitstream, LayerEntry, entry_for, pack
from taskcodec.codec.layering import EncodeResult, Writer, clamp_quality, covered, expand, header_fields, place
from taskcodec.codec.raster import choose_format, decode_raster, encode_raster, resize
from taskcodec.decisions import ObjectOutcome, ObjectRequest
from taskcodec.errors import BitstreamError, BudgetError

CODEC_ID = "classical"
CODEC_VERSION = "1"
GREY = 128


class ClassicalParams(BaseModel):
    """Settings of the ``classical`` codec (``Params`` is the name every codec shares)."""


    quality: int = Field(default=60, ge=1, le=100, description="1-100, higher = better.")
    budget_bytes: int | None = Field(default=None, ge=1)
    format: Literal["auto", "avif", "webp"] = "auto"
    quality_offset: dict[str, int] = Field(default_factory=lambda: {"high": 0, "medium": -10, "low": -20})
    background: Literal["coarse", "none"] = "coarse"
    full: bool = Field(default=False, description="Whole-image mode: the base at full resolution, no objects.")


Params = ClassicalParams


def base_plan(quality: int) -> tuple[int, int]:
    """(downscale factor, AVIF quality) of the base layer for a requested quality."""
    factor = 2 if quality >= 85 else 4 if quality >= 40 else 8
    return factor, max(1, quality - 10)


def object_scale(rect: tuple[int, int, int, int], quality: int) -> float:
    long_side = max(rect[2] - rect[0], rect[3] - rect[1])
    target = 64 + 3.2 * quality
    return round(min(4.0, max(1.0, long_side / target)), 3)


def _base_layer(pixels: np.ndarray, factor: int, quality: int, fmt: str) -> tuple[LayerEntry, bytes, np.ndarray]:
    h, w = pixels.shape[:2]
    sw, sh = max(1, math.ceil(w / factor)), max(1, math.ceil(h / factor))
    f = "avif" if fmt == "auto" else fmt
    payload = encode_raster(resize(pixels, sw, sh), f, quality)
    entry = entry_for(payload, index=0, kind="base", label="background", quality=quality,
                      meta={"format": f, "size": [sw, sh], "scale": factor})
    prediction = resize(decode_raster(payload, f, (sw, sh), "base layer"), w, h)
    return entry, payload, prediction


def _object_layer(pixels, prediction, own, rect, index, req: ObjectRequest, quality: int, scale: float, fmt: str):
    x0, y0, x1, y1 = rect
    ys, xs = np.nonzero(own)
    cx0, cy0, cx1, cy1 = x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1
    crop_own = own[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    raster = pixels[cy0:cy1, cx0:cx1].copy()
    raster[~crop_own] = prediction[cy0:cy1, cx0:cx1][~crop_own]
    cw, ch = cx1 - cx0, cy1 - cy0
    sw, sh = max(1, round(cw / scale)), max(1, round(ch / scale))
    f = choose_format(fmt, sw, sh)
    payload = encode_raster(resize(raster, sw, sh), f, quality)
    entry = entry_for(
        payload, index=index, kind="object", label=req.label, box=req.box, importance=req.importance,
        quality=quality,
        meta={"format": f, "rect": list(rect), "crop": [cx0, cy0, cx1, cy1], "size": [sw, sh],
              "scale": scale, "object_index": req.object_index},
    )
    return entry, payload


def encode(
    pixels: np.ndarray,
    requests: list[ObjectRequest],
    params: ClassicalParams,
    *,
    policy_id: int | None = None,
    policy_hash: str | None = None,
    task: str | None = None,
    encoding_uid: str | None = None,
) -> EncodeResult:
    """Encode an RGB image into a layered bitstream; objects in ``requests`` order."""
    t0 = time.perf_counter()
    h, w = pixels.shape[:2]
    fields = header_fields(CODEC_ID, CODEC_VERSION, w, h, params.model_dump(mode="json", exclude={"quality_offset"}),
                           encoding_uid=encoding_uid, policy_id=policy_id, policy_hash=policy_hash, task=task)
    writer = Writer(fields, params.budget_bytes)

    base_info = None
    prediction = np.full_like(pixels, GREY)
    if params.full:
        requests = []
    if params.background == "coarse" or params.full:
        factor, bq = (1, params.quality) if params.full else base_plan(params.quality)
        tries = [(factor, bq), (factor, max(1, bq - 20)), (factor * 2, max(1, bq - 20)), (factor * 4, 1)]
        for factor, bq in tries:
            entry, payload, pred = _base_layer(pixels, factor, bq, params.format)
            if writer.fits(entry, payload):
                break
        else:
            raise BudgetError(
                f"--budget-bytes {params.budget_bytes:,} is too small: the coarse base layer alone needs "
                f"{writer.size_with(entry, payload):,} bytes at 1/{factor} scale and quality 1"
            )
        writer.add(entry, payload)
        prediction = pred
        base_info = {"quality": bq, "bytes": len(payload), "scale": factor}

    taken = np.zeros((h, w), dtype=bool)
    owner = np.full((h, w), -1, dtype=np.int32)
    outcomes: list[ObjectOutcome] = []
    for req in requests:
        rect = expand(req.box, w, h)
        x0, y0, x1, y1 = rect
        own = ~taken[y0:y1, x0:x1]
        if not own.any():
            outcomes.append(covered(req, owner[y0:y1, x0:x1], writer))
            continue
        quality = clamp_quality(params.quality + params.quality_offset.get(req.tier, 0))
        scale = object_scale(rect, quality)
        index = len(writer.entries)

        def build(q, downgraded, rect=rect, own=own, req=req, scale=scale, index=index):
            s = min(4.0, round(scale * 1.6, 3)) if downgraded else scale
            entry, payload = _object_layer(pixels, prediction, own, rect, index, req, q, s, params.format)
            return entry, payload, {"scale": s}

        outcome = place(writer, req, quality, build)
        outcomes.append(outcome)
        if outcome.action != "drop":
            taken[y0:y1, x0:x1] = True
            owner[y0:y1, x0:x1][own] = index

    header = writer.header(writer.entries)
    data = pack(header, writer.payloads)
    return EncodeResult(data, header, outcomes, base_info, round(time.perf_counter() - t0, 4))


@dataclass
class DecodeResult:
    pixels: np.ndarray  # H x W x 3 uint8
    mask: np.ndarray  # H x W bool: True where an object layer's own pixels were transmitted
    layers: list[LayerEntry]  # the layers used, base included
    base: np.ndarray  # the upsampled base alone (grey without one): what reconstruction starts from


def _check_rect(r, w, h, what) -> tuple[int, int, int, int]:
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


def decode(bs: Bitstream, max_objects: int | None = None) -> DecodeResult:
    """Decode the base and the first ``max_objects`` object layers present (all when None)."""
    hd = bs.header
    if hd.codec != CODEC_ID:
        raise BitstreamError(f"bitstream was written by codec {hd.codec!r}, not {CODEC_ID!r}")
    if hd.codec_version != CODEC_VERSION:
        raise BitstreamError(f"bitstream codec version {hd.codec_version!r} is not supported (this build: {CODEC_VERSION})")
    w, h = hd.width, hd.height
    canvas = np.full((h, w, 3), GREY, dtype=np.uint8)
    base = canvas.copy()
    mask = np.zeros((h, w), dtype=bool)
    taken = np.zeros((h, w), dtype=bool)
    used: list[LayerEntry] = []
    n_obj = 0
    for entry, payload in zip(bs.layers, bs.payloads):
        what = f"layer {entry.index} ({entry.kind})"
        fmt = entry.meta.get("format")
        if entry.kind == "base":
            factor = entry.meta.get("scale")
            if entry.index != 0 or not isinstance(factor, int) or factor < 1:
                raise BitstreamError(f"{what}: malformed base layer entry")
            sw, sh = _size(entry.meta, what, w, h)
            canvas = resize(decode_raster(payload, fmt, (sw, sh), what), w, h).copy()
            base = canvas.copy()
            used.append(entry)
            continue
        if max_objects is not None and n_obj >= max_objects:
            break
        x0, y0, x1, y1 = _check_rect(entry.meta.get("rect"), w, h, what)
        cx0, cy0, cx1, cy1 = _check_rect(entry.meta.get("crop"), w, h, what)
        if not (x0 <= cx0 and y0 <= cy0 and cx1 <= x1 and cy1 <= y1):
            raise BitstreamError(f"{what}: crop lies outside its rectangle")
        sw, sh = _size(entry.meta, what, cx1 - cx0, cy1 - cy0)
        raster = resize(decode_raster(payload, fmt, (sw, sh), what), cx1 - cx0, cy1 - cy0)
        own = np.zeros((h, w), dtype=bool)
        own[y0:y1, x0:x1] = ~taken[y0:y1, x0:x1]
        taken[y0:y1, x0:x1] = True
        sub = own[cy0:cy1, cx0:cx1]
        canvas[cy0:cy1, cx0:cx1][sub] = raster[sub]
        mask |= own
        used.append(entry)
        n_obj += 1
    return DecodeResult(canvas, mask, used, base)
