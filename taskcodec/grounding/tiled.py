"""``tiled:SPEC``: a detector run on the whole image and again on overlapping tiles (slicing-aided
inference, as SAHI: Akyon et al., "Slicing Aided Hyper Inference and Fine-tuning for Small Object
Detection", ICIP 2022).

A fixed-input detector (YOLOX-nano: 416×416) sees a 640×480 photo at 0.65×, and loses the small
people and cars a traffic task counts. Each of the 2×2 tiles (overlapping by a quarter of the side) is
seen at about 1.1×. ::

    image ──► detector ─────────────────────────────┐
      └──► 4 tiles ──► detector ──► drop boxes cut ──┴──► all boxes ──► ground()'s NMS
                                    by a tile's inner edge

A box touching a tile's inner edge is an object the tile cut; the whole-image pass or a neighbouring
tile sees it whole.
"""

from __future__ import annotations

import numpy as np

from taskcodec.grounding.base import GroundingBackend, RawDetection

GRID = 2  # tiles per side
OVERLAP = 0.25  # of a tile's side
EDGE = 2  # pixels: a box this close to a tile's inner edge was cut by it


def tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The tiles' (x0, y0, x1, y1): GRID × GRID, neighbours overlapping by OVERLAP of a tile's side."""
    def spans(n: int) -> list[tuple[int, int]]:
        side = int(np.ceil(n / (GRID - (GRID - 1) * OVERLAP)))
        starts = np.linspace(0, n - side, GRID).round().astype(int)
        return [(int(s), int(s) + side) for s in starts]

    return [(x0, y0, x1, y1) for y0, y1 in spans(height) for x0, x1 in spans(width)]


class TiledBackend:
    """``tiled:SPEC``: the backend SPEC names, on the whole image and on ``tiles``; its classes and limits."""

    def __init__(self, inner: GroundingBackend):
        self.inner = inner
        self.spec = f"tiled:{inner.spec}"
        self.max_side = inner.max_side
        self.merge_iou = inner.merge_iou
        self.open_vocabulary = inner.open_vocabulary

    def class_map(self) -> dict[str, str]:
        return self.inner.class_map()

    def detect(self, pixels: np.ndarray, labels: list[str] | None = None,
               classes: set[str] | None = None) -> list[RawDetection]:
        """The whole image's detections, then each tile's that no inner tile edge cuts, in image pixels."""
        h, w = pixels.shape[:2]
        out = list(self.inner.detect(pixels, labels, classes))
        for x0, y0, x1, y1 in tiles(w, h):
            inner_edges = (x0 > 0, y0 > 0, x1 < w, y1 < h)
            for r in self.inner.detect(np.ascontiguousarray(pixels[y0:y1, x0:x1]), labels, classes):
                bx0, by0, bx1, by1 = r.box
                cut = (inner_edges[0] and bx0 <= EDGE, inner_edges[1] and by0 <= EDGE,
                       inner_edges[2] and bx1 >= x1 - x0 - EDGE, inner_edges[3] and by1 >= y1 - y0 - EDGE)
                if not any(cut):
                    out.append(r.model_copy(update={"box": (bx0 + x0, by0 + y0, bx1 + x0, by1 + y0)}))
        return out
