"""Grounding backends, chosen by a spec string (``--grounding``, ``TASKCODEC_GROUNDING``).

Specs:
    ``yolox``         YOLOX-nano, COCO-80, shipped inside the package
    ``nanodet``       NanoDet-m, COCO-80, shipped inside the package
    ``saliency``      the main subject, from U²-Net-p masks, shipped inside the package
    ``A+B+...``       an ensemble: each member adds the labels the ones before it lack;
                      the default is ``yolox+saliency`` (``Settings.grounding``)
    ``tiled:SPEC``    SPEC on the whole image and on 2x2 overlapping tiles (small objects)
    ``A|B|...``       a union: every member looks for every class, duplicates are merged
                      (binds tighter than ``+``: ``yolox|nanodet+saliency``)
    ``opencv``        built-in OpenCV detectors (HOG people, Haar faces and plates)
    ``onnx:PATH``     a YOLOX / NanoDet / YOLOv8-format COCO-80 ONNX file; a bare file
                      name is looked up in the packaged models, then ``$TASKCODEC_SHARED_DIR/models``
    ``tflite:PATH``   a YOLOv8-format COCO-80 TFLite file (ai-edge-litert), same lookup
    ``grounding-dino[:MODEL]``  open vocabulary, transformers' Grounding DINO from a hub
                      id (default IDEA-Research/grounding-dino-tiny) or a local folder

A new backend is one module plus one line in ``_FACTORIES``.
"""

from __future__ import annotations

import time
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from taskcodec.domain.policy import TaskPolicy
from taskcodec.errors import GroundingSpecError
from taskcodec.grounding.base import (
    Detection,
    GroundingBackend,
    GroundingResult,
    RawDetection,
    label_map,
    map_to_policy,
    nms,
    resize_for_detection,
    ungroundable_labels,
)


def _opencv(arg: str | None) -> GroundingBackend:
    from taskcodec.grounding.opencv import OpenCVBackend

    if arg:
        raise GroundingSpecError(f"grounding spec 'opencv' takes no argument (got 'opencv:{arg}')")
    return OpenCVBackend()


def packaged_model(name: str) -> Path:
    """A model file that ships inside taskcodec (``grounding/models``, licences beside it)."""
    return Path(str(resources.files("taskcodec.grounding").joinpath("models", name)))


def _packaged(spec: str, file: str, make: Callable[[Path, str], GroundingBackend]):
    def factory(arg: str | None) -> GroundingBackend:
        if arg:
            raise GroundingSpecError(f"grounding spec '{spec}' takes no argument (got '{spec}:{arg}')")
        return make(packaged_model(file), spec)

    return factory


def _onnx_file(path: Path, spec: str) -> GroundingBackend:
    from taskcodec.grounding.onnx import OnnxDetector

    return OnnxDetector(str(path), spec=spec)


def _saliency_file(path: Path, spec: str) -> GroundingBackend:
    from taskcodec.grounding.saliency import SaliencyBackend

    return SaliencyBackend(path, spec=spec)


def _onnx(arg: str | None) -> GroundingBackend:
    from taskcodec.grounding.onnx import OnnxDetector

    return OnnxDetector(_model_file(arg, "onnx"))


def _model_file(arg: str | None, kind: str) -> str:
    from taskcodec.settings import get_settings

    if not arg:
        raise GroundingSpecError(f"grounding spec '{kind}' needs a model file: {kind}:PATH")
    path = Path(arg).expanduser()
    if not path.is_file():  # a bare name may be a packaged model or one in the shared models folder
        for candidate in (packaged_model(arg), get_settings().shared_path / "models" / arg):
            if candidate.is_file():
                return str(candidate)
    return str(path)


def _tflite(arg: str | None) -> GroundingBackend:
    from taskcodec.grounding.tflite import TFLiteDetector

    return TFLiteDetector(_model_file(arg, "tflite"))


def _tiled(arg: str | None) -> GroundingBackend:
    from taskcodec.grounding.tiled import TiledBackend

    if not arg:
        raise GroundingSpecError("grounding spec 'tiled' needs the backend to tile: tiled:SPEC (e.g. tiled:yolox)")
    return TiledBackend(get_backend(arg))


def _grounding_dino(arg: str | None) -> GroundingBackend:
    from taskcodec.grounding.gdino import GroundingDinoBackend

    return GroundingDinoBackend(arg or None)


_FACTORIES: dict[str, Callable[[str | None], GroundingBackend]] = {
    "yolox": _packaged("yolox", "yolox_nano.onnx", _onnx_file),
    "nanodet": _packaged("nanodet", "nanodet_m.onnx", _onnx_file),
    "saliency": _packaged("saliency", "u2netp.onnx", _saliency_file),
    "opencv": _opencv, "onnx": _onnx, "tflite": _tflite, "grounding-dino": _grounding_dino,
    "tiled": _tiled,
}


def available_backends() -> list[str]:
    return sorted(_FACTORIES)


_NEEDS_ARGUMENT = {
    "onnx": ("a COCO-80 ONNX file you give (onnx:PATH)", "the 80 COCO classes"),
    "tflite": ("a COCO-80 TFLite file you give (tflite:PATH)", "the 80 COCO classes"),
    "grounding-dino": ("a local model folder or hub id (grounding-dino:MODEL)", "any label (open vocabulary)"),
    "tiled": ("another backend, run on the whole image and on 2x2 overlapping tiles (tiled:SPEC)",
              "the labels SPEC finds"),
}


def catalogue(default: str) -> list[dict]:
    """Every backend with where its model comes from and the vocabulary labels it can find."""
    rows = []
    for name in [default, *available_backends()]:
        if name in _NEEDS_ARGUMENT:
            source, labels = _NEEDS_ARGUMENT[name]
            rows.append({"spec": name, "model": source, "labels": labels})
            continue
        backend = get_backend(name)
        found = sorted(set(backend.class_map().values()))
        rows.append({"spec": name + (" (default)" if name == default else ""),
                     "model": "ships inside taskcodec" if name != "opencv" else "ships inside opencv",
                     "labels": f"{len(found)}: " + ", ".join(found)})
    return rows


@lru_cache(maxsize=8)
def get_backend(spec: str) -> GroundingBackend:
    """Parse ``NAME[:ARG]`` (or ``A+B+...``) and build (once per process) the backend it names."""
    if not spec or not spec.strip():
        raise GroundingSpecError("grounding spec is empty; available: " + ", ".join(available_backends()))
    if "+" in spec:
        from taskcodec.grounding.ensemble import EnsembleBackend

        return EnsembleBackend([get_backend(part) for part in spec.split("+")])
    if "|" in spec:
        from taskcodec.grounding.ensemble import UnionBackend

        return UnionBackend([get_backend(part) for part in spec.split("|")])
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
    small, scale = resize_for_detection(pixels, backend.max_side)
    raw = backend.detect(small, policy.label_names, classes=set(label_map(backend, policy)))
    dets = nms(map_to_policy(raw, backend, policy, scale, w, h), backend.merge_iou)
    dets.sort(key=lambda d: (d.label is None, -d.score))
    return GroundingResult(
        backend=backend.spec,
        detections=tuple(dets),
        ungroundable=ungroundable_labels(backend, policy),
        seconds=round(time.perf_counter() - t0, 4),
    )


__all__ = ["Detection", "GroundingBackend", "GroundingResult", "RawDetection", "available_backends", "get_backend",
           "ground", "packaged_model"]
