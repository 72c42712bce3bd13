"""Learned codec on Kodak, whole-image mode: rate–distortion against classical, JPEG, WebP, AVIF.

    .venv/bin/python benchmarks/learned_kodak.py [--limit N] [--weights FILE]

Per codec and operating point: mean bpp (every byte of the file), PSNR and MS-SSIM over
the Kodak images; BD-rate (PCHIP) of ``learned`` against each other codec on PSNR and
MS-SSIM; encode/decode seconds per image on this CPU; the side stream ẑ alone (bytes,
and the PSNR of decoding it alone: the free coarse base). Target (issue 5): BD-rate
(PSNR) <= -25 % against JPEG. Writes docs/benchmarks.md, section "learned".
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taskcodec.bench.metrics import bd_rate, ms_ssim, psnr  # noqa: E402
from taskcodec.bench.report import write_section  # noqa: E402
from taskcodec.bench.run import whole_image  # noqa: E402
from taskcodec.codec import bitstream, classical, learned  # noqa: E402
from taskcodec.imageio import load_image  # noqa: E402
from taskcodec.settings import get_settings  # noqa: E402

POINTS = {
    "jpeg": (5, 10, 20, 35, 50, 75, 90),
    "webp": (5, 15, 30, 55, 80, 90),
    "avif": (10, 20, 35, 50, 65, 80),
    "classical": (20, 35, 50, 70, 85),
    "learned": (1, 20, 40, 60, 80, 100),
}


def code(name: str, q: int, pixels: np.ndarray, lm) -> tuple[int, np.ndarray, float, float]:
    """(bytes, decoded, encode s, decode s)."""
    if name in ("jpeg", "webp", "avif"):
        t0 = time.perf_counter()
        n, dec = whole_image(pixels, name.upper(), q)
        return n, dec, time.perf_counter() - t0, 0.0
    mod, kw = (learned, {"model": lm}) if name == "learned" else (classical, {})
    t0 = time.perf_counter()
    r = mod.encode(pixels, [], mod.Params(quality=q, full=True), **kw)
    t1 = time.perf_counter()
    dec = mod.decode(bitstream.unpack(r.data), **kw).pixels
    return len(r.data), dec, t1 - t0, time.perf_counter() - t1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kodak", default=str(get_settings().shared_path / "data" / "kodak"))
    ap.add_argument("--limit", type=int)
    ap.add_argument("--weights")
    ap.add_argument("--out", default="bench-out/learned_kodak.json")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    lm = learned.load_model(args.weights)
    paths = sorted(Path(args.kodak).glob("*.png"))[: args.limit]
    images = [load_image(p).pixels for p in paths]
    learned.encode(images[0], [], learned.Params(quality=50, full=True), model=lm)  # warm-up
    rows, t_all = [], time.perf_counter()
    for name, qs in POINTS.items():
        for q in qs:
            acc = np.array([(8 * n / (px.shape[0] * px.shape[1]), psnr(d, px), ms_ssim(d, px), te, td)
                            for px in images for n, d, te, td in [code(name, q, px, lm)]])
            m = acc.mean(0)
            rows.append({"codec": name, "setting": q, "bpp": round(m[0], 5), "psnr": round(m[1], 3),
                         "ms_ssim": round(m[2], 5), "encode_s": round(m[3], 4), "decode_s": round(m[4], 4)})
            print(rows[-1], flush=True)
    side = []
    for px in images:  # ẑ alone: the base layer of a task stream with no object
        r = learned.encode(px, [], learned.Params(quality=50), model=lm)
        d = learned.decode(bitstream.unpack(r.data), model=lm)
        side.append((r.header.layers[0].length, len(r.data), psnr(d.pixels, px), 8 * len(r.data) / px[..., 0].size))
    side_m = np.array(side).mean(0)
    curves = {n: [(r["bpp"], r["psnr"]) for r in rows if r["codec"] == n] for n in POINTS}
    curves_ssim = {n: [(r["bpp"], r["ms_ssim"]) for r in rows if r["codec"] == n] for n in POINTS}
    bd = {a: (bd_rate(curves[a], curves["learned"]), bd_rate(curves_ssim[a], curves_ssim["learned"]))
          for a in POINTS if a != "learned"}
    result = {"images": len(images), "model": lm.model_id, "rows": rows, "bd_rate_vs": bd,
              "side": {"z_bytes": side_m[0], "file_bytes": side_m[1], "psnr": side_m[2], "bpp": side_m[3]},
              "seconds": round(time.perf_counter() - t_all, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    fmt = lambda v: "n/a (no overlap)" if v is None else f"{v:+.1f} %"  # noqa: E731
    lrow = [r for r in rows if r["codec"] == "learned"]
    lines = [
        f"Command: `python benchmarks/learned_kodak.py{' --limit ' + str(args.limit) if args.limit else ''}` "
        f"({len(images)} Kodak images, weights `{lm.model_id}`, {platform.machine()} CPU, "
        f"{result['seconds']} s in all).", "",
        "| learned vs | BD-rate (PSNR) | BD-rate (MS-SSIM) |", "|---|---|---|",
        *[f"| {a} | {fmt(v[0])} | {fmt(v[1])} |" for a, v in bd.items()], "",
        f"Target (issue 5): BD-rate (PSNR) <= -25 % against JPEG: {fmt(bd['jpeg'][0])}, "
        f"{'holds' if bd['jpeg'][0] is not None and bd['jpeg'][0] <= -25 else 'does not hold'}.", "",
        f"Side stream ẑ alone: {side_m[0]:.0f} bytes on average ({side_m[3]:.4f} bpp for the whole file with its "
        f"header); decoding it alone gives {side_m[2]:.2f} dB PSNR (the free coarse base).", "",
        f"Learned codec seconds per image on CPU: encode {np.mean([r['encode_s'] for r in lrow]):.2f}, "
        f"decode {np.mean([r['decode_s'] for r in lrow]):.2f} (mean over its operating points).", "",
        "| codec | setting | bpp | PSNR | MS-SSIM | encode s | decode s |", "|---|---|---|---|---|---|---|",
        *[f"| {r['codec']} | {r['setting']} | {r['bpp']:.4f} | {r['psnr']:.2f} | {r['ms_ssim']:.4f} | "
          f"{r['encode_s']:.3f} | {r['decode_s']:.3f} |" for r in rows],
    ]
    md = "\n".join(lines)
    print(md)
    if not args.no_docs:
        write_section("learned", "Learned codec on Kodak (issue 5)", md)


if __name__ == "__main__":
    main()
