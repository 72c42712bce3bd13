"""Would an unsharp mask on the decoded picture raise the judge's mAP for free? (issue 16)

    .venv/bin/python benchmarks/postfilter_probe.py [--limit 100] [--mosaic] [--scenarios all,traffic]

The same bytes, judged as decoded and after ``x + a * (x - GaussianBlur(x, sigma))`` for each (sigma, a)
of ``FILTERS`` (a = 0: as decoded), for whole-image AVIF (quality 15, 30, 50) and the shipped classical
task stream (quality 20, 35, 50) on the training photos, with the pseudo ground truth and the mosaics of
``tune_classical.py`` (not coco-val158). Lanczos-4 enlarging, a sharper filter than bicubic, gained about
a BD-rate point on both tasks, which is why a decoder-side post filter was worth a look. Prints one line a
point: coder, quality, scenario, bpp, then the mAP under each filter.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tune_classical as T  # noqa: E402

FILTERS = [(1.0, 0.0), (1.0, 0.5), (1.0, 1.0), (2.0, 0.5), (2.0, 1.0)]  # (sigma, amount)


def unsharp(x: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    import cv2

    if amount == 0:
        return x
    xf = x.astype(np.float32)
    return np.clip(np.rint(xf + amount * (xf - cv2.GaussianBlur(xf, (0, 0), sigma))), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=100, help="the last N training photos")
    ap.add_argument("--mosaic", action="store_true", help="as tune_classical.py --mosaic")
    ap.add_argument("--scenarios", default="all,traffic")
    args = ap.parse_args()

    from taskcodec.bench import run as B
    from taskcodec.domain.policy import policy_from_labels
    from taskcodec.grounding import get_backend
    from taskcodec.grounding.onnx import COCO80
    from taskcodec.settings import get_settings

    paths = sorted((get_settings().shared_dir / "data" / "train" / "coco").glob("*.jpg"))[-args.limit:]
    judge = get_backend("tflite:yolov8n_int8.tflite")
    items = T.pseudo_ground_truth(paths, judge)
    if args.mosaic:
        items = T.mosaics(items)
    gt, cat_ids = T.coco_of(items)
    labels = {s: {"all": COCO80, "traffic": T.TRAFFIC}[s] for s in args.scenarios.split(",")}
    policies = {s: policy_from_labels(list(v), min_score=0.3) for s, v in labels.items()}
    grounded = {s: T.grounded_items(items, get_settings().grounding, labels[s], policies[s]) for s in labels}

    def report(coder: str, q: int, scen: str, coded: list[tuple[int, np.ndarray]]) -> None:
        bpp = np.mean([8 * n / it.pixels[..., 0].size for it, (n, _) in zip(items, coded)])
        maps = []
        for f in FILTERS:
            res = [r for it, (_, d) in zip(items, coded) for r in B.judge_results(judge, it, unsharp(d, *f), cat_ids)]
            maps.append(B.coco_map(gt, res, [i.id for i in items], [cat_ids[c] for c in labels[scen]])[0])
        print(coder, q, scen, f"{bpp:.4f}", " ".join(f"{m:.4f}" for m in maps), flush=True)

    print("filters (sigma, amount):", FILTERS, flush=True)
    for q in (15, 30, 50):
        coded = [B.whole_image(it.pixels, "AVIF", q) for it in items]
        for s in labels:
            report("avif", q, s, coded)
    for q in (20, 35, 50):
        for s in labels:
            report("task", q, s, [B.taskcodec_stream(it.pixels, grounded[s][it.id], policies[s], q)[:2] for it in items])


if __name__ == "__main__":
    main()
