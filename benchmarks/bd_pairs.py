"""Paired bootstrap comparisons of the BD-rates in a ``taskcodec bench`` run's output folder.

``taskcodec bench --out OUT`` writes ``OUT/draws.json``: every BD-rate against AVIF and JPEG in each of
the same bootstrap resamples of the images (``taskcodec.bench.bootstrap``). Two curves coded from the
same photos are compared within a draw, so the interval of their difference is narrower than either
BD-rate's own interval would suggest, and a difference whose 95 % interval spans 0 is noise::

    python benchmarks/bd_pairs.py bench-out traffic taskcodec-classical/task taskcodec-classical/oracle \
        [--anchor avif] [--target -40]

prints both curves' BD-rates (the point figure, the draws' median and 95 % interval, and with
``--target`` the share of draws at or under it) and the interval of the first minus the second.
``--against OUT2`` reads the second curve from another run's folder: two runs of the same images
draw the same resamples (``bootstrap.resample_weights`` is seeded), so a codec setting measured in
one run can be compared with the same curve measured before the change, draw by draw.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from taskcodec.bench.bootstrap import interval


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the folder `taskcodec bench --out` wrote")
    ap.add_argument("scenario", help="all, traffic or kodak")
    ap.add_argument("first", help="CODEC/MODE, e.g. taskcodec-classical/task")
    ap.add_argument("second", help="CODEC/MODE to compare with, e.g. taskcodec-classical/oracle")
    ap.add_argument("--anchor", default="avif", help="avif or jpeg (default avif)")
    ap.add_argument("--target", type=float, help="a BD-rate target in percent (lower is better)")
    ap.add_argument("--against", type=Path, metavar="OUT2",
                    help="read the second curve from this other bench output folder (a run on the same images)")
    args = ap.parse_args()

    def load(out: Path) -> tuple[dict, list]:
        try:
            return (json.loads((out / "draws.json").read_text())["bd_rates"],
                    json.loads((out / "results.json").read_text())["bd_rates"])
        except (OSError, KeyError, ValueError) as exc:
            raise SystemExit(f"{out}: not a bench output folder with draws.json and results.json ({exc})")

    def curve(spec: str, out: Path) -> tuple[float | None, list]:
        draws, rows = load(out)
        codec, _, mode = spec.partition("/")
        key = f"{args.scenario}|{codec}|{mode or 'whole'}|{args.anchor}"
        if key not in draws:
            raise SystemExit(f"{out / 'draws.json'}: no BD-rate draws for {key!r}")
        point = next((r["bd_rate_percent"] for r in rows if "|".join(
            r[k] for k in ("scenario", "codec", "mode", "anchor")) == key), None)
        return point, draws[key]

    def line(name: str, point: float | None, values: list) -> str:
        got = np.array([v for v in values if v is not None])
        ci = interval(values)
        text = f"{name}: {'n/a' if point is None else f'{point:+.1f} %'}"
        if ci:
            text += f", median {np.median(got):+.1f}, 95 % interval {ci[0]:+.1f} to {ci[1]:+.1f}"
        if args.target is not None and len(got):
            text += f", at or under {args.target:+g} % in {np.mean(got <= args.target):.0%} of {len(got)} draws"
        return text

    (p1, d1), (p2, d2) = curve(args.first, args.out), curve(args.second, args.against or args.out)
    if len(d1) != len(d2):
        raise SystemExit(f"{args.against}: {len(d2)} bootstrap draws against {len(d1)} in {args.out}: "
                         "not the same images, so the draws do not pair")
    if args.against:
        args.second = f"{args.second} ({args.against})"
    print(f"{args.scenario}, BD-rate vs {args.anchor}, {len(d1)} draws")
    print(line(args.first, p1, d1))
    print(line(args.second, p2, d2))
    diff = [a - b for a, b in zip(d1, d2) if a is not None and b is not None]
    ci = interval(diff) if len(diff) >= len(d1) / 2 else None
    print(f"{args.first} minus {args.second}: " + ("n/a (too few draws with both)" if ci is None else
          f"median {np.median(diff):+.1f} points, 95 % interval {ci[0]:+.1f} to {ci[1]:+.1f}"
          + (" (spans 0: noise)" if ci[0] <= 0 <= ci[1] else "")))


if __name__ == "__main__":
    main()
