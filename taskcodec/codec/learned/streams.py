"""``learned``: region-layered latent streams of one learned latent (see ``model.py``).

Layers, in the order they are written::

    0  base        ẑ (entropy bottleneck): gives every latent element its mean μ and scale σ;
                   decoded alone, x̂ = g_s(μ) is a coarse picture of the whole image
    1  object      latent rect_1 (box + margin, on the 1/16 latent grid): its elements of ŷ
    2  object      latent rect_2 minus rect_1 ...
    k  background  (whole-image mode, or ``background_quality``) every position not yet sent

Each object layer codes r̂ = Q((y − μ)·g_k) of the latent positions it owns, all M
channels, with the Gaussian N(0, σ·g_k) of those elements, at the rate level k its
importance calls for. Ownership comes from the rects in the layer table alone, so the
decoder rebuilds it, and any prefix or subset of layers decodes: elements not sent are μ.

Padding: the image is padded (edge replicate) to a multiple of 64 px, the stride of ẑ.
Tiles: g_a and g_s run on tiles of ``config.current().tile`` px with a 64-px halo, so
memory grows with the tile, not the image; the hyper transforms are small and run whole,
on one thread so that μ and σ (hence the coder's tables) are identical on any machine
setting of the encoder and the decoder.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from taskcodec.codec.bitstream import Bitstream, entry_for, pack
from taskcodec.codec.layering import (EncodeResult, Writer, check_codec, clamp_quality, covered, expand, header_fields,
                                      place)
from taskcodec.codec.learned.model import LEVEL_MIN
from taskcodec.codec.learned.weights import LoadedModel, load_model
from taskcodec.codec.api import GREY, DecodeResult, LayeredParams, ObjectOutcome, ObjectRequest, StreamRef
from taskcodec.errors import BitstreamError, BudgetError

CODEC_ID = "learned"
CODEC_VERSION = "1"
STRIDE, PAD = 16, 64


class LearnedParams(LayeredParams):
    """Settings of the ``learned`` codec (``Params`` is the name every codec shares); its quality maps to
    a rate level."""

    background_quality: int | None = Field(default=None, ge=1, le=100,
                                           description="Also send every other latent position at this quality.")
    full: bool = Field(default=False, description="Whole-image mode: every latent position, no objects.")


Params = LearnedParams


def level_for(quality: int, levels: int) -> float:
    """Quality 1..100 onto the model's rate levels LEVEL_MIN..levels-1 (fractional levels interpolate gains)."""
    return round(LEVEL_MIN + (clamp_quality(quality) - 1) / 99 * (levels - 1 - LEVEL_MIN), 4)


# ---- transforms -----------------------------------------------------------------------------

def _to_tensor(pixels: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1)[None].float().div_(255)
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % PAD, 0, -h % PAD), mode="replicate")


def tiled(fn, x: torch.Tensor, tile: int, scale: float, halo: int) -> torch.Tensor:
    """Apply a convolutional ``fn`` (output = input size × scale) tile by tile with a halo.

    ``tile`` and ``halo`` are in input units and multiples of the stride; each tile's
    output keeps only its centre, so memory is bounded by the tile, not the image.
    """
    h, w = x.shape[-2:]
    if h <= tile and w <= tile:
        return fn(x)
    out = None
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
            a0, b0, a1, b1 = max(0, y0 - halo), max(0, x0 - halo), min(h, y1 + halo), min(w, x1 + halo)
            part = fn(x[..., a0:a1, b0:b1])
            if out is None:
                out = part.new_empty(*part.shape[:2], round(h * scale), round(w * scale))
            s = lambda v: round(v * scale)  # noqa: E731
            out[..., s(y0):s(y1), s(x0):s(x1)] = part[..., s(y0 - a0):s(y1 - a0), s(x0 - b0):s(x1 - b0)]
    return out


def _tile_setting() -> int:
    from taskcodec.codec.learned.config import current

    return max(PAD, current().tile // PAD * PAD)


# ---- region streams -------------------------------------------------------------------------

def latent_rect(rect: tuple[int, int, int, int], lh: int, lw: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = rect
    return (max(0, x0 // STRIDE), max(0, y0 // STRIDE), min(lw, math.ceil(x1 / STRIDE)), min(lh, math.ceil(y1 / STRIDE)))


# ---- encode ---------------------------------------------------------------------------------

@torch.inference_mode()
def encode(
    pixels: np.ndarray,
    requests: list[ObjectRequest],
    params: LearnedParams,
    ref: StreamRef | None = None,
    *,
    model: LoadedModel | None = None,
) -> EncodeResult:
    """Encode an RGB image into ẑ plus one latent stream per object, in ``requests`` order."""
    t0 = time.perf_counter()
    lm = model or load_model()
    net = lm.model
    h, w = pixels.shape[:2]
    x = _to_tensor(pixels)
    y = tiled(net.g_a, x.contiguous(memory_format=torch.channels_last), _tile_setting(), 1 / STRIDE, PAD).contiguous()
    z_payload, z_shape, scales, means = net.compress_side(y)
    lh, lw = y.shape[-2:]
    settings = {**params.model_dump(mode="json", exclude={"quality_offset"}), "model": lm.model_id}
    fields = header_fields(CODEC_ID, CODEC_VERSION, w, h, settings, ref)
    writer = Writer(fields, params.budget_bytes)
    base_entry = entry_for(z_payload, index=0, kind="base", label="background", quality=None,
                           meta={"latent": [lh, lw], "hyper": list(z_shape), "scale": PAD})
    if not writer.fits(base_entry, z_payload):
        raise BudgetError(f"--budget-bytes {params.budget_bytes:,} is too small: the side stream ẑ alone needs "
                          f"{writer.size_with(base_entry, z_payload):,} bytes")
    writer.add(base_entry, z_payload)
    base_info = {"quality": None, "bytes": len(z_payload), "scale": PAD}

    taken = np.zeros((lh, lw), dtype=bool)
    owner = np.full((lh, lw), -1, dtype=np.int32)
    outcomes: list[ObjectOutcome] = []

    def layer(kind, label, rect, own, quality, req=None):
        level = level_for(quality, net.levels)
        payload = net.compress_region(y, scales, means, own, level)
        extra = dict(box=req.box, importance=req.importance) if req else {}
        entry = entry_for(payload, index=len(writer.entries), kind=kind, label=label, quality=quality,
                          meta={"rect": list(rect), "level": level,
                                **({"object_index": req.object_index} if req else {})}, **extra)
        return entry, payload

    for req in [] if params.full else requests:
        rect = latent_rect(expand(req.box, w, h), lh, lw)
        x0, y0, x1, y1 = rect
        own = np.zeros((lh, lw), dtype=bool)
        own[y0:y1, x0:x1] = ~taken[y0:y1, x0:x1]
        if not own.any():
            outcomes.append(covered(req, owner[y0:y1, x0:x1], writer))
            continue

        def build(q, _downgraded, rect=rect, own=own, req=req):
            entry, payload = layer("object", req.label, rect, own, q, req)
            return entry, payload, {"level": entry.meta["level"], "latent_positions": int(own.sum())}

        outcome = place(writer, req, clamp_quality(params.quality + params.quality_offset.get(req.tier, 0)), build)
        outcomes.append(outcome)
        if outcome.action != "drop":
            owner[own] = outcome.layer_index
            taken |= own

    rest_quality = params.quality if params.full else params.background_quality
    if rest_quality is not None and not taken.all():
        entry, payload = layer("background", "background", (0, 0, lw, lh), ~taken, rest_quality)
        if params.full and not writer.fits(entry, payload):
            raise BudgetError(f"--budget-bytes {params.budget_bytes:,} is too small for the whole image at "
                              f"quality {rest_quality}: it needs {writer.size_with(entry, payload):,} bytes")
        if writer.fits(entry, payload):
            writer.add(entry, payload)
            if params.full:
                base_info = {"quality": rest_quality, "bytes": len(z_payload) + len(payload), "scale": 1}
    header = writer.header(writer.entries)
    return EncodeResult(pack(header, writer.payloads), header, outcomes, base_info, round(time.perf_counter() - t0, 4))


# ---- decode ---------------------------------------------------------------------------------

def _grid(meta, key, what) -> tuple[int, int]:
    v = meta.get(key)
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(i, int) and i >= 1 for i in v)):
        raise BitstreamError(f"{what}: malformed {key} size {v!r}")
    return v[0], v[1]


def check_model(bs: Bitstream, lm: LoadedModel) -> None:
    made_by = bs.header.settings.get("model")
    if made_by != lm.model_id:
        raise BitstreamError(f"bitstream was made by learned-codec weights {made_by!r}; this decoder has "
                             f"{lm.model_id!r} ({lm.path}); set TASKCODEC_LEARNED_WEIGHTS to the weights that made it")


@torch.inference_mode()
def decode(bs: Bitstream, max_objects: int | None = None, model: LoadedModel | None = None,
           keep_latent: bool = False) -> DecodeResult:
    """Decode ẑ, then the first ``max_objects`` object layers (all when None) and any background layer."""
    hd = bs.header
    check_codec(hd, CODEC_ID, (CODEC_VERSION,))
    lm = model or load_model()
    check_model(bs, lm)
    net = lm.model
    w, h = hd.width, hd.height
    if not bs.layers or bs.layers[0].kind != "base":
        raise BitstreamError("layer 0 (base: the side stream ẑ) is missing; nothing of a learned stream decodes without it")
    base_entry = bs.layers[0]
    lh, lw = _grid(base_entry.meta, "latent", "layer 0 (base)")
    zh, zw = _grid(base_entry.meta, "hyper", "layer 0 (base)")
    ph, pw = h + (-h % PAD), w + (-w % PAD)
    if (lh, lw) != (ph // STRIDE, pw // STRIDE) or (zh, zw) != (ph // PAD, pw // PAD):
        raise BitstreamError(f"layer 0 (base): latent grids {lh}x{lw} / {zh}x{zw} do not fit a {w}x{h} image")
    try:
        scales, means = net.decompress_side(bs.payloads[0], (zh, zw))
    except Exception as exc:
        raise BitstreamError(f"layer 0 (base): side stream does not decode ({exc})") from None
    y_hat = means.clone()
    taken = np.zeros((lh, lw), dtype=bool)
    sent = np.zeros((lh, lw), dtype=bool)
    used, n_obj = [base_entry], 0
    for entry, payload in zip(bs.layers[1:], bs.payloads[1:]):
        what = f"layer {entry.index} ({entry.kind})"
        if entry.kind == "object":
            if max_objects is not None and n_obj >= max_objects:
                continue
            n_obj += 1
        rect = entry.meta.get("rect")
        level = entry.meta.get("level")
        if not (isinstance(rect, list) and len(rect) == 4 and all(isinstance(v, int) for v in rect)
                and 0 <= rect[0] < rect[2] <= lw and 0 <= rect[1] < rect[3] <= lh):
            raise BitstreamError(f"{what}: latent rectangle {rect!r} lies outside the {lw}x{lh} latent grid")
        if not isinstance(level, (int, float)) or not LEVEL_MIN <= level <= net.levels - 1:
            raise BitstreamError(f"{what}: rate level {level!r} is outside this model's {LEVEL_MIN}..{net.levels - 1}")
        x0, y0, x1, y1 = rect
        own = np.zeros((lh, lw), dtype=bool)
        own[y0:y1, x0:x1] = ~taken[y0:y1, x0:x1]
        taken[y0:y1, x0:x1] = True
        if not own.any():
            raise BitstreamError(f"{what}: owns no latent position")
        try:
            values = net.decompress_region(payload, scales, means, own, float(level))
        except Exception as exc:  # the rANS decoder raises on damaged data
            raise BitstreamError(f"{what}: latent stream does not decode ({exc})") from None
        ys, xs = np.nonzero(own)
        y_hat[0][:, ys, xs] = values
        sent |= own
        used.append(entry)
    pixels = _pixels(net, y_hat, h, w)
    mask = np.kron(sent, np.ones((STRIDE, STRIDE), dtype=bool))[:h, :w]
    if hd.settings.get("background") == "none" and not hd.settings.get("full"):
        pixels[~mask] = GREY
    def base() -> np.ndarray:  # g_s(μ), the picture ẑ alone gives: only reconstruction needs it
        with torch.inference_mode():
            return _pixels(net, means, *pixels.shape[:2])

    return DecodeResult(pixels, mask, used, base, y_hat if keep_latent else None)


def _pixels(net, y_hat: torch.Tensor, h: int, w: int) -> np.ndarray:
    x_hat = tiled(net.g_s, y_hat.contiguous(memory_format=torch.channels_last), _tile_setting() // STRIDE, STRIDE,
                  PAD // STRIDE).contiguous()
    out = x_hat[0, :, :h, :w].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0)
    return np.ascontiguousarray(out.numpy())
