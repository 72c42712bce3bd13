"""``saliency``: the main subject of a photo, from U²-Net-p salient-object masks.

U²-Net (Qin et al., "U²-Net: Going Deeper with Nested U-Structure for Salient
Object Detection", Pattern Recognition 2020), the 4.6 MB ``u2netp`` variant as
exported to ONNX by rembg; it ships inside taskcodec (``models/``, see its README).

    RGB ──resize 320², ImageNet norm──▶ U²-Net-p ──▶ P(salient) 320² ──resize──▶ mask
    mask ≥ 0.5 ──connected components (≥ 1 % of the image)──▶ one box per component

Each component is one ``salient object`` detection (vocabulary label ``main
subject``); its score is the mean probability inside the component, so a crisp,
confident mask scores near 1 and a diffuse one lower.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from taskcodec.errors import GroundingSpecError
from taskcodec.grounding.base import RawDetection

CLASS = "salient object"
LABEL = "main subject"
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


class SaliencyBackend:
    """U²-Net-p on onnxruntime (CPU); thread-safe like its session."""

    max_side = None  # the model resizes to 320² itself
    open_vocabulary = False
    merge_iou = 0.5

    def __init__(self, path: str | Path, spec: str = "saliency", size: int = 320, min_area: float = 0.01,
                 max_objects: int = 3):
        from taskcodec.grounding.onnx import onnx_session

        self.session = onnx_session(Path(path))
        self.input_name = self.session.get_inputs()[0].name
        shape = self.session.get_inputs()[0].shape
        if len(shape) != 4 or shape[1] != 3:
            raise GroundingSpecError(f"{path}: input shape {shape} is not a U²-Net 1x3xHxW input")
        self.spec, self.size, self.min_area, self.max_objects = spec, size, min_area, max_objects

    def class_map(self) -> dict[str, str]:
        return {CLASS: LABEL}

    def probability(self, pixels: np.ndarray) -> np.ndarray:
        """P(salient) per pixel of ``pixels`` (RGB uint8), float32 in [0, 1]."""
        h, w = pixels.shape[:2]
        x = cv2.resize(pixels, (self.size, self.size), interpolation=cv2.INTER_AREA).astype(np.float32)
        x = (x / max(float(x.max()), 1.0) - _MEAN) / _STD
        pred = self.session.run(None, {self.input_name: x.transpose(2, 0, 1)[None]})[0][0, 0]
        lo, hi = float(pred.min()), float(pred.max())
        pred = (pred - lo) / (hi - lo) if hi > lo else np.zeros_like(pred)
        return cv2.resize(pred.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)

    def detect(self, pixels: np.ndarray, labels: list[str] | None = None,
               classes: set[str] | None = None) -> list[RawDetection]:
        prob = self.probability(pixels)
        n, comp, stats, _ = cv2.connectedComponentsWithStats((prob >= 0.5).astype(np.uint8), connectivity=8)
        min_px = self.min_area * prob.size
        out = []
        for i in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            if area < min_px:
                continue
            score = float(prob[comp == i].mean())
            out.append(RawDetection(class_name=CLASS, box=(float(x), float(y), float(x + bw), float(y + bh)),
                                    score=score, raw_score=score))
        out.sort(key=lambda d: -d.score)
        return out[: self.max_objects]
