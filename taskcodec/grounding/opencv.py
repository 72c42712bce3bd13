"""Zero-download grounding with the detectors that ship inside OpenCV.

| class         | detector                                  | label it finds |
|---------------|-------------------------------------------|----------------|
| person        | HOG + linear SVM (Dalal & Triggs)          | person         |
| full body     | Haar full body                             | person         |
| upper body    | Haar upper body                            | person         |
| face          | Haar frontal face + Haar profile face      | face           |
| cat face      | Haar frontal cat face (extended)           | cat            |
| license plate | Haar Russian plate number                  | license plate  |

Raw scores (SVM margin, final-stage Haar weight) are calibrated to [0, 1] with
``1 - exp(-max(raw, 0) / s)`` where ``s`` is a per-detector scale chosen so a
clear true positive on the scikit-image samples scores above 0.75; the raw
number is kept in each detection for the audit.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from taskcodec.grounding.base import RawDetection

MAX_SIDE = 1280  # larger photos are downscaled for detection; boxes are scaled back


@dataclass(frozen=True)
class _Cascade:
    class_name: str
    file: str
    scale: float
    min_neighbors: int = 4


_CASCADES = (
    _Cascade("face", "haarcascade_frontalface_default.xml", 2.0, 5),
    _Cascade("face", "haarcascade_profileface.xml", 1.0, 4),
    _Cascade("cat face", "haarcascade_frontalcatface_extended.xml", 0.3, 3),
    _Cascade("license plate", "haarcascade_russian_plate_number.xml", 1.0, 4),
    _Cascade("full body", "haarcascade_fullbody.xml", 1.0, 4),
    _Cascade("upper body", "haarcascade_upperbody.xml", 1.0, 4),
)
_HOG_SCALE = 0.5


def calibrate(raw: float, scale: float) -> float:
    return 1.0 - math.exp(-max(raw, 0.0) / scale)


class OpenCVBackend:
    """HOG people and Haar cascades; thread-safe (each thread gets its own detectors)."""

    spec = "opencv"
    max_side = MAX_SIDE
    open_vocabulary = False
    merge_iou = 0.4  # frontal + profile faces, HOG + Haar bodies: overlapping hits are one object

    def __init__(self) -> None:
        self._local = threading.local()

    def class_map(self) -> dict[str, str]:
        return {"person": "person", "full body": "person", "upper body": "person", "face": "face",
                "cat face": "cat", "license plate": "license plate"}

    def _detectors(self):
        d = getattr(self._local, "detectors", None)
        if d is None:
            hog = cv2.HOGDescriptor()
            hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
            cascades = []
            for c in _CASCADES:
                clf = cv2.CascadeClassifier(cv2.data.haarcascades + c.file)
                if clf.empty():
                    raise RuntimeError(f"OpenCV cascade {c.file} failed to load")
                cascades.append((c, clf))
            d = self._local.detectors = (hog, cascades)
        return d

    def detect(self, pixels: np.ndarray, labels: list[str] | None = None,
               classes: set[str] | None = None) -> list[RawDetection]:
        hog, cascades = self._detectors()
        gray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
        out: list[RawDetection] = []
        if gray.shape[0] >= 128 and gray.shape[1] >= 64:
            rects, weights = hog.detectMultiScale(gray, winStride=(8, 8), padding=(8, 8), scale=1.05)
            for (x, y, w, h), wt in zip(rects, np.ravel(weights)):
                out.append(_raw("person", x, y, w, h, float(wt), _HOG_SCALE))
        min_size = max(20, min(gray.shape) // 40)
        for c, clf in cascades:
            rects, _levels, weights = clf.detectMultiScale3(
                gray, scaleFactor=1.1, minNeighbors=c.min_neighbors, minSize=(min_size, min_size),
                outputRejectLevels=True,
            )
            for (x, y, w, h), wt in zip(rects, np.ravel(weights)):
                out.append(_raw(c.class_name, x, y, w, h, float(wt), c.scale))
        return out


def _raw(name: str, x, y, w, h, raw: float, scale: float) -> RawDetection:
    return RawDetection(
        class_name=name, box=(float(x), float(y), float(x + w), float(y + h)),
        score=calibrate(raw, scale), raw_score=raw,
    )
