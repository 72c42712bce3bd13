"""Decode routes: what a decoded bitstream is turned into, and the record of it.

    human    a full-size image (format by extension) + ``<out>.mask.png`` (white = transmitted pixels, black =
             reconstructed) + ``<out>.json`` metadata; reconstruction ``classical``
             (default), ``diffusion`` (default when TASKCODEC_DIFFUSION_MODEL is set) or
             ``none`` (the raw composite)
    machine  ``machine`` (the decoded objects), ``machine:detect``, ``machine:classify``:
             a JSON (``--out`` ends in .json) and the decoded image as ``<out>.png``

Outputs are never replaced unless asked (``overwrite``). Every output is recorded in the ``decodes`` table, so ``taskcodec why`` lists it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from taskcodec.codec.bitstream import Bitstream
from taskcodec.errors import OutputExistsError, OutputFormatError, TaskcodecError
from taskcodec.imageio import atomic_write_bytes, image_bytes, image_format, png_bytes
from taskcodec.settings import Settings, get_settings
from taskcodec.store import models as m
from taskcodec.store import repo
from taskcodec.store.db import session

RECONSTRUCT = ("classical", "diffusion", "none")


def decoded_objects(decoded) -> list[dict]:
    return [{"label": e.label, "box": list(e.box) if e.box else None, "layer": e.index,
             "importance": e.importance, "quality": e.quality}
            for e in decoded.layers if e.kind == "object"]


def _common(bs: Bitstream, decoded) -> dict[str, Any]:
    return {"encoding_uid": bs.header.encoding_uid, "task": bs.header.task, "policy_id": bs.header.policy_id,
            "codec": f"{bs.header.codec} v{bs.header.codec_version}", "width": bs.header.width,
            "height": bs.header.height, "layers_used": [e.index for e in decoded.layers],
            "layers_in_file": len(bs.header.layers), "problems": list(bs.problems)}


def _record(bs: Bitstream, data_sha: str, route: str, out: Path, mask: Path | None, meta: dict,
            settings: Settings | None) -> None:
    with session(settings) as s:
        repo.record_decode(s, m.Decode(encoding_uid=bs.header.encoding_uid, bitstream_sha256=data_sha, route=route,
                                       output_path=str(out.resolve()), mask_path=str(mask.resolve()) if mask else None,
                                       meta=meta))


@lru_cache(maxsize=2)
def _diffusion(model: str | None, controlnet: str | None):
    from taskcodec.consumers.reconstruct.diffusion import DiffusionReconstructor

    return DiffusionReconstructor(model, controlnet)


def default_reconstruct(settings: Settings | None = None) -> str:
    return "diffusion" if (settings or get_settings()).diffusion_model else "classical"


def check_output(route: str, out_path: str | Path) -> None:
    """Refuse an output path the route cannot write (an ``OutputFormatError``), before any work."""
    out = Path(out_path)
    if route == "human":
        image_format(out)
    elif out.suffix.lower() != ".json":
        raise OutputFormatError(out, "the machine route writes JSON: give an --out path ending in .json")


def _outputs_free(paths: list[Path], overwrite: bool) -> None:
    """Before any work: refuse if an output exists and may not be replaced (nothing is written then)."""
    for p in paths:
        if not overwrite and p.exists():
            raise OutputExistsError(p)


def human(bs: Bitstream, decoded, out_path: str | Path, data_sha: str, reconstruct: str | None = None,
          model: str | None = None, controlnet: str | None = None, steps: int = 50, seed: int = 0,
          strength: float = 1.0, tile: int = 512, settings: Settings | None = None,
          overwrite: bool = False) -> tuple[Path, Path, Path]:
    """Write the human-route image (format by extension: .png, .webp, .jpg, .npy), its mask PNG and its
    metadata; returns their paths."""
    s = settings or get_settings()
    how = reconstruct or default_reconstruct(s)
    if how not in RECONSTRUCT:
        raise TaskcodecError(f"--reconstruct must be one of {', '.join(RECONSTRUCT)}, not {how!r}")
    out = Path(out_path)
    mask_path, meta_path = out.with_name(out.name + ".mask.png"), out.with_name(out.name + ".json")
    check_output("human", out)
    _outputs_free([out, mask_path, meta_path], overwrite)
    meta: dict[str, Any] = {"route": "human", "reconstruct": how, **_common(bs, decoded),
                            "transmitted_fraction": round(float(decoded.mask.mean()), 5)}
    if how == "none":
        pixels = decoded.pixels
    elif how == "classical":
        from taskcodec.consumers.reconstruct.classical import reconstruct as classical

        pixels = classical(decoded.pixels, decoded.base, decoded.mask)
    else:
        from taskcodec.consumers.reconstruct.diffusion import build_prompt

        model, controlnet = model or s.diffusion_model, controlnet or s.controlnet_model
        recon = _diffusion(model, controlnet)
        prompt = build_prompt([e.label for e in decoded.layers if e.kind == "object"], bs.header.task)
        pixels = recon(decoded.pixels, decoded.mask, prompt, steps=steps, seed=seed, strength=strength, tile=tile)
        meta.update(model=recon.model, controlnet=recon.controlnet, steps=steps, seed=seed, strength=strength,
                    tile=tile, prompt=prompt, device=recon.device)
    assert (pixels[decoded.mask] == decoded.pixels[decoded.mask]).all(), "transmitted pixels must be exact"
    atomic_write_bytes(out, image_bytes(pixels, out), overwrite)
    atomic_write_bytes(mask_path, png_bytes(decoded.mask.astype(np.uint8) * 255), overwrite)
    meta.update(image=out.name, mask=mask_path.name)
    atomic_write_bytes(meta_path, json.dumps(meta, indent=2).encode(), overwrite)
    _record(bs, data_sha, f"human:{how}", out, mask_path, meta, s)
    return out, mask_path, meta_path


def machine(bs: Bitstream, decoded, out_path: str | Path, data_sha: str, tool: str | None = None,
            options: dict | None = None, settings: Settings | None = None,
            overwrite: bool = False) -> tuple[Path, Path]:
    """Write the machine-route JSON (``OUT``, must end in .json) and the decoded PNG beside it
    (``OUT.png``); returns their paths. ``machine:detect`` writes its COCO results list to ``OUT``
    itself (loadable by pycocotools' ``loadRes``) and the rest to ``OUT.meta.json``."""
    out = Path(out_path)
    check_output("machine", out)
    image_path = out.with_name(out.name + ".png")
    meta_path = out.with_name(out.name + ".meta.json") if tool == "detect" else None
    _outputs_free([p for p in (out, image_path, meta_path) if p], overwrite)
    body: dict[str, Any] = {"route": f"machine:{tool}" if tool else "machine", "image": image_path.name,
                            **_common(bs, decoded), "objects": decoded_objects(decoded)}
    if tool:
        from taskcodec.consumers.machine import get_tool

        body["result"] = get_tool(tool)(decoded, bs, options or {})
    atomic_write_bytes(image_path, png_bytes(decoded.pixels), overwrite)
    if meta_path is not None:  # the COCO results list alone, so that loadRes takes the file as it is
        atomic_write_bytes(out, json.dumps(body["result"].pop("detections"), indent=2).encode(), overwrite)
        atomic_write_bytes(meta_path, json.dumps(body, indent=2).encode(), overwrite)
    else:
        atomic_write_bytes(out, json.dumps(body, indent=2).encode(), overwrite)
    meta = {k: v for k, v in body.items() if k not in ("objects", "result")}
    _record(bs, data_sha, body["route"], out, None, meta, settings)
    return out, image_path
