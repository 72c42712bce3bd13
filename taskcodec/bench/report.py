"""What a benchmark writes: ``taskcodec bench``'s results (JSON, CSV, plots, a Markdown summary) and
one section of a Markdown file (the checkout's docs/benchmarks.md for the scripts in benchmarks/, the
file ``taskcodec bench --docs FILE`` names), keeping the others."""

from __future__ import annotations

import csv
import datetime
import json
import re
from pathlib import Path

import numpy as np

from taskcodec.bench.metrics import bpp_at_share

DOC = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"  # this checkout's, for benchmarks/
HEAD = "# Benchmarks\n\nEvery figure below was written by the script named in its section; rerun it to refresh.\n"


def write_section(key: str, title: str, body: str, doc: Path = DOC) -> None:
    import taskcodec

    text = doc.read_text() if doc.exists() else HEAD
    stamp = f"_Measured {datetime.date.today().isoformat()}, taskcodec {taskcodec.__version__}._"
    block = f"<!-- {key}:start -->\n## {title}\n\n{stamp}\n\n{body}\n<!-- {key}:end -->"
    pattern = re.compile(rf"<!-- {key}:start -->.*?<!-- {key}:end -->", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def point_key(p: dict) -> str:
    """A point's key in ``draws.json``: scenario|codec|mode|setting."""
    return "|".join(str(p[k]) for k in ("scenario", "codec", "mode", "setting"))


def read_points(out: Path) -> tuple[dict, list[dict]]:
    """What ``write_outputs`` wrote to ``out``: the results, and their points with each one's bootstrap
    draws back under ``boot`` (None where it has none)."""
    result = json.loads((out / "results.json").read_text())
    draws = json.loads((out / "draws.json").read_text())["points"]
    return result, [{**p, "boot": draws.get(point_key(p))} for p in result["points"]]


def write_outputs(result: dict, out: Path) -> None:
    from taskcodec.imageio import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    # the bootstrap draws in a file of their own: every point's, keyed as the points are listed, and
    # every BD-rate's, keyed as the BD-rates are
    strip = lambda rows: [{k: v for k, v in r.items() if k != "boot"} for r in rows]  # noqa: E731
    draws = {"points": {point_key(p): p["boot"] for p in result["points"] if p.get("boot")},
             "bd_rates": {"|".join(r[k] for k in ("scenario", "codec", "mode", "anchor")): r["boot"]
                          for r in result["bd_rates"] if r.get("boot")}}
    atomic_write_bytes(out / "results.json", json.dumps(
        {**result, "points": strip(result["points"]), "bd_rates": strip(result["bd_rates"])}, indent=2).encode())
    atomic_write_bytes(out / "draws.json", json.dumps(draws, separators=(",", ":")).encode())
    cols = ["scenario", "codec", "mode", "setting", "bpp", "mAP", "AP50", "psnr", "psnr_objects", "ms_ssim",
            "seconds_per_image", "non_payload_share"]
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(result["points"])
    plot(result, out)


def plot(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for scen, metric in [("all", "mAP"), ("traffic", "mAP"), ("kodak", "psnr")]:
        pts = [p for p in result["points"] if p["scenario"] == scen and p.get(metric) is not None]
        if not pts:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for key in sorted({(p["codec"], p["mode"]) for p in pts}):
            cur = sorted((p["bpp"], p[metric]) for p in pts if (p["codec"], p["mode"]) == key)
            ax.plot(*zip(*cur), marker="o", label=f"{key[0]} ({key[1]})")
        if metric == "mAP" and scen in result["ceiling"]:
            ax.axhline(result["ceiling"][scen]["mAP"], color="grey", ls="--", label="originals")
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel (whole file)")
        ax.set_ylabel(metric)
        ax.set_title(f"{scen}: {metric} vs rate")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"{scen}_{metric}.png", dpi=110)
        plt.close(fig)


def summary_markdown(result: dict, command: str) -> str:
    def row(scen, codec, mode, anchor) -> dict:
        for r in result["bd_rates"]:
            if (r["scenario"], r["codec"], r["mode"], r["anchor"]) == (scen, codec, mode, anchor):
                return r
        return {}

    def bd(*key):
        return row(*key).get("bd_rate_percent")

    def fmt(v, ci=None):
        if v is None:
            return "n/a (curves do not overlap)"
        return f"{v:+.1f} %" + ("" if not ci else f" ({ci[0]:+.1f} to {ci[1]:+.1f})")
    lines = [f"Command: `{command}` ({result['images']} COCO images, grounding `{result['grounding']}` at "
             f"{result['grounding_threshold']}, judge `{result['judge']}`; {result['machine']}; "
             f"{result.get('workers', 1)} operating points at a time; {result['seconds']} s in all). Versions: "
             + ", ".join(f"{k} {v}" for k, v in result["versions"].items()) + ".", "",
             "Judge mAP@[.5:.95] on the originals (the ceiling): "
             + ", ".join(f"{s} {c['mAP']:.3f}" for s, c in result["ceiling"].items()) + ".", "",
             "BD-rates with, in brackets, their 95 % interval over bootstrap resamples of the images (the same "
             f"{_draws(result)} draws for every curve; `taskcodec.bench.bootstrap`): how far the figure depends on "
             "which images were drawn.", "",
             "| scenario | codec | mode | BD-rate vs AVIF | BD-rate vs JPEG | metric |", "|---|---|---|---|---|---|"]
    seen = set()
    for r in result["bd_rates"]:
        key = (r["scenario"], r["codec"], r["mode"])
        if key in seen:
            continue
        seen.add(key)
        cell = lambda anchor: ("(anchor)" if key[1:] == (anchor, "whole")  # noqa: E731
                               else fmt(bd(*key, anchor), row(*key, anchor).get("ci95")))
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {cell('avif')} | {cell('jpeg')} | {r['quality_metric']} |")
    lines += ["", "bpp at which each curve first reaches 95 % of the originals' mAP (interpolated in log-bpp; "
              "\"not reached\" gives the best mAP share it got):", "",
              "| scenario | codec | mode | bpp at 95 % mAP | AVIF's | ratio to AVIF |", "|---|---|---|---|---|---|"]
    for scen, ceiling in result["ceiling"].items():
        curves: dict[tuple[str, str], list[dict]] = {}
        for p in result["points"]:
            if p["scenario"] == scen and p.get("mAP") is not None:
                curves.setdefault((p["codec"], p["mode"]), []).append(p)
        avif = bpp_at_share(curves.get(("avif", "whole"), []), ceiling["mAP"])
        for (codec, mode), pts in curves.items():
            b = bpp_at_share(pts, ceiling["mAP"])
            best = max(p["mAP"] for p in pts) / ceiling["mAP"] if ceiling["mAP"] else 0
            cell = f"{b:.4f}" if b is not None else f"not reached ({best:.0%})"
            ratio = f"{b / avif:.2f}" if b is not None and avif else ""
            lines.append(f"| {scen} | {codec} | {mode} | {cell} | {'' if avif is None else f'{avif:.4f}'} | {ratio} |")
    lines += ["", "| scenario | codec | mode | setting | bpp | mAP | AP50 | PSNR | PSNR in objects | MS-SSIM | s/img "
              "| not payload |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in result["points"]:
        share = p.get("non_payload_share")
        lines.append(f"| {p['scenario']} | {p['codec']} | {p['mode']} | {p['setting']} | {p['bpp']:.4f} | "
                     f"{p.get('mAP', '')} | {p.get('AP50', '')} | {p['psnr']:.2f} | {p['psnr_objects'] or ''} | "
                     f"{p['ms_ssim']:.4f} | {p['seconds_per_image']:.3f} | "
                     f"{'' if share is None else f'{share:.1%}'} |")
    lines += ["", "\"not payload\": the share of a taskcodec file's bytes that is preamble, header, layer table and "
              "CRCs rather than codec payload (blank for the anchors, whose containers this bench does not parse)."]
    lines.append("")
    for codec in result.get("codecs", ["classical"]):
        r_tr, r_all = (row(s, f"taskcodec-{codec}", "task", "avif") for s in ("traffic", "all"))
        for name, targets in (("issue 16's targets", (-40, -10)), ("the project's goal", (-50, -25))):
            lines.append(f"Target ({name}), `{codec}` task stream BD-rate vs AVIF: <= {targets[0]} % on traffic: "
                         f"{verdict(r_tr, targets[0])}; <= {targets[1]} % on all COCO objects: "
                         f"{verdict(r_all, targets[1])}.")
    return "\n".join(lines)


def _draws(result: dict) -> int:
    return max((len(p["boot"]["bpp"]) for p in result["points"] if p.get("boot")), default=0)


def verdict(row: dict, target: float) -> str:
    """Whether a BD-rate row meets ``target`` (percent, lower is better), as its interval allows:
    it holds when the whole 95 % interval is at or under the target, does not hold when the whole
    interval is over it, and is undecided when the interval spans it. The share of the bootstrap draws
    at or under the target says which way an undecided one leans."""
    v, ci = row.get("bd_rate_percent"), row.get("ci95")
    if v is None:
        return "not measurable"
    draws = [d for d in row.get("boot") or [] if d is not None]
    share = f"; at or under the target in {np.mean(np.array(draws) <= target):.0%} of the draws" if draws else ""
    text = f"{v:+.1f} %" + (f" (95 % interval {ci[0]:+.1f} to {ci[1]:+.1f}{share})" if ci else "")
    if ci is None:
        return f"{text}, {'holds' if v <= target else 'does not hold'} (no interval)"
    if ci[1] <= target:
        return f"{text}, holds"
    if ci[0] > target:
        return f"{text}, does not hold"
    return f"{text}, undecided: the interval spans the target ({'met' if v <= target else 'missed'} by the point estimate)"
