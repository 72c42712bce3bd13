"""Grounding benchmark: COCO mAP and recall of each backend on ../shared/data/coco-val158, and speed.

    .venv/bin/python benchmarks/grounding.py [--limit N] [--threshold 0.01] [--operating 0.4] [--backends SPEC ...]

Recall is counted at the operating threshold (the default policy's ``min_score``, 0.4):
the share of ground-truth objects (COCO's non-crowd boxes) that a detection of the right
class at that score or above overlaps with IoU >= 0.5, one detection per object, over all
80 classes and over the traffic task's classes (person, bicycle, car, motorcycle, bus,
truck, traffic light, stop sign). Objects the grounding misses are never sent.

The detections scored are exactly what ``taskcodec ground --labels <80 COCO classes>
--threshold T --json`` prints (both call ``stages.ground_report``). The policy is
"all COCO classes". Results go to OUT/grounding.json and into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taskcodec.bench.report import write_section  # noqa: E402


TRAFFIC = ("person", "bicycle", "car", "motorcycle", "bus", "truck", "traffic light", "stop sign")


def recall(gt, results: list[dict], images: list[dict], cat_ids: set[int] | None) -> float:
    """Share of non-crowd ground-truth boxes (of ``cat_ids``, or all) matched at IoU >= 0.5 by a
    same-class detection, greedily by score, one detection per box."""
    from pycocotools import mask as maskutils

    found = total = 0
    for img in images:
        anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=img["id"], iscrowd=False))
                if cat_ids is None or a["category_id"] in cat_ids]
        total += len(anns)
        for cat in {a["category_id"] for a in anns}:
            gts = [a["bbox"] for a in anns if a["category_id"] == cat]
            dets = sorted((r for r in results if r["image_id"] == img["id"] and r["category_id"] == cat),
                          key=lambda r: -r["score"])
            if not dets:
                continue
            ious = maskutils.iou([d["bbox"] for d in dets], gts, [0] * len(gts))
            taken: set[int] = set()
            for row in ious:
                best = max((j for j in range(len(gts)) if j not in taken and row[j] >= 0.5),
                           key=lambda j: row[j], default=None)
                if best is not None:
                    taken.add(best)
            found += len(taken)
    return found / total if total else 0.0


def main() -> None:
    from taskcodec.settings import get_settings

    shared = get_settings().shared_path
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coco", type=Path, default=shared / "data" / "coco-val158")
    ap.add_argument("--backends", nargs="+",
                    default=["yolox+saliency", "yolox", "nanodet", "tiled:yolox", "yolox|nanodet", "opencv"])
    ap.add_argument("--threshold", type=float, default=0.01)
    ap.add_argument("--operating", type=float, default=0.4, help="score threshold for recall (policy min_score)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()

    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from taskcodec import stages
    from taskcodec.domain.policy import policy_from_labels
    from taskcodec.grounding.onnx import COCO80

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(args.coco / "instances.json"))
    name_to_id = {c["name"]: c["id"] for c in gt.loadCats(gt.getCatIds())}
    images = gt.loadImgs(sorted(gt.getImgIds()))[: args.limit]
    policy = policy_from_labels(list(COCO80))
    rows = []
    for spec in args.backends:
        results, seconds = [], []
        stages.ground_report(args.coco / "images" / images[0]["file_name"], policy, spec, args.threshold)  # warm up
        for img in images:
            t0 = time.perf_counter()
            rep = stages.ground_report(args.coco / "images" / img["file_name"], policy, spec, args.threshold)
            seconds.append(time.perf_counter() - t0)
            for d in rep["detections"]:
                x0, y0, x1, y1 = d["box"]
                results.append({"image_id": img["id"], "category_id": name_to_id[d["label"]],
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "score": d["score"]})
        stats = [0.0] * 12
        if results:
            with contextlib.redirect_stdout(io.StringIO()):
                ev = COCOeval(gt, gt.loadRes(results), "bbox")
                ev.params.imgIds = [i["id"] for i in images]
                ev.evaluate(), ev.accumulate(), ev.summarize()
            stats = [float(v) for v in ev.stats]
        operating = [r for r in results if r["score"] >= args.operating]
        recall_all = recall(gt, operating, images, None)
        recall_traffic = recall(gt, operating, images, {name_to_id[n] for n in TRAFFIC})
        rows.append({"backend": spec, "images": len(images), "detections": len(results), "mAP": round(stats[0], 4),
                     "AP50": round(stats[1], 4), "recall_all": round(recall_all, 4),
                     "recall_traffic": round(recall_traffic, 4), "s_per_image": round(float(np.mean(seconds)), 4)})
        print(json.dumps(rows[-1]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grounding.json").write_text(json.dumps(rows, indent=2))
    if not args.no_docs:
        cmd = "python benchmarks/grounding.py " + " ".join(sys.argv[1:])
        lines = [
            f"Command: `{cmd.strip()}` on {platform.machine()} with {os.cpu_count()} CPU cores (no GPU), "
            f"threshold {args.threshold} for AP, {args.operating} (the default policy's) for recall, {len(images)} "
            "images of coco-val158, policy: all 80 COCO classes.",
            "",
            f"| backend | mAP@[.5:.95] | AP50 | recall @ {args.operating}, all | recall @ {args.operating}, traffic "
            "| detections | s / image |",
            "|---|---|---|---|---|---|---|",
            *[f"| `{r['backend'].replace('|', chr(92) + '|')}` | {r['mAP']:.3f} | {r['AP50']:.3f} | {r['recall_all']:.3f} | "
              f"{r['recall_traffic']:.3f} | {r['detections']} | {r['s_per_image']:.3f} |" for r in rows],
            "",
            "Recall: share of ground-truth objects found (IoU >= 0.5, right class) at the operating threshold; "
            "traffic = person, bicycle, car, motorcycle, bus, truck, traffic light, stop sign. "
            "Reference mAP measured independently (../shared/README.md): YOLOX-nano 0.278, NanoDet-m 0.239. "
            "`opencv` finds only people (and cat faces), so its COCO mAP is near zero by design. "
            "`yolox+saliency` is the shipped default: on this all-COCO policy its saliency member is not run "
            "(no policy label needs it), so it equals `yolox`; add `--backends saliency` for the U²-Net-p member's "
            "own time (its COCO mAP is 0: it finds `main subject`, no COCO class). `tiled:yolox`: YOLOX-nano on the "
            "whole image and on 2x2 overlapping tiles; `yolox|nanodet`: both detectors, what both find merged.",
        ]
        write_section("grounding", "Grounding: COCO mAP, recall and speed (issues 4, 20)", "\n".join(lines))


if __name__ == "__main__":
    main()
