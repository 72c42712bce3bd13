"""``classical``: a layered codec of raw AV1 key frames, one pixel coded once, objects predicted from the base.

Layers, in the order they are written::

    0  base     whole image at 1/f scale (f = 4; 2 at quality 85+ or when  -> upsampled: the prediction P
                the object layers cover half the image)
    1  object   rect_1 = grid(box_1 + margin); owns rect_1               -> P + residual_1 where it owns
    2  object   rect_2 = grid(box_2 + margin); owns rect_2 minus rect_1  -> ...
    k  object   owns rect_k minus the union of rect_1..rect_{k-1}

The geometry is derived, not stored: the layer table holds each object's box on the 8-pixel coding grid
and its scale; the rect (box plus margin, outward to the grid), the pixels it owns, the bounding box of
those (the crop) and the coded raster's size follow from them, identically at both ends
(``object_geometry``). Any prefix of the layers decodes.

Prediction (``pred = 1``, the default): an object layer codes the residual ``x - P`` over its crop,
offset by 128 (pixels it does not own: 0), so it spends bits only on what the base lacks. ``pred = 0``
codes the pixels themselves, with P where it does not own (the v1 design). docs/benchmarks.md has the
measurement that chose the default.

Quality follows importance: layer quality = Q + the policy's offset for the object's tier. Detail
follows size: a crop longer than ``target = 32 + 1.6 * quality`` pixels is coded at ``long side /
target`` scale (at most 4, in 1/16 steps). Rasters are AV1 (SVT-AV1 encodes, dav1d decodes) with no
container, and bare: a sequence header that the decoder rebuilds from the raster's size is left out
(``av1_obu``; codec version 3, while version 2 streams carry theirs). ``format`` = ``avif`` or ``webp``
uses Pillow's instead (container included).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from taskcodec.codec import classical_v1
from taskcodec.codec.bitstream import Bitstream, LayerEntry, entry_for, pack
from taskcodec.codec.format_v2 import GRID, box_of_grid, grid_box
from taskcodec.codec.layering import (EncodeResult, Writer, check_codec, clamp_quality, covered, expand, header_fields,
                                      place)
from taskcodec.codec.raster import decode_raster, encode_raster, resize
from taskcodec.codec.api import StreamRef, GREY, DecodeResult, LayeredParams, ObjectOutcome, ObjectRequest
from taskcodec.errors import BitstreamError, BudgetError

CODEC_ID = "classical"
CODEC_VERSION = "3"  # 3: bare AV1 payloads (no sequence header a decoder can rebuild), Lanczos-4 enlarging
READS = ("1", "2", "3")  # 2: AV1 payloads with their sequence headers, bicubic enlarging
MAX_SCALE16 = 64


class ClassicalParams(LayeredParams):
    """Settings of the ``classical`` codec (``Params`` is the name every codec shares)."""

    format: Literal["auto", "av1", "avif", "webp"] = "auto"
    full: bool = Field(default=False, description="Whole-image mode: the base at full resolution, no objects.")
    predict: bool = Field(default=True, description="Object layers code the residual over the upsampled base.")


Params = ClassicalParams


def raster_format(fmt: str) -> str:
    return "av1" if fmt == "auto" else fmt


# Tuned on training photos (benchmarks/tune_classical.py, docs/benchmarks.md "Tuning"), not on coco-val158:
FINE_BASE_COVERAGE = 0.5  # objects covering at least this share of the image get a 1/2-scale base
OBJECT_TARGET = (32, 1.6)  # an object's crop longer than a + b * quality pixels is coded downscaled
SHRINK = "area"  # the encoder's downscaling filter (raster.resize); decoders only enlarge


def enlarge_filter(version: str) -> str:
    """How a stream of this codec version enlarges the base and the object rasters: Lanczos-4 from
    version 3 (0.7 and 1.1 BD-rate points better than bicubic on the training photos' two tasks)."""
    return "cubic" if version in ("1", "2") else "lanczos"


def base_plan(quality: int, coverage: float = 0.0) -> tuple[int, int]:
    """(downscale factor, quality) of the base layer for a requested quality: 1/4 scale below 85 (1/8 lost
    more of the detector's context than it saved), 1/2 above, and 1/2 when the object layers' rectangles
    cover at least ``FINE_BASE_COVERAGE`` of the image; at the requested quality (10 points under it
    cost more bytes for the same mAP on the training photos)."""
    fine = quality >= 85 or coverage >= FINE_BASE_COVERAGE
    return (2 if fine else 4), quality


def coverage(requests: list[ObjectRequest], width: int, height: int) -> float:
    """The share of the image that the requested objects' layer rectangles cover (their union)."""
    union = np.zeros((height, width), dtype=bool)
    for req in requests:
        x0, y0, x1, y1 = object_rect(grid_box(req.box, width, height), width, height)
        union[y0:y1, x0:x1] = True
    return float(union.mean()) if requests else 0.0


def object_target(quality: int) -> float:
    """The long side, in pixels, past which an object's crop is coded downscaled (``OBJECT_TARGET``)."""
    return OBJECT_TARGET[0] + OBJECT_TARGET[1] * quality


def object_scale16(rect: tuple[int, int, int, int], quality: int) -> int:
    """The downscale of an object's raster, in 1/16 steps (16 = full resolution, 64 = 1/4): its long side
    over ``object_target(quality)``, clamped to [1, 4]."""
    long_side = max(rect[2] - rect[0], rect[3] - rect[1])
    return int(round(16 * min(4.0, max(1.0, long_side / object_target(quality)))))


def object_rect(grid, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixels an object layer may own: its grid box plus a margin, rounded outward onto the grid."""
    rect = box_of_grid(grid_box(expand(box_of_grid(grid, width, height), width, height), width, height),
                       width, height)
    return tuple(int(v) for v in rect)


@dataclass(frozen=True)
class Geometry:
    rect: tuple[int, int, int, int]
    own: np.ndarray  # bool, over rect: pixels no earlier layer owns
    crop: tuple[int, int, int, int]  # bounding box of ``own``, image pixels
    size: tuple[int, int]  # the coded raster's width and height


def object_geometry(grid, scale16: int, taken: np.ndarray) -> Geometry | None:
    """Everything an object layer codes, from its table row and the pixels earlier layers own (``taken``);
    None when it would own nothing."""
    h, w = taken.shape
    x0, y0, x1, y1 = rect = object_rect(grid, w, h)
    own = ~taken[y0:y1, x0:x1]
    if not own.any():
        return None
    ys, xs = np.nonzero(own)
    crop = (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1)
    cw, ch = crop[2] - crop[0], crop[3] - crop[1]
    size = (max(1, (cw * 16 + scale16 // 2) // scale16), max(1, (ch * 16 + scale16 // 2) // scale16))
    return Geometry(rect, own, crop, size)


def _base_layer(pixels: np.ndarray, factor: int, quality: int, fmt: str) -> tuple[LayerEntry, bytes, np.ndarray]:
    h, w = pixels.shape[:2]
    sw, sh = max(1, math.ceil(w / factor)), max(1, math.ceil(h / factor))
    payload = encode_raster(resize(pixels, sw, sh, shrink=SHRINK), fmt, quality, bare=True)
    entry = entry_for(payload, index=0, kind="base", label="background", quality=quality, meta={"scale": factor})
    prediction = resize(decode_raster(payload, fmt, (sw, sh), "base layer", bare=True), w, h,
                        enlarge_filter(CODEC_VERSION))
    return entry, payload, prediction


def _object_raster(pixels, prediction, g: Geometry, predict: bool) -> np.ndarray:
    cx0, cy0, cx1, cy1 = g.crop
    x0, y0 = g.rect[:2]
    own = g.own[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    pred = prediction[cy0:cy1, cx0:cx1] if prediction is not None else np.full((cy1 - cy0, cx1 - cx0, 3), GREY, np.uint8)
    if not predict:
        raster = pixels[cy0:cy1, cx0:cx1].copy()
        raster[~own] = pred[~own]
        return resize(raster, *g.size, shrink=SHRINK)
    residual = pixels[cy0:cy1, cx0:cx1].astype(np.float32) - pred.astype(np.float32)
    residual[~own] = 0
    small = resize(residual, *g.size, shrink=SHRINK)
    return np.clip(np.rint(small + GREY), 0, 255).astype(np.uint8)


def encode(
    pixels: np.ndarray,
    requests: list[ObjectRequest],
    params: ClassicalParams,
    ref: StreamRef | None = None,
) -> EncodeResult:
    """Encode an RGB image into a layered bitstream; objects in ``requests`` order."""
    t0 = time.perf_counter()
    h, w = pixels.shape[:2]
    fmt = raster_format(params.format)
    settings = params.model_dump(mode="json", exclude={"quality_offset"})
    settings["predict"] = params.predict and params.background == "coarse" and not params.full
    fields = header_fields(CODEC_ID, CODEC_VERSION, w, h, settings, ref)
    writer = Writer(fields, params.budget_bytes)

    base_info = None
    prediction = None  # without a base, objects are coded as pixels (nothing to predict from)
    if params.full:
        requests = []
    if params.background == "coarse" or params.full:
        factor, bq = (1, params.quality) if params.full else base_plan(params.quality, coverage(requests, w, h))
        tries = [(factor, bq), (factor, max(1, bq - 20)), (factor * 2, max(1, bq - 20)), (factor * 4, 1)]
        for factor, bq in tries:
            entry, payload, pred = _base_layer(pixels, factor, bq, fmt)
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
    predict = params.predict and prediction is not None

    taken = np.zeros((h, w), dtype=bool)
    owner = np.full((h, w), -1, dtype=np.int32)
    outcomes: list[ObjectOutcome] = []
    for req in requests:
        grid = grid_box(req.box, w, h)
        quality = clamp_quality(params.quality + params.quality_offset.get(req.tier, 0))
        scale16 = object_scale16(object_rect(grid, w, h), quality)
        g = object_geometry(grid, scale16, taken)
        if g is None:
            x0, y0, x1, y1 = object_rect(grid, w, h)
            outcomes.append(covered(req, owner[y0:y1, x0:x1], writer))
            continue
        index = len(writer.entries)

        def build(q, downgraded, grid=grid, req=req, scale16=scale16, index=index):
            s16 = min(MAX_SCALE16, round(scale16 * 1.6)) if downgraded else scale16
            geo = object_geometry(grid, s16, taken)
            payload = encode_raster(_object_raster(pixels, prediction, geo, predict), fmt, q, bare=True)
            entry = entry_for(payload, index=index, kind="object", label=req.label, box=req.box,
                              importance=req.importance, quality=q,
                              meta={"grid": list(grid), "scale16": s16})
            return entry, payload, {"scale": s16 / 16}

        outcome = place(writer, req, quality, build)
        outcomes.append(outcome)
        if outcome.action != "drop":
            x0, y0, x1, y1 = g.rect
            owner[y0:y1, x0:x1][g.own] = index
            taken[y0:y1, x0:x1] = True

    header = writer.header(writer.entries)
    data = pack(header, writer.payloads)
    return EncodeResult(data, header, outcomes, base_info, round(time.perf_counter() - t0, 4))


def _int(meta, key, lo, hi, what) -> int:
    v = meta.get(key)
    if type(v) is not int or not lo <= v <= hi:
        raise BitstreamError(f"{what}: {key} {v!r} is outside {lo}..{hi}")
    return v


def _grid(meta, w: int, h: int, what: str) -> list[int]:
    g = meta.get("grid")
    if not (isinstance(g, list) and len(g) == 4 and all(type(v) is int for v in g)
            and 0 <= g[0] < g[2] <= -(-w // GRID) and 0 <= g[1] < g[3] <= -(-h // GRID)):
        raise BitstreamError(f"{what}: grid box {g!r} lies outside the {w}x{h} image")
    return g


def _layers_v2(bs: Bitstream, max_objects: int | None):
    """Yield (entry, raster over its region, rect, crop, residual?) for the v2 layers to use."""
    hd = bs.header
    w, h = hd.width, hd.height
    fmt = raster_format(hd.settings.get("format", "auto"))
    taken = np.zeros((h, w), dtype=bool)
    predict = bool(hd.settings.get("predict"))
    bare = hd.codec_version != "2"
    up = enlarge_filter(hd.codec_version)
    n_obj = 0
    for entry, payload in zip(bs.layers, bs.payloads):
        what = f"layer {entry.index} ({entry.kind})"
        if entry.kind == "base":
            factor = _int(entry.meta, "scale", 1, 64, what)
            if entry.index != 0:
                raise BitstreamError(f"{what}: a base layer must come first")
            sw, sh = max(1, math.ceil(w / factor)), max(1, math.ceil(h / factor))
            yield entry, resize(decode_raster(payload, fmt, (sw, sh), what, bare), w, h, up), None, None, None
            continue
        if entry.kind != "object":
            raise BitstreamError(f"{what}: classical streams have no {entry.kind} layers")
        if max_objects is not None and n_obj >= max_objects:
            break
        g = object_geometry(_grid(entry.meta, w, h, what), _int(entry.meta, "scale16", 16, MAX_SCALE16, what), taken)
        if g is None:
            raise BitstreamError(f"{what}: owns no pixel (every pixel of its rect was sent before)")
        cx0, cy0, cx1, cy1 = g.crop
        raster = decode_raster(payload, fmt, g.size, what, bare)
        if predict:
            raster = resize(raster.astype(np.float32) - GREY, cx1 - cx0, cy1 - cy0, up)
        else:
            raster = resize(raster, cx1 - cx0, cy1 - cy0, up)
        x0, y0, x1, y1 = g.rect
        taken[y0:y1, x0:x1] = True
        n_obj += 1
        yield entry, raster, g.rect, g.crop, predict


def decode(bs: Bitstream, max_objects: int | None = None) -> DecodeResult:
    """Decode the base and the first ``max_objects`` object layers present (all when None)."""
    hd = bs.header
    check_codec(hd, CODEC_ID, READS)
    w, h = hd.width, hd.height
    canvas = np.full((h, w, 3), GREY, dtype=np.uint8)
    base = canvas.copy()
    mask = np.zeros((h, w), dtype=bool)
    taken = np.zeros((h, w), dtype=bool)
    used: list[LayerEntry] = []
    if hd.codec_version == "1":
        rows = ((e, r, rect, crop, 0) for e, r, rect, crop in classical_v1.layers(bs, max_objects))
    else:
        rows = _layers_v2(bs, max_objects)
    for entry, raster, rect, crop, pred in rows:
        used.append(entry)
        if rect is None:
            canvas = raster.copy()
            base = raster.copy()
            continue
        x0, y0, x1, y1 = rect
        cx0, cy0, cx1, cy1 = crop
        own = np.zeros((h, w), dtype=bool)
        own[y0:y1, x0:x1] = ~taken[y0:y1, x0:x1]
        taken[y0:y1, x0:x1] = True
        sub = own[cy0:cy1, cx0:cx1]
        if pred:
            raster = np.clip(np.rint(base[cy0:cy1, cx0:cx1].astype(np.float32) + raster), 0, 255).astype(np.uint8)
        canvas[cy0:cy1, cx0:cx1][sub] = raster[sub]
        mask |= own
    return DecodeResult(canvas, mask, used, base)
