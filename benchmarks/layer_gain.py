"""Does every object layer make its pixels better than the base alone? (issue 16)

    .venv/bin/python benchmarks/layer_gain.py [--limit 40] [--grounding yolox tiled:yolox]

On mosaics of the last N training photos (``tune_classical.mosaics``), traffic policy, qualities 20,
35 and 50: each stream is decoded with 0, 1, 2, ... object layers, and a layer counts as *worse* when
the pixels it changed are further (mean squared error) from the original than before it. Printed per
grounding and quality: layers of the high and medium tiers, then of the low tier (low-confidence
objects and the policy's least important labels), how many were worse, their bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmarks.tune_classical import TRAFFIC, mosaics, pseudo_ground_truth  # noqa: E402


def main() -> None:
    from taskcodec.codec import bitstream, classical
    from taskcodec.decisions import decide, requests_for
    from taskcodec.domain.policy import policy_from_labels
    from taskcodec.grounding import get_backend, ground
    from taskcodec.settings import get_settings

    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--grounding", nargs="+", default=["yolox", "tiled:yolox"])
    args = ap.parse_args()
    paths = sorted((get_settings().shared_dir / "data" / "train" / "coco").glob("*.jpg"))[-args.limit:]
    items = mosaics(pseudo_ground_truth(paths, get_backend("tflite:yolov8n_int8.tflite")))
    policy = policy_from_labels(list(TRAFFIC), min_score=0.3)
    print("| grounding | quality | high/medium-tier layers | worse | bytes | low-tier layers | worse | bytes |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in args.grounding:
        backend = get_backend(spec)
        for q in (20, 35, 50):
            n = {"confident": [0, 0, 0], "low": [0, 0, 0]}
            for it in items:
                reqs = requests_for(decide(ground(it.pixels, policy, backend), policy), policy.rules)
                r = classical.encode(it.pixels, reqs, classical.Params(quality=q))
                bs = bitstream.unpack(r.data)
                x = it.pixels.astype(np.float32)
                low = {o.layer_index for o, req in zip(r.outcomes, reqs) if req.tier == "low"}
                prev = classical.decode(bs, max_objects=0).pixels.astype(np.float32)
                for k in range(1, len(bs.layers)):
                    cur = classical.decode(bs, max_objects=k).pixels.astype(np.float32)
                    changed = np.any(cur != prev, axis=2)
                    if changed.any():
                        row = n["low" if k in low else "confident"]
                        row[0] += 1
                        row[1] += int(((cur[changed] - x[changed]) ** 2).mean() >= ((prev[changed] - x[changed]) ** 2).mean())
                        row[2] += len(bs.payloads[k])
                    prev = cur
            print(f"| `{spec}` | {q} | " + " | ".join(f"{v:,}" for k in ("confident", "low") for v in n[k]) + " |",
                  flush=True)


if __name__ == "__main__":
    main()
