"""Several backends as one: ``A+B+...`` (each finds what the ones before it cannot) and ``A|B|...`` (all
look for the same classes, and ``ground``'s NMS merges what two of them find twice).

Members are listed in order of precedence. A member contributes only the
classes whose vocabulary label no earlier member covers, so ``yolox+saliency``
takes the 80 COCO classes from YOLOX-nano and ``main subject`` from U²-Net-p,
and ``yolox+saliency+opencv`` adds OpenCV's faces and licence plates (its people
are left to YOLOX). A member none of whose classes the policy needs is not run.

``yolox|nanodet`` runs both COCO detectors on every image: an object either one finds is an object (more
recall, for the judge cannot detect what was never sent), at the cost of both detectors' time. ``|`` binds
tighter than ``+``: ``yolox|nanodet+saliency`` is the union, then U²-Net-p for ``main subject``.
"""

from __future__ import annotations

import numpy as np

from taskcodec.grounding.base import GroundingBackend, RawDetection


class EnsembleBackend:
    def __init__(self, members: list[GroundingBackend]):
        self.members = list(members)
        self.spec = "+".join(m.spec for m in self.members)
        sides = [m.max_side for m in self.members if m.max_side is not None]
        self.max_side = min(sides) if sides else None  # the strictest member's limit
        self.merge_iou = self.members[0].merge_iou
        self.open_vocabulary = False  # members are closed-vocabulary; an open one is its own spec
        self._cmap: dict[str, str] = {}
        self._owned: list[set[str]] = []
        covered: set[str] = set()
        for m in self.members:
            mine = {c: label for c, label in m.class_map().items() if label not in covered and c not in self._cmap}
            self._cmap.update(mine)
            self._owned.append(set(mine))
            covered |= set(m.class_map().values())

    def class_map(self) -> dict[str, str]:
        return dict(self._cmap)

    def detect(self, pixels: np.ndarray, labels: list[str] | None = None,
               classes: set[str] | None = None) -> list[RawDetection]:
        """Every member's detections of the classes it owns; with ``classes``, only members owning one run."""
        out: list[RawDetection] = []
        for m, owned in zip(self.members, self._owned):
            if not owned or (classes is not None and not owned & classes):
                continue
            out.extend(r for r in m.detect(pixels, labels, classes) if r.class_name in owned)
        return out


class UnionBackend:
    """``A|B|...``: every member's detections of every class; one object found twice is merged by ``ground``."""

    def __init__(self, members: list[GroundingBackend]):
        self.members = list(members)
        self.spec = "|".join(m.spec for m in self.members)
        sides = [m.max_side for m in self.members if m.max_side is not None]
        self.max_side = min(sides) if sides else None
        self.merge_iou = min(m.merge_iou for m in self.members)
        self.open_vocabulary = any(m.open_vocabulary for m in self.members)
        self._cmap: dict[str, str] = {}
        for m in self.members:
            for c, label in m.class_map().items():
                self._cmap.setdefault(c, label)

    def class_map(self) -> dict[str, str]:
        return dict(self._cmap)

    def detect(self, pixels: np.ndarray, labels: list[str] | None = None,
               classes: set[str] | None = None) -> list[RawDetection]:
        """The members' detections together; with ``classes``, only members that have one of them run."""
        out: list[RawDetection] = []
        for m in self.members:
            if classes is None or m.open_vocabulary or set(m.class_map()) & classes:
                out.extend(m.detect(pixels, labels, classes))
        return out
