"""``taskcodec bench`` as a Prefect flow: one task per operating point. The measuring is
``taskcodec.bench.run``'s and the outputs (OUT/results.json, results.csv, *.png plots, the Markdown
summary) ``taskcodec.bench.report``'s; this module only composes them."""

from __future__ import annotations

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
from taskcodec.bench.report import write_outputs
from taskcodec.progress import item_done
from taskcodec.imageio import load_image
from taskcodec.grounding import get_backend, ground

point_t = task(B.run_point, name="bench-point", cache_policy=NO_CACHE)


def bench_flow(images: str, annotations: str, kodak: str | None, out: str, grounding: str, judge: str,
               limit: int | None = None, grounding_threshold: float = 0.3,
               codecs: tuple[str, ...] = ("classical", "learned"), workers: int = 2,
               qualities: dict[str, tuple[int, ...]] | None = None) -> dict:
    """Run the bench with ``workers`` operating points at a time (threads; torch gets its share of the cores).
    ``qualities``: the settings of the curves it names (``taskcodec.bench.run.operating_points``); every
    other curve keeps its defaults."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // workers))  # the worker threads start with this count
    try:
        runner = ThreadPoolTaskRunner(max_workers=workers)
        qualities = {**B.operating_points([], codecs), **(qualities or {})}  # a curve not named keeps its 4
        return _bench_flow.with_options(task_runner=runner)(images, annotations, kodak, out, grounding, judge,
                                                            limit, grounding_threshold, codecs, workers,
                                                            {k: list(v) for k, v in qualities.items()})
    finally:
        torch.set_num_threads(threads)


@flow(name="bench")
def _bench_flow(images: str, annotations: str, kodak: str | None, out: str, grounding: str, judge: str,
                limit: int | None, grounding_threshold: float, codecs: tuple[str, ...], workers: int,
                qualities: dict[str, list[int]]) -> dict:
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
        for name in B.ANCHORS:
            for q in qualities[name]:
                add(name, "whole", q, measure(lambda it, f=name.upper(), q=q: B.whole_image(it.pixels, f, q)))
        for codec in codecs:
            for q in qualities[codec]:
                add(f"taskcodec-{codec}", "whole", q, measure(
                    lambda it, q=q, c=codec: B.taskcodec_stream(it.pixels, None, None, q, c)))

    ceilings = point(lambda it: (0, it.pixels))
    whole_streams(point)
    for scen, labels in scenarios.items():
        policy = policy_from_labels(list(labels), min_score=grounding_threshold)
        grounded = {it.id: ground(it.pixels, policy, grounder) for it in items}
        for codec in codecs:
            for q in qualities[codec]:
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
        "grounding_threshold": grounding_threshold, "qualities": qualities,
        "ceiling": ceilings, "points": points, "bd_rates": bd, "seconds": round(time.perf_counter() - t_start, 1),
        "versions": {p: version(p) for p in ("taskcodec", "pillow", "onnxruntime", "ai-edge-litert", "pycocotools")},
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    write_outputs(result, Path(out))
    return result
