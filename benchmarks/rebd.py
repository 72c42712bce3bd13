"""BD-rates against AVIF recomputed from the points table of a rate-accuracy section.

Reads the ``<!-- bench:start -->`` section of a docs/benchmarks.md (this one, or any commit's:
``git show REV:docs/benchmarks.md > old.md``), and prints every mAP curve's BD-rate against AVIF with
``taskcodec.bench.metrics.bd_rate`` as it is now. Used to compare runs measured before a change to the
BD-rate calculus on the same terms::

    python benchmarks/rebd.py old.md docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from taskcodec.bench.metrics import bd_rate


def points(text: str) -> dict[tuple[str, str, str], list[tuple[float, float]]]:
    """(scenario, codec, mode) -> [(bpp, mAP)] from the section's per-point table."""
    section = text.split("<!-- bench:start -->")[1].split("<!-- bench:end -->")[0]
    curves: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0] in ("all", "traffic") and re.fullmatch(r"\d+", cells[3]) and cells[5]:
            curves.setdefault((cells[0], cells[1], cells[2]), []).append((float(cells[4]), float(cells[5])))
    return curves


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    for path in ap.parse_args().files:
        curves = points(path.read_text())
        print(path)
        for (scenario, codec, mode), pts in sorted(curves.items()):
            if codec != "avif":
                v = bd_rate(curves[(scenario, "avif", "whole")], pts)
                print(f"  {scenario:8} {codec:22} {mode:7} {'n/a' if v is None else f'{v:+.1f} %'}")


if __name__ == "__main__":
    main()
