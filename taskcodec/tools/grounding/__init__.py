"""Grounding backends, chosen by a spec string (``--grounding``, ``TASKCODEC_GROUNDING``).

Specs:
    ``opencv``        built-in OpenCV detectors, zero download (the default)
    ``onnx:PATH``     a YOLOX / NanoDet / YOLOv8-format COCO-80 ONNX file; a bare file
                      name is also looked up in ``$TASKCODEC_SHARED_DIR/models``
    ``tflite:PATH``   a YOLOv8-format COCO-80 TFLite file (ai-edge-litert), same lookup
    ``grounding-dino[:MODEL]``  open vocabulary, transformers' Grounding DINO from a hub
                      id (default IDEA-Research/grounding-dino-tiny) or a local folder

A new backend is one module plus one line in ``_FACTORIES``.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Callable

import numpy as np

from taskcodec.agents.policy import TaskPolicy
from taskcodec.errors import GroundingSpecError
from taskcodec.tools.grounding.base import (
    Detection,
    GroundingBackend,
    GroundingResult,
    RawDetection,
    map_to_policy,
    nms,
    resize_for_detection,
    ungroundable_labels,
)


def _opencv(arg: str | None) -> GroundingBackend:
    from taskcodec.tools.grounding.opencv import OpenCVBackend

    if arg:
        raise GroundingSpecError(f"grounding spec 'opencv' takes no argument (got 'opencv:{arg}')")
    return OpenCVBackend()


def _onnx(arg: str | None) -> GroundingBackend:
    from taskcodec.tools.grounding.onnx import OnnxDetector

    return OnnxDetector(_model_file(arg, "onnx"))


def _model_file(arg: str | None, kind: str) -> str:
    from pathlib import Path

    from taskcodec.settings import get_settings

    if not arg:
        raise GroundingSpecError(f"grounding spec '{kind}' needs a model file: {kind}:PATH")
    path = Path(arg).expanduser()
    if not path.is_file():  # a bare name may refer to the shared models folder
        shared = get_settings().shared_path / "models" / arg
        path = shared if shared.is_file() else path
    return str(path)


def _tflite(arg: str | None) -> GroundingBackend:
    from taskcodec.tools.grounding.tflite import TFLiteDetector

    return TFLiteDetector(_model_file(arg, "tflite"))


def _grounding_dino(arg: str | None) -> GroundingBackend:
    from taskcodec.tools.grounding.gdino import GroundingDinoBackend

    return GroundingDinoBackend(arg or None)


_FACTORIES: dict[str, Callable[[str | None], GroundingBackend]] = {
    "opencv": _opencv, "onnx": _onnx, "tflite": _tflite, "grounding-dino": _grounding_dino,
}


def available_backends() -> list[str]:
    return sorted(_FACTORIES)


@lru_cache(maxsize=8)
def get_backend(spec: str) -> GroundingBackend:
    """Parse ``NAME[:ARG]`` and build (once per process) the backend it names."""
    if not spec or not spec.strip():
        raise GroundingSpecError("grounding spec is empty; available: " + ", ".join(available_backends()))
    name, _, arg = spec.strip().partition(":")
    factory = _FACTORIES.get(name)
    if factory is None:
        raise GroundingSpecError(
            f"unknown grounding backend {name!r} in spec {spec!r}; available: " + ", ".join(available_backends())
        )
    return factory(arg or None)


def ground(pixels: np.ndarray, policy: TaskPolicy, backend: GroundingBackend) -> GroundingResult:
    """Find the policy's objects (and whatever else the backend sees) in an RGB image."""
    t0 = time.perf_counter()
    h, w = pixels.shape[:2]
    small, scale = resize_for_detection(pixels, getattr(backend, "max_side", 1280))
    raw = backend.detect(small, policy.label_names)
    dets = nms(map_to_policy(raw, backend, policy, scale, w, h), getattr(backend, "merge_iou", 0.4))
    dets.sort(key=lambda d: (d.label is None, -d.score))
    return GroundingResult(
        backend=backend.spec,
        detections=tuple(dets),
        ungroundable=ungroundable_labels(backend, policy),
        seconds=round(time.perf_counter() - t0, 4),
    )


__all__ = ["Detection", "GroundingResult", "RawDetection", "available_backends", "get_backend", "ground"]
