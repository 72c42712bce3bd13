"""Boxes: ``(x0, y0, x1, y1)`` in pixels, and their overlap."""

from __future__ import annotations

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap or are empty)."""
    ix0, iy0, ix1, iy1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix1 - ix0) * max(0.0, iy1 - iy0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
