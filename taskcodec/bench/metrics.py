"""Quality metrics and the Bjøntegaard delta rate.

BD-rate (Bjøntegaard 2001, with piecewise-cubic Hermite interpolation as in
VCEG-AL22 / most codec studies): interpolate log(rate) as a function of quality for
the anchor and the test curve, integrate both over the quality interval they share,
and report exp(mean difference) - 1 in percent. Negative = fewer bits for the same
quality.
"""

from __future__ import annotations

import cv2
import numpy as np

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float | None:
    d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if mask is not None:
        if not mask.any():
            return None
        d = d[mask]
    mse = float(d.mean())
    return 100.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _ssim_parts(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean SSIM and contrast-structure term over all channels (H x W x C float32: one blur per moment)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda a: cv2.GaussianBlur(a, (11, 11), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim = ((2 * mx * my + c1) / (mx * mx + my * my + c1)) * cs
    return float(ssim.mean()), float(cs.mean())


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003), 5 scales, each term averaged over RGB channels."""
    x, y = a.astype(np.float32), b.astype(np.float32)
    scales = max(1, min(5, int(np.log2(min(x.shape[:2]) / 11)) + 1))
    w = np.array(MS_SSIM_WEIGHTS[:scales])
    w = w / w.sum()
    vals = []
    for s in range(scales):
        ssim, cs = _ssim_parts(x, y)
        vals.append(ssim if s == scales - 1 else cs)
        if s < scales - 1:
            x = cv2.resize(x, (x.shape[1] // 2, x.shape[0] // 2), interpolation=cv2.INTER_AREA)
            y = cv2.resize(y, (y.shape[1] // 2, y.shape[0] // 2), interpolation=cv2.INTER_AREA)
    vals = np.clip(np.array(vals), 1e-6, None)
    return float(np.prod(vals ** w))


def bd_rate(anchor: list[tuple[float, float]], test: list[tuple[float, float]]) -> float | None:
    """BD-rate in percent of ``test`` against ``anchor``; points are (rate, quality). None if the
    curves share no quality interval or have fewer than 2 distinct qualities."""
    from scipy.interpolate import PchipInterpolator

    def curve(points):
        pts = sorted({q: r for r, q in points if r > 0 and q is not None and np.isfinite(q)}.items())
        if len(pts) < 2:
            return None
        q, r = np.array([p[0] for p in pts]), np.log(np.array([p[1] for p in pts]))
        return q, r

    a, t = curve(anchor), curve(test)
    if a is None or t is None:
        return None
    lo, hi = max(a[0].min(), t[0].min()), min(a[0].max(), t[0].max())
    if hi - lo <= 1e-9:
        return None
    grid = np.linspace(lo, hi, 200)
    fa, ft = PchipInterpolator(*a)(grid), PchipInterpolator(*t)(grid)
    diff = np.trapz(ft - fa, grid) / (hi - lo)  # numpy 1.26: trapz
    return float((np.exp(diff) - 1) * 100)
