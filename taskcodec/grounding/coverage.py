"""Coverage: which policy labels a backend can detect, and what is sent for the rest.

Before encoding, the policy's labels are checked against the backend's classes
(``uncovered``). A label no class maps to is reported (CLI warning, ``plan`` and
``ground`` output, one ``ungroundable`` audit decision per label), and the user
chooses what happens (``--uncovered``, setting ``TASKCODEC_UNCOVERED``):

    area   (default) send the label's likely area at low quality: the part of a
           detected host object where it usually is (a face: the top of a person;
           a licence plate: the bottom of a vehicle), else the photo's main subject
           (U²-Net-p saliency, shipped)
    whole  send the whole image at the requested quality (whole-image mode)
    fail   refuse to encode (``--require-all-labels``)
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from taskcodec.domain.policy import TaskPolicy
from taskcodec.errors import TaskcodecError
from taskcodec.grounding.base import Detection, GroundingBackend, GroundingResult, ungroundable_labels

Uncovered = Literal["area", "whole", "fail"]
MODES: tuple[str, ...] = ("area", "whole", "fail")
LIKELY_AREA = "likely area"  # the ``match`` of every likely-area detection

# label -> (host classes, part of the host box as fractions x0, y0, x1, y1, that part in words)
HOSTS: dict[str, tuple[tuple[str, ...], tuple[float, float, float, float], str]] = {
    "face": (("person",), (0.15, 0.0, 0.85, 0.3), "top"),
    "license plate": (("car", "truck", "bus", "motorcycle"), (0.1, 0.6, 0.9, 1.0), "bottom"),
}


class CoverageError(TaskcodecError):
    """The policy needs labels the grounding backend cannot detect, and the user asked to fail."""


def check_mode(mode: str) -> Uncovered:
    if mode not in MODES:
        raise TaskcodecError(f"--uncovered must be one of {', '.join(MODES)}, not {mode!r}")
    return mode  # type: ignore[return-value]


def describe(spec: str, labels: tuple[str, ...], mode: str) -> str:
    """The one-line warning (or error) for labels ``spec`` cannot detect."""
    what = {"area": "sending their likely area at low quality",
            "whole": "sending the whole image instead",
            "fail": "refusing to encode (--require-all-labels)"}[mode]
    return (f"grounding backend '{spec}' cannot detect policy label(s) {', '.join(labels)}: {what} "
            f"(--uncovered area|whole|fail; `taskcodec ground --list-backends` shows what each backend finds)")


def require(backend: GroundingBackend, policy: TaskPolicy, mode: str) -> tuple[str, ...]:
    """The uncovered labels; raises ``CoverageError`` when there are some and ``mode`` is ``fail``."""
    labels = ungroundable_labels(backend, policy)
    if labels and check_mode(mode) == "fail":
        raise CoverageError(describe(backend.spec, labels, mode))
    return labels


def _vocab_label(class_name: str) -> str:
    from taskcodec.domain.vocabulary import load_vocabulary

    return load_vocabulary().canonical(class_name) or class_name


def likely_areas(g: GroundingResult, policy: TaskPolicy, pixels: np.ndarray) -> GroundingResult:
    """``g`` plus, for every ungroundable label, detections of where it is likely to be.

    A label with a host (``HOSTS``) gets that part of every host detection scoring
    at least the policy's threshold; any other label gets the image's salient
    regions. Each carries ``match='likely area ...'`` so the decision says so.
    """
    if not g.ungroundable:
        return g
    h, w = pixels.shape[:2]
    thr = policy.rules.min_score
    extra: list[Detection] = []
    salient: list[tuple[tuple[float, float, float, float], float]] | None = None
    for label in g.ungroundable:
        host = HOSTS.get(_vocab_label(label))
        if host is not None:
            classes, (fx0, fy0, fx1, fy1), part = host
            for d in g.detections:
                if d.score < thr or _vocab_label(d.class_name) not in classes:
                    continue
                x0, y0, x1, y1 = d.box
                bw, bh = x1 - x0, y1 - y0
                box = (x0 + fx0 * bw, y0 + fy0 * bh, x0 + fx1 * bw, y0 + fy1 * bh)
                extra.append(Detection(label=label, class_name=f"{LIKELY_AREA} on {d.class_name}",
                                       box=tuple(round(v, 2) for v in box), score=d.score, raw_score=d.raw_score,
                                       backend=g.backend, match=f"{LIKELY_AREA}: {part} of a {d.class_name}"))
            continue
        if salient is None:
            salient = _salient_boxes(pixels)
        for box, score in salient or [((0.0, 0.0, float(w), float(h)), 1.0)]:
            extra.append(Detection(label=label, class_name=f"{LIKELY_AREA}: main subject", box=box,
                                   score=round(score, 5), raw_score=round(score, 5), backend=g.backend,
                                   match=f"{LIKELY_AREA}: the photo's main subject"))
    return g.model_copy(update={"detections": g.detections + tuple(extra)})


def _salient_boxes(pixels: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
    from taskcodec.grounding import get_backend

    return [(tuple(round(v, 2) for v in r.box), r.score) for r in get_backend("saliency").detect(pixels)]
