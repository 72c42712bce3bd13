"""Object layers: code the residual over the upsampled base, or the pixels themselves? (issue 16, item 3)

    .venv/bin/python benchmarks/prediction.py [--limit 40] [--no-docs]

Measured on the codec training set's COCO photos (../shared/data/train/coco, not the benchmark set
coco-val158), so the choice is not tuned on what `taskcodec bench` reports. Each photo is grounded
with the shipped `yolox` on all 80 COCO classes (policy threshold 0.4); both designs then code the
same objects at the same qualities with the same base, and are compared on bytes against PSNR
inside the object layers' own pixels (the decode mask): BD-rate of design B against design A.
Every byte of the file counts, header included.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taskcodec.bench.metrics import bd_rate, psnr  # noqa: E402
from taskcodec.bench.report import write_section  # noqa: E402

QUALITIES = (20, 30, 40, 55, 70)
DESIGNS = {"A: pixels (P where not owned)": False, "B: residual over P": True}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()

    from taskcodec.domain.policy import policy_from_labels
    from taskcodec.codec import bitstream, classical
    from taskcodec.decisions import decide, requests_for
    from taskcodec.imageio import load_image
    from taskcodec.settings import get_settings
    from taskcodec.grounding import get_backend, ground
    from taskcodec.grounding.onnx import COCO80

    folder = get_settings().shared_dir / "data" / "train" / "coco"
    paths = sorted(folder.glob("*.jpg"))[: args.limit]
    policy = policy_from_labels(list(COCO80))
    backend = get_backend("yolox")
    work = []
    for p in paths:
        px = load_image(p).pixels
        reqs = requests_for(decide(ground(px, policy, backend), policy), policy.rules)
        if reqs:
            work.append((px, reqs))
    curves: dict[str, list[tuple[float, float]]] = {}
    rows = []
    for name, pred in DESIGNS.items():
        for q in QUALITIES:
            nbytes = pix = 0
            scores, t0 = [], time.perf_counter()
            for px, reqs in work:
                r = classical.encode(px, reqs, classical.Params(quality=q, predict=pred))
                d = classical.decode(bitstream.unpack(r.data))
                nbytes += len(r.data)
                pix += px.shape[0] * px.shape[1]
                scores.append(psnr(d.pixels, px, d.mask))
            bpp = 8 * nbytes / pix
            ps = float(np.mean([s for s in scores if s is not None]))
            secs = (time.perf_counter() - t0) / len(work)
            curves.setdefault(name, []).append((bpp, ps))
            rows.append(f"| {name} | {q} | {bpp:.4f} | {ps:.2f} | {secs:.3f} |")
            print(rows[-1], flush=True)
    (a, ca), (b, cb) = curves.items()
    bd = bd_rate(ca, cb)
    verdict = f"BD-rate of B against A (PSNR in the object layers): **{bd:+.1f} %**"
    print(verdict)
    body = "\n".join([
        f"Command: `python benchmarks/prediction.py --limit {args.limit}` on {platform.machine()} with "
        f"{os.cpu_count()} CPU cores; {len(work)} photos of ../shared/data/train/coco with at least one object "
        "(the training set, not coco-val158), grounded by `yolox` on all 80 COCO classes at the policy's 0.4.", "",
        "| design | quality | bpp | PSNR in object layers (dB) | s / image (encode + decode) |",
        "|---|---|---|---|---|", *rows, "", verdict + ". Negative: B needs fewer bytes for the same PSNR.",
    ])
    if not args.no_docs:
        write_section("prediction", "Object layers: residual over the base vs pixels (issue 16)", body)


if __name__ == "__main__":
    main()
