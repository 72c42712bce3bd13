"""``--reconstruct diffusion``: inpaint what was not transmitted with a diffusion prior.

Components are diffusers pipelines loaded with ``from_pretrained`` from a hub id
(default ``stabilityai/stable-diffusion-2-inpainting``) or a local folder, with an
optional ControlNet conditioned on the coarse decoded image. ``__call__``:

    1. mask to synthesise = not transmitted (white), image = the decoded canvas
    2. prompt = "a photo of " + the transmitted labels + the task's labels (tag guidance)
    3. split the image into overlapping tiles of at most ``tile`` px (sides multiples of 8)
    4. per tile: inpaint at ``strength`` (1.0 ignores the coarse base, lower keeps more of it),
       ``steps`` denoising steps, seeded generator (seed + tile index)
    5. blend the tiles with linear feathering in the overlaps
    6. paste every transmitted pixel back exactly

CUDA (float16) when available, else CPU.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from taskcodec.errors import TaskcodecError

DEFAULT_MODEL = "stabilityai/stable-diffusion-2-inpainting"


def tiles(h: int, w: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Overlapping (x0, y0, x1, y1) windows covering an h x w image."""
    if tile < 16:
        raise TaskcodecError(f"--tile must be at least 16 pixels, not {tile}")
    overlap = min(overlap, tile // 4)

    def starts(n):
        if n <= tile:
            return [0]
        step = tile - overlap
        out = list(range(0, n - tile, step))
        return out + [n - tile]
    return [(x, y, min(w, x + tile), min(h, y + tile)) for y in starts(h) for x in starts(w)]


def _feather(h: int, w: int, overlap: int) -> np.ndarray:
    ramp = lambda n: np.clip(np.minimum(np.arange(n) + 1, np.arange(n)[::-1] + 1) / max(1, overlap), 0, 1)  # noqa: E731
    return np.outer(ramp(h), ramp(w)).astype(np.float32)


class DiffusionReconstructor:
    def __init__(self, model: str | None = None, controlnet: str | None = None, device: str | None = None):
        from taskcodec.errors import require_extra

        require_extra("diffusion", "diffusion reconstruction", "torch", "diffusers", "transformers", "accelerate")
        import torch
        from diffusers import (
            ControlNetModel, StableDiffusionControlNetInpaintPipeline, StableDiffusionInpaintPipeline,
        )

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        src = model or DEFAULT_MODEL
        common = dict(safety_checker=None, requires_safety_checker=False, dtype=dtype,
                      local_files_only=Path(src).expanduser().is_dir())
        try:
            if controlnet:
                cn = ControlNetModel.from_pretrained(controlnet, dtype=dtype,
                                                     local_files_only=Path(controlnet).expanduser().is_dir())
                self.pipe = StableDiffusionControlNetInpaintPipeline.from_pretrained(src, controlnet=cn, **common)
            else:
                self.pipe = StableDiffusionInpaintPipeline.from_pretrained(src, **common)
        except Exception as exc:
            raise TaskcodecError(
                f"could not load the diffusion pipeline from {src!r}"
                + (f" with ControlNet {controlnet!r}" if controlnet else "")
                + f" ({type(exc).__name__}: {str(exc)[:200]}); use --reconstruct classical, or give a local folder"
            ) from None
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.model, self.controlnet = src, controlnet
        self._lock = threading.Lock()

    def __call__(self, decoded: np.ndarray, mask: np.ndarray, prompt: str, steps: int = 50, seed: int = 0,
                 strength: float = 1.0, tile: int = 512, overlap: int = 64) -> np.ndarray:
        import torch
        from PIL import Image

        h, w = mask.shape
        overlap = min(overlap, tile // 4)
        acc = np.zeros((h, w, 3), np.float32)
        wsum = np.zeros((h, w, 1), np.float32)
        for i, (x0, y0, x1, y1) in enumerate(tiles(h, w, tile, overlap)):
            th, tw = y1 - y0, x1 - x0
            sh, sw = max(8, (th + 7) // 8 * 8), max(8, (tw + 7) // 8 * 8)
            img = cv2.resize(decoded[y0:y1, x0:x1], (sw, sh), interpolation=cv2.INTER_CUBIC)
            hole = cv2.resize((~mask[y0:y1, x0:x1]).astype(np.uint8) * 255, (sw, sh), interpolation=cv2.INTER_NEAREST)
            if not hole.any():
                out = decoded[y0:y1, x0:x1].astype(np.float32)
            else:
                kw = dict(prompt=prompt, image=Image.fromarray(img), mask_image=Image.fromarray(hole), height=sh,
                          width=sw, num_inference_steps=steps, strength=strength,
                          generator=torch.Generator(device="cpu").manual_seed(seed + i), output_type="np")
                if self.controlnet:
                    kw["control_image"] = Image.fromarray(img)
                with self._lock, torch.inference_mode():
                    res = self.pipe(**kw).images[0]
                out = cv2.resize((np.clip(res, 0, 1) * 255).astype(np.float32), (tw, th), interpolation=cv2.INTER_AREA)
            f = _feather(th, tw, overlap)[..., None]
            acc[y0:y1, x0:x1] += out * f
            wsum[y0:y1, x0:x1] += f
        result = np.clip(np.rint(acc / np.maximum(wsum, 1e-6)), 0, 255).astype(np.uint8)
        result[mask] = decoded[mask]  # transmitted pixels are never synthesised
        return result


def build_prompt(labels: list[str], task: str | None) -> str:
    tags = list(dict.fromkeys(l for l in labels if l))
    text = "a photo" + (" of " + ", ".join(tags) if tags else "")
    return text + (f"; {task}" if task else "") + ", natural, detailed"
