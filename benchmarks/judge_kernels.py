"""How much the judge's score depends on which kernels run it (issue 16).

    .venv/bin/python benchmarks/judge_kernels.py [--limit N] [--resolvers default,...] [--no-docs]

The bench's judge (``tflite:yolov8n_int8.tflite``) scores the coco-val158 originals (the bench's
ceiling) once per LiteRT op resolver: ``default`` is what ``taskcodec bench`` uses (the XNNPACK
delegate, whose kernels are chosen per processor); ``BUILTIN_WITHOUT_DEFAULT_DELEGATES`` is LiteRT's
own optimised kernels; ``BUILTIN_REF`` its reference kernels. Same images, same model, same machine:
any difference in mAP is the arithmetic's, and it bounds how finely the bench can tell two codecs apart.
Prints, and writes to docs/benchmarks.md, mAP@[.5:.95] on all objects and on traffic, seconds per
image and the number of detections.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

JUDGE = "tflite:yolov8n_int8.tflite"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--resolvers", default="default,BUILTIN_WITHOUT_DEFAULT_DELEGATES,BUILTIN_REF")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()

    from taskcodec.bench import run as B
    from taskcodec.bench.report import write_section
    from taskcodec.grounding import get_backend
    from taskcodec.grounding.tflite import TFLiteDetector
    from taskcodec.settings import get_settings

    root = get_settings().shared_dir / "data" / "coco-val158"
    gt, items = B.load_coco(root / "images", root / "instances.json", args.limit)
    cat_ids = {c["name"]: c["id"] for c in gt.loadCats(gt.getCatIds())}
    model = get_backend(JUDGE).spec.split(":", 1)[1]  # the bench's judge, its path resolved as the bench does
    ids = [it.id for it in items]
    rows, measured = [], []
    for name in args.resolvers.split(","):
        judge = TFLiteDetector(model, resolver=None if name == "default" else name)
        t0 = time.perf_counter()
        results = [r for it in items for r in B.judge_results(judge, it, it.pixels, cat_ids)]
        seconds = (time.perf_counter() - t0) / len(items)
        scores = {scen: B.coco_map(gt, results, ids, [cat_ids[c] for c in labels])[0]
                  for scen, (_, labels) in B.SCENARIOS.items()}
        print(f"{name}: " + ", ".join(f"{s} {m:.4f}" for s, m in scores.items())
              + f"; {seconds:.3f} s / image; {len(results)} detections", flush=True)
        measured.append(scores)
        rows.append(f"| `{name}` | " + " | ".join(f"{m:.4f}" for m in scores.values())
                    + f" | {len(results)} | {seconds:.3f} |")
    if args.no_docs:
        return
    spread = {s: max(m[s] for m in measured) - min(m[s] for m in measured) for s in B.SCENARIOS}
    body = "\n".join([
        f"Command: `python benchmarks/judge_kernels.py` on {platform.machine()} with {os.cpu_count()} CPU cores: "
        f"the judge `{JUDGE}` on the {len(items)} coco-val158 originals (the bench's ceiling), once per LiteRT "
        "op resolver; same images, model and machine.", "",
        "| op resolver | mAP, " + " | mAP, ".join(B.SCENARIOS) + " | detections | s / image |",
        "|---|" + "---|" * (len(B.SCENARIOS) + 2), *rows, "",
        "`default` is what `taskcodec bench` runs (LiteRT's XNNPACK delegate, whose kernels are chosen per "
        "processor); the others are LiteRT's own optimised and reference kernels. The arithmetic alone moves "
        "the ceiling by " + " and ".join(f"{v:.4f} ({s})" for s, v in spread.items()) + ". A difference in "
        "mAP of that size between two runs of the same files can come from the judge alone.",
    ])
    write_section("judge-kernels", "The judge's arithmetic (issue 16)", body)


if __name__ == "__main__":
    main()
