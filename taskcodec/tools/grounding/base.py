"""The grounding interface: ``ground(image, policy) -> GroundingResult``.

A backend finds objects of its own classes; this module maps them onto the
policy's open labels, applies per-label NMS and reports the policy labels the
backend cannot find at all (``ungroundable``) so the audit can say so.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict

from taskcodec.agents.policy import TaskPolicy

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


class RawDetection(BaseModel):
    """What a backend reports, in its own vocabulary."""

    model_config = ConfigDict(frozen=True)

    class_name: str
    box: Box
    score: float  # calibrated to [0, 1]
    raw_score: float  # the detector's own number, kept for the audit


class Detection(BaseModel):
    """A located object: the detector's class, and the policy label it stands for (if any)."""

    model_config = ConfigDict(frozen=True)

    label: str | None  # policy label, None when the class is not in the policy
    class_name: str
    box: Box
    score: float
    raw_score: float
    backend: str


class GroundingResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    backend: str
    detections: tuple[Detection, ...]
    ungroundable: tuple[str, ...]  # policy labels this backend has no class for
    seconds: float = 0.0


class GroundingBackend(Protocol):
    spec: str

    def class_map(self) -> dict[str, str]:
        """Detector class name -> the vocabulary label it finds (e.g. 'cat face' -> 'cat')."""

    def detect(self, pixels: np.ndarray) -> list[RawDetection]:
        """All objects of the backend's classes in an RGB uint8 image, boxes in its pixels."""


def iou(a: Box, b: Box) -> float:
    ix0, iy0, ix1, iy1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix1 - ix0) * max(0.0, iy1 - iy0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(dets: list[Detection], iou_threshold: float = 0.4) -> list[Detection]:
    """Greedy NMS within each label (or class, for unmapped detections)."""
    out: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        key = d.label or d.class_name
        if all((o.label or o.class_name) != key or iou(o.box, d.box) < iou_threshold for o in out):
            out.append(d)
    return out


def resize_for_detection(pixels: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so the longer side is at most ``max_side``; returns (image, scale to original)."""
    h, w = pixels.shape[:2]
    s = max(h, w) / max_side
    if s <= 1.0:
        return pixels, 1.0
    small = cv2.resize(pixels, (round(w / s), round(h / s)), interpolation=cv2.INTER_AREA)
    return small, s


def map_to_policy(
    raw: list[RawDetection], backend: GroundingBackend, policy: TaskPolicy, scale: float, width: int, height: int
) -> list[Detection]:
    cmap = backend.class_map()
    out = []
    for r in raw:
        vocab_label = cmap.get(r.class_name, r.class_name)
        spec = policy.label(vocab_label) or policy.label(r.class_name)
        x0, y0, x1, y1 = (v * scale for v in r.box)
        box = (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        out.append(
            Detection(
                label=spec.name if spec else None,
                class_name=r.class_name,
                box=tuple(round(v, 1) for v in box),
                score=round(r.score, 4),
                raw_score=round(r.raw_score, 4),
                backend=backend.spec,
            )
        )
    return out


def ungroundable_labels(backend: GroundingBackend, policy: TaskPolicy) -> tuple[str, ...]:
    found = set(backend.class_map().values()) | set(backend.class_map())
    return tuple(
        spec.name for spec in policy.labels if spec.name not in found and not (set(spec.synonyms) & found)
    )
