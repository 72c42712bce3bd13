"""Encode and decode seconds of two learned-codec weights files, timed in one process.

    .venv/bin/python benchmarks/learned_weights_speed.py OLD.safetensors NEW.safetensors [--images 4] [--reps 4]

The two are timed alternately on the same Kodak images (whole-image mode, quality 50), so a
busy machine slows both alike; the medians tell whether new weights changed the codec's speed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskcodec.codec import bitstream, learned  # noqa: E402
from taskcodec.imageio import load_image  # noqa: E402
from taskcodec.settings import get_settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("weights", nargs=2)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--reps", type=int, default=4)
    args = ap.parse_args()
    kodak = get_settings().shared_path / "data" / "kodak"
    images = [load_image(p).pixels for p in sorted(kodak.glob("*.png"))[: args.images]]
    models = [learned.load_model(w) for w in args.weights]
    params = learned.Params(quality=50, full=True)
    for lm in models:  # warm-up
        learned.encode(images[0], [], params, model=lm)
    times = [([], []) for _ in models]
    for _ in range(args.reps):
        for lm, (enc, dec) in zip(models, times):
            for px in images:
                t0 = time.perf_counter()
                r = learned.encode(px, [], params, model=lm)
                t1 = time.perf_counter()
                learned.decode(bitstream.unpack(r.data), model=lm)
                enc.append(t1 - t0)
                dec.append(time.perf_counter() - t1)
    for lm, (enc, dec) in zip(models, times):
        print(f"{lm.model_id}: encode median {np.median(enc):.3f} s, decode median {np.median(dec):.3f} s "
              f"(n={len(enc)})")


if __name__ == "__main__":
    main()
