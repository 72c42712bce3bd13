"""Grounding benchmark: COCO mAP of each backend on ../shared/data/coco-val158, and speed.

    .venv/bin/python benchmarks/grounding.py [--limit N] [--threshold 0.01] [--backends SPEC ...]

The detections scored are exactly what ``taskcodec ground --labels <80 COCO classes>
--threshold T --json`` prints (both call ``pipeline.ground_report``). The policy is
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


def main() -> None:
    from taskcodec.settings import get_settings

    shared = get_settings().shared_path
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coco", type=Path, default=shared / "data" / "coco-val158")
    ap.add_argument("--backends", nargs="+", default=["onnx:yolox_nano.onnx", "onnx:nanodet_m.onnx", "opencv"])
    ap.add_argument("--threshold", type=float, default=0.01)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()

    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from taskcodec import pipeline
    from taskcodec.agents.policy import policy_from_labels
    from taskcodec.tools.grounding.onnx import COCO80

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(args.coco / "instances.json"))
    name_to_id = {c["name"]: c["id"] for c in gt.loadCats(gt.getCatIds())}
    images = gt.loadImgs(sorted(gt.getImgIds()))[: args.limit]
    policy = policy_from_labels(list(COCO80))
    rows = []
    for spec in args.backends:
        results, seconds = [], []
        pipeline.ground_report(args.coco / "images" / images[0]["file_name"], policy, spec, args.threshold)  # warm up
        for img in images:
            t0 = time.perf_counter()
            rep = pipeline.ground_report(args.coco / "images" / img["file_name"], policy, spec, args.threshold)
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
        rows.append({"backend": spec, "images": len(images), "detections": len(results), "mAP": round(stats[0], 4),
                     "AP50": round(stats[1], 4), "s_per_image": round(float(np.mean(seconds)), 4)})
        print(json.dumps(rows[-1]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grounding.json").write_text(json.dumps(rows, indent=2))
    if not args.no_docs:
        cmd = "python benchmarks/grounding.py " + " ".join(sys.argv[1:])
        lines = [
            f"Command: `{cmd.strip()}` on {platform.machine()} with {os.cpu_count()} CPU cores (no GPU), "
            f"threshold {args.threshold}, {len(images)} images of coco-val158, policy: all 80 COCO classes.",
            "",
            "| backend | mAP@[.5:.95] | AP50 | detections | s / image |",
            "|---|---|---|---|---|",
            *[f"| `{r['backend']}` | {r['mAP']:.3f} | {r['AP50']:.3f} | {r['detections']} | {r['s_per_image']:.3f} |"
              for r in rows],
            "",
            "Reference mAP measured independently (../shared/README.md): YOLOX-nano 0.278, NanoDet-m 0.239. "
            "`opencv` finds only people (and cat faces), so its COCO mAP is near zero by design; it is listed "
            "for its speed.",
        ]
        write_section("grounding", "Grounding: COCO mAP and speed (issue 4)", "\n".join(lines))


if __name__ == "__main__":
    main()
