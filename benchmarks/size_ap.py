"""Where the task stream's bytes go, and its AP per object size next to AVIF's, on the mosaics (issue 16).

    .venv/bin/python benchmarks/size_ap.py [--limit 160] [--grounding SPEC|oracle] [--variant shipped]

On mosaics of the last N training photos (``tune_classical.mosaics``; never coco-val158), traffic
policy: AVIF at qualities 15, 30, 50 and the classical task stream (the tuning script's ``--variant``
knobs) at 20, 35, 50. Printed per point: bpp, the non-payload bpp, the base's bpp, and for object
layers by the size of their box (COCO's small < 32², medium < 96², large) their bpp, count and mean
bytes; then the judge's mAP and COCO's AP for small, medium and large ground-truth objects
(pycocotools' ``stats[3:6]``; -1 where a size has no object).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.tune_classical import TRAFFIC, apply, coco_of, grounded_items, mosaics, pseudo_ground_truth  # noqa: E402


def size_class(box) -> str:
    area = (box[2] - box[0]) * (box[3] - box[1])
    return "small" if area < 32 * 32 else "medium" if area < 96 * 96 else "large"


def main() -> None:
    from pycocotools.cocoeval import COCOeval

    from taskcodec.bench import run as B
    from taskcodec.codec import bitstream, get_codec
    from taskcodec.decisions import decide, requests_for
    from taskcodec.domain.policy import policy_from_labels
    from taskcodec.grounding import get_backend
    from taskcodec.settings import get_settings

    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=160)
    ap.add_argument("--grounding", default=None, help="grounding spec (default: the configured); 'oracle': the ground truth")
    ap.add_argument("--variant", default="shipped", help="tune_classical.py variant, e.g. shipped or cov50+baseq0")
    args = ap.parse_args()
    apply(args.variant)
    paths = sorted((get_settings().shared_dir / "data" / "train" / "coco").glob("*.jpg"))[-args.limit:]
    judge = get_backend("tflite:yolov8n_int8.tflite")
    items = mosaics(pseudo_ground_truth(paths, judge))
    gt, cat_ids = coco_of(items)
    policy = policy_from_labels(list(TRAFFIC), min_score=0.3)
    grounded = grounded_items(items, args.grounding or get_settings().grounding, TRAFFIC, policy)
    codec = get_codec("classical")
    npix = sum(it.pixels.shape[0] * it.pixels.shape[1] for it in items)

    def aps(results) -> str:
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(gt, gt.loadRes(results), "bbox")
            ev.params.imgIds, ev.params.catIds = [i.id for i in items], [cat_ids[c] for c in TRAFFIC]
            ev.evaluate(), ev.accumulate(), ev.summarize()
        return " | ".join(f"{ev.stats[k]:.3f}" for k in (0, 3, 4, 5))

    sizes = collections.Counter(size_class(b) for it in items for c, b in it.boxes if c in TRAFFIC)
    print(f"{len(items)} mosaics; traffic ground truth: " + ", ".join(f"{sizes[k]} {k}" for k in ("small", "medium", "large")))
    print("| coder | bpp | non-payload bpp | base bpp | small layers: bpp / n / mean B | medium | large "
          "| mAP | AP small | AP medium | AP large |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for q in (15, 30, 50):
        results, total = [], 0
        for it in items:
            n, decoded = B.whole_image(it.pixels, "AVIF", q)
            total += n
            results += B.judge_results(judge, it, decoded, cat_ids)
        print(f"| AVIF q{q} | {8 * total / npix:.3f} | | | | | | {aps(results)} |", flush=True)
    for q in (20, 35, 50):
        results, total, non_payload = [], 0, 0
        nbytes, count = collections.Counter(), collections.Counter()
        for it in items:
            r = codec.encode(it.pixels, requests_for(decide(grounded[it.id], policy), policy.rules), codec.Params(quality=q))
            bs = bitstream.unpack(r.data)
            total += len(r.data)
            non_payload += len(r.data) - sum(map(len, bs.payloads))
            for e, p in zip(bs.layers, bs.payloads):
                k = "base" if e.kind == "base" else size_class(e.box)
                nbytes[k] += len(p)
                count[k] += 1
            results += B.judge_results(judge, it, codec.decode(bs).pixels, cat_ids)
        layers = " | ".join(f"{8 * nbytes[k] / npix:.3f} / {count[k]} / {nbytes[k] / max(1, count[k]):.0f}"
                            for k in ("small", "medium", "large"))
        print(f"| task stream q{q} | {8 * total / npix:.3f} | {8 * non_payload / npix:.3f} | "
              f"{8 * nbytes['base'] / npix:.3f} | {layers} | {aps(results)} |", flush=True)


if __name__ == "__main__":
    main()
