"""``taskcodec bench`` as a Prefect flow (stages in ``taskcodec.bench.run``): one task per operating point; writes
OUT/results.json, OUT/results.csv, OUT/*.png plots and a markdown summary."""

from __future__ import annotations

import csv
import json
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from taskcodec.domain.policy import policy_from_labels
from taskcodec.bench import run as B
from taskcodec.progress import item_done
from taskcodec.imageio import load_image
from taskcodec.tools.grounding import get_backend, ground

point_t = task(B.run_point, name="bench-point", cache_policy=NO_CACHE)


def bench_flow(images: str, annotations: str, kodak: str | None, out: str, grounding: str, judge: str,
               limit: int | None = None, grounding_threshold: float = 0.3,
               codecs: tuple[str, ...] = ("classical", "learned"), workers: int = 2) -> dict:
    """Run the bench with ``workers`` operating points at a time (threads; torch gets its share of the cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // workers))  # the worker threads start with this count
    try:
        runner = ThreadPoolTaskRunner(max_workers=workers)
        return _bench_flow.with_options(task_runner=runner)(images, annotations, kodak, out, grounding, judge,
                                                            limit, grounding_threshold, codecs, workers)
    finally:
        torch.set_num_threads(threads)


@flow(name="bench")
def _bench_flow(images: str, annotations: str, kodak: str | None, out: str, grounding: str, judge: str,
                limit: int | None, grounding_threshold: float, codecs: tuple[str, ...], workers: int) -> dict:
    t_start = time.perf_counter()
    gt, items = B.load_coco(Path(images), Path(annotations), limit)
    cat_ids = {c["name"]: c["id"] for c in gt.loadCats(gt.getCatIds())}
    judge_b = get_backend(judge)
    grounder = get_backend(grounding)
    pending: list[tuple] = []  # (codec, mode, setting, future), in the order the points are listed

    scenarios = {scen: labels for scen, (_title, labels) in B.SCENARIOS.items()}

    def add(codec, mode, setting, future):
        pending.append((codec, mode, setting, future))

    def point(coder, scens=scenarios):
        return point_t.submit(items, coder, judge_b, gt, cat_ids, scens)

    def whole_streams(measure) -> None:
        """Every codec on whole images, each point coded once and scored by ``measure`` for its scenarios."""
        for name, qs in B.ANCHORS.items():
            for q in qs:
                add(name, "whole", q, measure(lambda it, f=name.upper(), q=q: B.whole_image(it.pixels, f, q)))
        for codec in codecs:
            for q in B.TC_QUALITIES:
                add(f"taskcodec-{codec}", "whole", q, measure(
                    lambda it, q=q, c=codec: B.taskcodec_stream(it.pixels, None, None, q, c)))

    ceilings = point(lambda it: (0, it.pixels))
    whole_streams(point)
    for scen, labels in scenarios.items():
        policy = policy_from_labels(list(labels), min_score=grounding_threshold)
        grounded = {it.id: ground(it.pixels, policy, grounder) for it in items}
        for codec in codecs:
            for q in B.TC_QUALITIES:
                # the points run later, in worker threads: bind this scenario's values now
                add(f"taskcodec-{codec}", "task", q, point(
                    lambda it, q=q, c=codec, g=grounded, pol=policy: B.taskcodec_stream(it.pixels, g[it.id], pol, q, c),
                    {scen: labels}))
                add(f"taskcodec-{codec}", "oracle", q, point(
                    lambda it, q=q, c=codec, lab=labels, pol=policy: B.taskcodec_stream(
                        it.pixels, B.oracle(it, lab), pol, q, c),
                    {scen: labels}))

    if kodak and Path(kodak).is_dir():
        kitems = [B.Item(i, p.name, load_image(p).pixels, [])
                  for i, p in enumerate(sorted(Path(kodak).glob("*.png"))[:limit])]

        whole_streams(lambda coder: point_t.submit(kitems, coder, None, None, {}, {"kodak": ()}))

    points = []
    for codec, mode, setting, future in pending:
        points += [{"scenario": scenario, "codec": codec, "mode": mode, "setting": setting, **row}
                   for scenario, row in future.result().items()]
        item_done(f"{codec} {mode} {setting}", True)  # the CLI's progress bar
    ceilings = ceilings.result()
    bd = [r for s in B.SCENARIOS for r in B.bd_table(points, "mAP", s)]
    bd += B.bd_table(points, "psnr", "kodak")
    result = {
        "command": "taskcodec " + " ".join(sys.argv[1:]) if sys.argv and "taskcodec" in sys.argv[0] else "bench",
        "images": len(items), "codecs": list(codecs), "workers": workers, "grounding": grounding, "judge": judge,
        "grounding_threshold": grounding_threshold,
        "ceiling": ceilings, "points": points, "bd_rates": bd, "seconds": round(time.perf_counter() - t_start, 1),
        "versions": {p: version(p) for p in ("taskcodec", "pillow", "onnxruntime", "ai-edge-litert", "pycocotools")},
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    write_outputs(result, Path(out))
    return result


def write_outputs(result: dict, out: Path) -> None:
    from taskcodec.imageio import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "results.json", json.dumps(result, indent=2).encode())
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
    def bd(scen, codec, mode, anchor):
        for r in result["bd_rates"]:
            if (r["scenario"], r["codec"], r["mode"], r["anchor"]) == (scen, codec, mode, anchor):
                return r["bd_rate_percent"]
        return None

    fmt = lambda v: "n/a (curves do not overlap)" if v is None else f"{v:+.1f} %"  # noqa: E731
    lines = [f"Command: `{command}` ({result['images']} COCO images, grounding `{result['grounding']}` at "
             f"{result['grounding_threshold']}, judge `{result['judge']}`; {result['machine']}; "
             f"{result.get('workers', 1)} operating points at a time; {result['seconds']} s in all). Versions: "
             + ", ".join(f"{k} {v}" for k, v in result["versions"].items()) + ".", "",
             "Judge mAP@[.5:.95] on the originals (the ceiling): "
             + ", ".join(f"{s} {c['mAP']:.3f}" for s, c in result["ceiling"].items()) + ".", "",
             "| scenario | codec | mode | BD-rate vs AVIF | BD-rate vs JPEG | metric |", "|---|---|---|---|---|---|"]
    seen = set()
    for r in result["bd_rates"]:
        key = (r["scenario"], r["codec"], r["mode"])
        if key in seen:
            continue
        seen.add(key)
        cell = lambda anchor: "(anchor)" if key[1:] == (anchor, "whole") else fmt(bd(*key, anchor))  # noqa: E731
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {cell('avif')} | {cell('jpeg')} | {r['quality_metric']} |")
    lines += ["", "bpp at which each curve first reaches 95 % of the originals' mAP (interpolated in log-bpp; "
              "\"not reached\" gives the best mAP share it got):", "",
              "| scenario | codec | mode | bpp at 95 % mAP | AVIF's | ratio to AVIF |", "|---|---|---|---|---|---|"]
    for scen, ceiling in result["ceiling"].items():
        curves: dict[tuple[str, str], list[dict]] = {}
        for p in result["points"]:
            if p["scenario"] == scen and p.get("mAP") is not None:
                curves.setdefault((p["codec"], p["mode"]), []).append(p)
        avif = B.bpp_at_share(curves.get(("avif", "whole"), []), ceiling["mAP"])
        for (codec, mode), pts in curves.items():
            b = B.bpp_at_share(pts, ceiling["mAP"])
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
    holds = lambda v, t: "not measurable" if v is None else ("holds" if v <= t else "does not hold")  # noqa: E731
    lines.append("")
    for codec in result.get("codecs", ["classical"]):
        b_tr, b_all = (bd(s, f"taskcodec-{codec}", "task", "avif") for s in ("traffic", "all"))
        lines.append(f"Target (the project's goal), `{codec}` task stream BD-rate vs AVIF: <= -50 % on traffic: {fmt(b_tr)}, "
                     f"{holds(b_tr, -50)}; <= -25 % on all COCO objects: {fmt(b_all)}, {holds(b_all, -25)}.")
    return "\n".join(lines)
