"""SVT-AV1 encoder settings for the classical codec's rasters, on training photos (issue 16).

    .venv/bin/python benchmarks/svt_params.py [--limit 12] "enable-variance-boost=1" "tune=2" ...

Each argument is an ``svtav1-params`` string, tried against the shipped encoder (``taskcodec.codec.av1``:
preset 6, libavif's quality-to-CRF mapping, ``SVT_PARAMS`` empty) on the last N photos of
../shared/data/train/coco (cropped to 624x464), at qualities 20, 35, 50 and 70. Prints bpp/PSNR per
quality, seconds, and the BD-rate (PSNR) against the shipped settings. These settings change only the
encoder: every stream they write decodes with any taskcodec, so a setting that paid would need no
format change.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUALITIES = (20, 35, 50, 70)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("params", nargs="*")
    ap.add_argument("--limit", type=int, default=12)
    args = ap.parse_args()

    from PIL import Image

    from taskcodec.bench.metrics import bd_rate, psnr
    from taskcodec.codec import av1
    from taskcodec.settings import get_settings

    paths = sorted((get_settings().shared_dir / "data" / "train" / "coco").glob("*.jpg"))[-args.limit:]
    images = [np.ascontiguousarray(np.asarray(Image.open(p).convert("RGB"))[:464, :624]) for p in paths]
    pixels = sum(im.shape[0] * im.shape[1] for im in images)
    curves = {}
    for params in ["", *args.params]:
        t0, curve = time.perf_counter(), []
        for q in QUALITIES:
            av1.SVT_PARAMS = params
            coded = [av1.encode_av1(im, q) for im in images]
            decoded = [av1.decode_av1(d, (im.shape[1], im.shape[0]), "raster") for d, im in zip(coded, images)]
            curve.append((8 * sum(map(len, coded)) / pixels,
                          float(np.mean([psnr(im, out) for im, out in zip(images, decoded)]))))
        curves[params] = curve
        bd = bd_rate(curves[""], curve)
        print(f"{params or '(shipped)'!r}: " + ", ".join(f"{b:.3f}/{p:.2f}" for b, p in curve)
              + f"; {time.perf_counter() - t0:.1f} s; BD-rate (PSNR) vs shipped {bd:+.1f} %", flush=True)


if __name__ == "__main__":
    main()
