"""The grounding interface: ``ground(image, policy) -> GroundingResult``.

A backend finds objects of its own classes; this module maps them onto the
policy's open labels, applies per-label NMS and reports the policy labels the
backend cannot find at all (``ungroundable``) so the audit can say so.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict

from taskcodec.domain.geometry import Box, iou
from taskcodec.domain.policy import TaskPolicy

__all__ = ["Box", "Detection", "GroundingBackend", "GroundingResult", "RawDetection", "iou", "label_map",
           "map_to_policy", "nms", "resize_for_detection", "ungroundable_labels"]


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
    match: str | None = None  # how the class became the label: exact, synonym, group, embedding 0.83


class GroundingResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    backend: str
    detections: tuple[Detection, ...]
    ungroundable: tuple[str, ...]  # policy labels this backend has no class for
    seconds: float = 0.0


@runtime_checkable
class GroundingBackend(Protocol):
    """What ``ground`` needs of a backend, declared by the backend instead of guessed by its callers.

    ``max_side``: the longest image side the model should be given; ``ground`` shrinks larger images
    first and scales the boxes back (None: the model resizes any image itself). ``merge_iou``: the IoU
    above which two detections of one policy label are one object. ``open_vocabulary``: the backend
    looks for the labels it is given (Grounding DINO) rather than reporting a fixed class list.
    """

    spec: str
    max_side: int | None
    merge_iou: float
    open_vocabulary: bool

    def class_map(self) -> dict[str, str]:
        """Detector class name -> the vocabulary label it finds (e.g. 'cat face' -> 'cat')."""

    def detect(self, pixels: np.ndarray, labels: list[str] | None = None,
               classes: set[str] | None = None) -> list[RawDetection]:
        """Objects in an RGB uint8 image, boxes in its pixels. Closed-vocabulary backends report
        their classes and ignore ``labels``; open-vocabulary ones look for ``labels``. ``classes``,
        when given, are the only detector classes the caller needs: a backend may skip the rest."""


def nms(dets: list[Detection], iou_threshold: float) -> list[Detection]:
    """Greedy NMS within each label (or class, for unmapped detections)."""
    out: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        key = d.label or d.class_name
        if all((o.label or o.class_name) != key or iou(o.box, d.box) < iou_threshold for o in out):
            out.append(d)
    return out


def resize_for_detection(pixels: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Downscale so the longer side is at most ``max_side``; returns (image, scale to original)."""
    h, w = pixels.shape[:2]
    if max_side is None:
        return pixels, 1.0
    s = max(h, w) / max_side
    if s <= 1.0:
        return pixels, 1.0
    small = cv2.resize(pixels, (round(w / s), round(h / s)), interpolation=cv2.INTER_AREA)
    return small, s


EMBEDDING_MIN_SIMILARITY = 0.7
_METHOD_ORDER = {"exact": 0, "synonym": 1, "group": 2, "embedding": 3}


def label_map(backend: GroundingBackend, policy: TaskPolicy) -> dict[str, tuple[str, str]]:
    """Detector class -> (policy label, how it matched).

    In order: the label or a synonym names the class's vocabulary label; the label
    is a vocabulary group containing it ("vehicle" -> car, truck, ...); failing
    both, MiniLM similarity between label and class of at least
    ``EMBEDDING_MIN_SIMILARITY``. A better method wins a class; ties go to the more
    important label.
    """
    if backend.open_vocabulary:
        return {spec.name: (spec.name, "exact") for spec in policy.labels}
    key = (backend.spec, policy.content_hash())
    hit = _LABEL_MAP_CACHE.get(key)
    if hit is not None:
        return hit
    from taskcodec.domain.vocabulary import load_vocabulary

    vocab = load_vocabulary()
    cmap = backend.class_map()
    best: dict[str, tuple[int, int, str, str]] = {}  # class -> (method rank, label rank, label, how)

    def offer(cls: str, spec, how: str) -> None:
        cand = (_METHOD_ORDER[how.split()[0]], spec.rank, spec.name, how)
        if cls not in best or cand[:2] < best[cls][:2]:
            best[cls] = cand

    matched: set[str] = set()
    for spec in policy.labels:
        canon = vocab.canonical(spec.name)
        for cls, vlabel in cmap.items():
            if vlabel == spec.name or cls == spec.name:
                offer(cls, spec, "exact")
            elif vlabel in spec.synonyms or canon == vlabel:
                offer(cls, spec, "synonym")
            elif vlabel in vocab.groups.get(spec.name, ()):
                offer(cls, spec, "group")
            else:
                continue
            matched.add(spec.name)
    unmatched = [spec for spec in policy.labels if spec.name not in matched]
    if unmatched:
        from taskcodec.domain.embeddings import embed_all

        vlabels = sorted(set(cmap.values()))
        e = embed_all([*vlabels, *(spec.name for spec in unmatched)])  # one batch
        for spec in unmatched:
            sims = {v: float(e[spec.name] @ e[v]) for v in vlabels}
            top = max(sims, key=sims.get)
            if sims[top] >= EMBEDDING_MIN_SIMILARITY:
                for cls, vlabel in cmap.items():
                    if vlabel == top:
                        offer(cls, spec, f"embedding {sims[top]:.2f}")
    result = {cls: (label, how) for cls, (_m, _r, label, how) in best.items()}
    _LABEL_MAP_CACHE[key] = result
    return result


_LABEL_MAP_CACHE: dict[tuple, dict[str, tuple[str, str]]] = {}


def map_to_policy(
    raw: list[RawDetection], backend: GroundingBackend, policy: TaskPolicy, scale: float, width: int, height: int
) -> list[Detection]:
    lmap = label_map(backend, policy)
    out = []
    for r in raw:
        label, how = lmap.get(r.class_name, (None, None))
        x0, y0, x1, y1 = (v * scale for v in r.box)
        box = (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        out.append(
            Detection(
                label=label, class_name=r.class_name, box=tuple(round(v, 2) for v in box),
                score=round(r.score, 5), raw_score=round(r.raw_score, 5), backend=backend.spec, match=how,
            )
        )
    return out


def ungroundable_labels(backend: GroundingBackend, policy: TaskPolicy) -> tuple[str, ...]:
    mapped = {label for label, _how in label_map(backend, policy).values()}
    return tuple(spec.name for spec in policy.labels if spec.name not in mapped)
