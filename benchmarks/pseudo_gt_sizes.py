"""How many of the tuning photos' pseudo ground-truth objects are small, medium and large (issue 16).

    .venv/bin/python benchmarks/pseudo_gt_sizes.py [--limit 150] [--teacher SPEC ...] [--thresholds T ...] [--mosaic]

``benchmarks/tune_classical.py`` has no annotations: its ground truth is a detector's confident boxes on
the originals. COCO's annotators box every object they see, 41 % of them small (under 32×32 pixels),
34 % medium and 24 % large (Lin et al., "Microsoft COCO: Common Objects in Context", 2014, and the COCO
detection evaluation page). A ground truth with far fewer small objects cannot show what grounding
recall on small objects is worth. This prints each teacher's share by size at several score
thresholds, on all 80 classes and on the traffic classes, over the last N training photos (never
coco-val158). Boxes are merged by ``ground``'s NMS, as in the tuning script's ``--teacher``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.tune_classical import MOSAIC, TRAFFIC  # noqa: E402


def main() -> None:
    from taskcodec.domain.policy import policy_from_labels
    from taskcodec.grounding import get_backend, ground
    from taskcodec.grounding.onnx import COCO80
    from taskcodec.imageio import load_image
    from taskcodec.settings import get_settings

    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=150)
    ap.add_argument("--teacher", nargs="+",
                    default=["tflite:yolov8n_int8.tflite", "tiled:tflite:yolov8n_int8.tflite"])
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.3, 0.25])
    ap.add_argument("--mosaic", action="store_true",
                    help="sizes as in tune_classical.py --mosaic (each photo shrunk into a quarter of 640x480)")
    args = ap.parse_args()
    paths = sorted((get_settings().shared_dir / "data" / "train" / "coco").glob("*.jpg"))[-args.limit:]
    every = policy_from_labels(list(COCO80), min_score=min(args.thresholds))
    print("| teacher | score >= | classes | objects | small | medium | large |")
    print("|---|---|---|---|---|---|---|")
    for spec in args.teacher:
        teacher = get_backend(spec)
        found = []
        for p in paths:
            px = load_image(p).pixels
            s = min(MOSAIC[0] / 2 / px.shape[1], MOSAIC[1] / 2 / px.shape[0]) if args.mosaic else 1.0
            found += [(d.score, d.class_name in TRAFFIC, (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) * s * s)
                      for d in ground(px, every, teacher).detections]
        for thr in args.thresholds:
            for name, traffic_only in (("all 80", False), ("traffic", True)):
                areas = [a for s, t, a in found if s >= thr and (t or not traffic_only)]
                n = len(areas) or 1
                small = sum(a < 32 ** 2 for a in areas) / n
                medium = sum(32 ** 2 <= a < 96 ** 2 for a in areas) / n
                print(f"| `{spec}` | {thr} | {name} | {len(areas)} | {small:.0%} | {medium:.0%} | "
                      f"{1 - small - medium:.0%} |")


if __name__ == "__main__":
    main()
