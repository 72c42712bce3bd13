"""``machine:detect``: a detector on the decoded image, COCO-format results.

The detector spec is any grounding spec (default ``yolox``, the packaged YOLOX-nano; ``opencv``, ``onnx:PATH``, ``tflite:PATH``,
``grounding-dino[:MODEL]``). Closed-vocabulary detectors report every COCO class;
an open-vocabulary one looks for ``--labels`` or, by default, the labels of the
transmitted layers.
"""

from __future__ import annotations

from taskcodec.domain.policy import policy_from_labels
from taskcodec.grounding import get_backend, ground
from taskcodec.grounding.onnx import COCO80

# COCO's 80 contiguous classes -> the dataset's category ids (1..90 with gaps).
COCO_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32,
            33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
            60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90)
CATEGORY_ID = dict(zip(COCO80, COCO_IDS))


def run(decoded, bs, options: dict) -> dict:
    spec = options.get("detector") or "yolox"
    threshold = float(options.get("threshold", 0.25))
    backend = get_backend(spec)
    labels = options.get("labels") or []
    if backend.open_vocabulary:
        labels = labels or sorted({e.label for e in decoded.layers if e.kind == "object" and e.label})
    policy = policy_from_labels(labels or list(COCO80), min_score=threshold)
    g = ground(decoded.pixels, policy, backend)
    dets = []
    for d in g.detections:
        if d.label is None or d.score < threshold:
            continue
        x0, y0, x1, y1 = d.box
        dets.append({"image_id": int(options.get("image_id") or 0),
                     "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                     "category_id": CATEGORY_ID.get(d.label), "score": round(d.score, 5), "label": d.label,
                     "class_name": d.class_name})
    return {"tool": "detect", "detector": g.backend, "threshold": threshold, "seconds": g.seconds, "detections": dets}
