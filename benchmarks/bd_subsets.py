"""BD-rates of a ``taskcodec bench`` run recomputed on a subset of each curve's operating points.

A BD-rate integrates over the quality range two curves share, so which settings a curve was measured at
moves it: a denser AVIF curve reaches lower rates, a taskcodec point past the knee adds a stretch where
the curves are close. This replays a run's own points and bootstrap draws (``OUT/results.json``,
``OUT/draws.json``) with only the settings named, so the figures of one run can be read on several grids
without coding anything again::

    python benchmarks/bd_subsets.py bench-dense --keep avif=15,30,50,70 --keep classical=20,35,50,70 \
        [--target traffic=-40 --target all=-10]

``--keep NAME=Q,Q,...`` takes ``taskcodec bench --qualities``' names (``jpeg``, ``webp``, ``avif`` or a
codec); a curve not named keeps every point it has. Prints each taskcodec curve's BD-rate against AVIF
per COCO scenario, its 95 % interval and the share of draws at or under the scenario's target.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from taskcodec.bench import run as B
from taskcodec.bench.report import read_points
from taskcodec.errors import TaskcodecError


def load_points(out: Path) -> tuple[dict, list[dict]]:
    try:
        return read_points(out)
    except (OSError, KeyError, ValueError) as exc:
        raise SystemExit(f"{out}: not a bench output folder with results.json and draws.json ({exc})")


def keep_only(points: list[dict], specs: list[str], codecs: tuple[str, ...]) -> list[dict]:
    """The points whose setting ``specs`` keeps (``B.operating_points``' syntax; unnamed curves whole)."""
    named = {spec.partition("=")[0].strip() for spec in specs}
    chosen = B.operating_points(specs, codecs)
    keep = {(n if n in B.ANCHORS else f"taskcodec-{n}"): set(qs) for n, qs in chosen.items() if n in named}
    for curve, qs in keep.items():
        missing = qs - {p["setting"] for p in points if p["codec"] == curve}
        if missing:
            raise TaskcodecError(f"--keep {curve}: this run has no point at setting {', '.join(map(str, sorted(missing)))}")
    return [p for p in points if p["codec"] not in keep or p["setting"] in keep[p["codec"]]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the folder `taskcodec bench --out` wrote")
    ap.add_argument("--keep", action="append", default=[], metavar="NAME=Q,Q,...",
                    help="only these settings of one curve (repeatable)")
    ap.add_argument("--target", action="append", default=[], metavar="SCENARIO=PERCENT",
                    help="a BD-rate target for a scenario, e.g. traffic=-40")
    args = ap.parse_args()
    res, points = load_points(args.out)
    try:
        points = keep_only(points, args.keep, tuple(res.get("codecs", ["classical"])))
        targets = {s: float(v) for s, v in (t.split("=", 1) for t in args.target)}
    except (TaskcodecError, ValueError) as exc:
        raise SystemExit(f"error: {str(exc).replace('--qualities', '--keep', 1)}")
    for scen in B.SCENARIOS:
        for r in B.bd_table(points, "mAP", scen):
            if r["anchor"] != "avif" or not r["codec"].startswith("taskcodec-"):
                continue
            draws = np.array([d for d in r["boot"] if d is not None])
            ci = r["ci95"]
            text = "n/a" if r["bd_rate_percent"] is None else f"{r['bd_rate_percent']:+.1f} %"
            text += "" if ci is None else f" ({ci[0]:+.1f} to {ci[1]:+.1f})"
            if scen in targets and draws.size:
                text += f"; at or under {targets[scen]:+g} % in {np.mean(draws <= targets[scen]):.0%} of the draws"
            print(f"{scen:8s} {r['codec']}/{r['mode']:7s} vs AVIF: {text}")


if __name__ == "__main__":
    main()
