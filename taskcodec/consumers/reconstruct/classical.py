"""``--reconstruct classical``: the coarse base upsampled, objects blended in without seams.

Transmitted pixels stay exact. The seam is removed on the base side: the
low-frequency difference between the objects and the base is extended outward by
normalised convolution,

    ext = G * (M (D - B)) / G * M,     w = clip(2 G * M, 0, 1) (1 - M)
    out = D inside M,   B + w ext outside,

with D the decoded image, B the base alone, M the transmitted mask and G a
Gaussian (sigma grows with image size), so the base fades into each object's colours.
"""

from __future__ import annotations

import cv2
import numpy as np


def reconstruct(decoded: np.ndarray, base: np.ndarray, mask: np.ndarray, sigma: float | None = None) -> np.ndarray:
    if not mask.any():
        return decoded.copy()
    h, w = mask.shape
    s = sigma or max(3.0, 0.012 * max(h, w))
    m = mask.astype(np.float32)
    diff = (decoded.astype(np.float32) - base.astype(np.float32)) * m[..., None]
    blur = lambda a: cv2.GaussianBlur(a, (0, 0), s)  # noqa: E731
    den = blur(m)
    ext = blur(diff) / np.maximum(den, 1e-4)[..., None]
    weight = (np.clip(2.0 * den, 0.0, 1.0) * (1.0 - m))[..., None]
    out = base.astype(np.float32) + weight * ext
    out[mask] = decoded[mask]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def seam_strength(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute step across the mask boundary (pixel pairs straddling it)."""
    img = image.astype(np.float32)
    steps = []
    for axis in (0, 1):
        a, b = (mask[1:], mask[:-1]) if axis == 0 else (mask[:, 1:], mask[:, :-1])
        cross = a != b
        if cross.any():
            ia, ib = (img[1:], img[:-1]) if axis == 0 else (img[:, 1:], img[:, :-1])
            steps.append(np.abs(ia - ib)[cross].mean())
    return float(np.mean(steps)) if steps else 0.0
