"""The benchmark flow: every codec at several operating points, judged by a different detector.

    1. load the COCO-format set (and Kodak); judge the originals: the mAP ceiling
    2. ground each image once per scenario with the grounding backend (or take the
       ground-truth boxes: the oracle row)
    3. per operating point (one Prefect task): encode every image, decode it, let the
       judge detect on the decoded image; bpp counts every byte of the file
    4. mAP / AP50 with pycocotools on the scenario's classes; PSNR on whole images and
       inside the ground-truth boxes; MS-SSIM; seconds per image
    5. BD-rates of every curve against AVIF and JPEG (mAP for machines, PSNR for Kodak)
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from taskcodec.bench import bootstrap
from taskcodec.bench.metrics import bd_rate, ms_ssim, psnr
from taskcodec.codec import bitstream, get_codec
from taskcodec.decisions import decide, requests_for
from taskcodec.errors import TaskcodecError
from taskcodec.imageio import load_image
from taskcodec.grounding.base import Detection, GroundingResult
from taskcodec.grounding.onnx import COCO80

SCENARIOS = {
    "all": ("all COCO objects", COCO80),
    "traffic": ("traffic: people and vehicles", ("person", "bicycle", "car", "motorcycle", "bus", "truck")),
}
ANCHORS = {"jpeg": (10, 25, 50, 75), "webp": (10, 30, 55, 80), "avif": (15, 30, 50, 70)}
TC_QUALITIES = (20, 35, 50, 70)
_COCO_LOCK = threading.Lock()
QUALITY_RANGE = {"jpeg": (1, 95), "webp": (0, 100), "avif": (0, 100)}  # Pillow's; taskcodec codecs: 1..100


def operating_points(specs: list[str], codecs: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """The settings every curve is measured at: ``ANCHORS`` and ``TC_QUALITIES`` unless a spec
    ``NAME=Q,Q,...`` (``NAME`` an anchor or one of ``codecs``) gives a curve its own. Each curve needs at
    least 2 distinct settings (a BD-rate interpolates between them); they are measured in rising order."""
    points = {**ANCHORS, **{c: TC_QUALITIES for c in codecs}}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or name not in points:
            raise TaskcodecError(f"--qualities {spec!r}: expected NAME=Q,Q,... with NAME one of "
                                 f"{', '.join(points)}")
        try:
            qs = sorted({int(v) for v in values.split(",") if v.strip()})
        except ValueError:
            raise TaskcodecError(f"--qualities {spec!r}: the settings must be whole numbers") from None
        lo, hi = QUALITY_RANGE.get(name, (1, 100))
        if len(qs) < 2 or not lo <= qs[0] <= qs[-1] <= hi:
            raise TaskcodecError(f"--qualities {spec!r}: give {name} at least 2 distinct settings in {lo}..{hi}")
        points[name] = tuple(qs)
    return points


@dataclass
class Item:
    id: int
    name: str
    pixels: np.ndarray
    boxes: list[tuple[str, tuple[float, float, float, float]]]  # ground truth (class, xyxy), crowd excluded


def load_coco(images: Path, annotations: Path, limit: int | None):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotations))
    names = {c["id"]: c["name"] for c in gt.loadCats(gt.getCatIds())}
    items = []
    for info in gt.loadImgs(sorted(gt.getImgIds()))[:limit]:
        anns = gt.loadAnns(gt.getAnnIds(imgIds=info["id"], iscrowd=False))
        boxes = [(names[a["category_id"]], (a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                              a["bbox"][1] + a["bbox"][3])) for a in anns]
        items.append(Item(info["id"], info["file_name"], load_image(images / info["file_name"]).pixels, boxes))
    return gt, items


def whole_image(pixels: np.ndarray, fmt: str, q: int) -> tuple[int, np.ndarray]:
    buf = io.BytesIO()
    kw = {"AVIF": {"quality": q, "speed": 6}, "WEBP": {"quality": q, "method": 4}, "JPEG": {"quality": q}}[fmt]
    Image.fromarray(pixels).save(buf, fmt, **kw)
    return len(buf.getvalue()), np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def taskcodec_stream(pixels: np.ndarray, grounding: GroundingResult | None, policy, q: int,
                     codec: str = "classical") -> tuple[int, np.ndarray, int]:
    """Bytes, decoded pixels and non-payload bytes (preamble, header, layer table, CRCs) of a taskcodec
    stream: whole-image mode when ``grounding`` is None."""
    mod = get_codec(codec)
    if grounding is None:
        r = mod.encode(pixels, [], mod.Params(quality=q, full=True))
    else:
        reqs = requests_for(decide(grounding, policy), policy.rules)
        r = mod.encode(pixels, reqs, mod.Params(quality=q))
    bs = bitstream.unpack(r.data)
    return len(r.data), mod.decode(bs).pixels, len(r.data) - sum(map(len, bs.payloads))


def oracle(item: Item, labels) -> GroundingResult:
    dets = tuple(Detection(label=c, class_name=c, box=b, score=1.0, raw_score=1.0, backend="oracle")
                 for c, b in item.boxes if c in labels)
    return GroundingResult(backend="oracle", detections=dets, ungroundable=())


def judge_results(judge, item: Item, pixels: np.ndarray, cat_ids: dict[str, int]) -> list[dict]:
    out = []
    for d in judge.detect(pixels):
        x0, y0, x1, y1 = d.box
        out.append({"image_id": item.id, "category_id": cat_ids[d.class_name], "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": d.score})
    return out


def coco_map(gt, results: list[dict], image_ids: list[int], cat_ids: list[int],
             weights: np.ndarray | None = None) -> tuple[float, float, list[float]]:
    """mAP@[.5:.95], AP50 and, with ``weights`` (one row a bootstrap draw), each draw's mAP."""
    from pycocotools.cocoeval import COCOeval

    if not results:
        return 0.0, 0.0, [0.0] * (0 if weights is None else len(weights))
    with _COCO_LOCK, contextlib.redirect_stdout(io.StringIO()):  # redirect_stdout is process-wide
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.params.imgIds, ev.params.catIds = image_ids, cat_ids
        ev.evaluate(), ev.accumulate(), ev.summarize()
    draws = [] if weights is None else bootstrap.coco_map_draws(ev, image_ids, weights)
    return float(ev.stats[0]), float(ev.stats[1]), draws


def run_point(items: list[Item], coder, judge, gt, cat_ids: dict[str, int], scenarios: dict[str, tuple]) -> dict:
    """Encode + decode + judge every image at one operating point; one row per scenario.

    A whole-image stream does not depend on the scenario, so it is coded and judged once and
    scored for every scenario (the judge's detections, filtered to each scenario's classes).
    Each row's ``boot`` holds its bpp, PSNR and mAP in every bootstrap draw of the images
    (``bootstrap.resample_weights``: the same draws for every point of the same images).
    """
    results, bpps, psnrs, ssims, enc = [], [], [], [], []
    total = overhead = 0
    obj_psnrs: dict[str, list[float]] = {s: [] for s in scenarios}
    for it in items:
        t0 = time.perf_counter()
        nbytes, decoded, *rest = coder(it)  # taskcodec streams also say how many bytes are not payload
        enc.append(time.perf_counter() - t0)
        total += nbytes
        overhead = overhead + rest[0] if rest and overhead is not None else None
        h, w = it.pixels.shape[:2]
        bpps.append(8 * nbytes / (w * h))
        psnrs.append(psnr(decoded, it.pixels))
        for scen, labels in scenarios.items():
            mask = np.zeros((h, w), bool)
            for c, (x0, y0, x1, y1) in it.boxes:
                if c in labels:
                    mask[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
            op = psnr(decoded, it.pixels, mask)
            if op is not None:
                obj_psnrs[scen].append(op)
        ssims.append(ms_ssim(decoded, it.pixels))
        if judge is not None:
            results.extend(judge_results(judge, it, decoded, cat_ids))
    weights = bootstrap.resample_weights(len(items)) if len(items) > 1 else None
    boot = {} if weights is None else {"bpp": [round(float(v), 5) for v in bootstrap.weighted_means(bpps, weights)],
                                       "psnr": [round(float(v), 3) for v in bootstrap.weighted_means(psnrs, weights)]}
    rows = {}
    for scen, labels in scenarios.items():
        row = {"bpp": round(float(np.mean(bpps)), 5), "psnr": round(float(np.mean(psnrs)), 3),
               "psnr_objects": round(float(np.mean(obj_psnrs[scen])), 3) if obj_psnrs[scen] else None,
               "ms_ssim": round(float(np.mean(ssims)), 5), "seconds_per_image": round(float(np.mean(enc)), 4),
               "non_payload_share": round(overhead / total, 4) if overhead is not None and total else None}
        if judge is not None:
            m, ap50, draws = coco_map(gt, results, [i.id for i in items], [cat_ids[c] for c in labels], weights)
            row.update(mAP=round(m, 4), AP50=round(ap50, 4))
            if boot:
                row["boot"] = {**boot, "mAP": draws}
        elif boot:
            row["boot"] = dict(boot)
        rows[scen] = row
    return rows


def bd_table(points: list[dict], metric: str, scenario: str) -> list[dict]:
    """Every curve's BD-rate against AVIF and JPEG, with its 95 % bootstrap interval (``ci95``, None
    when the points carry no draws or most draws give no BD-rate) and its value in every draw (``boot``,
    None where that draw's curves do not overlap)."""
    curves: dict[tuple[str, str], list[dict]] = {}
    for p in points:
        if p["scenario"] == scenario and p.get(metric) is not None:
            curves.setdefault((p["codec"], p["mode"]), []).append(p)
    out = []
    for anchor in ("avif", "jpeg"):
        base = curves.get((anchor, "whole"))
        for (codec, mode), pts in sorted(curves.items()):
            if (codec, mode) == (anchor, "whole") or base is None:
                continue
            v = bd_rate([(p["bpp"], p[metric]) for p in base], [(p["bpp"], p[metric]) for p in pts])
            draws = bootstrap.bd_rate_draws(base, pts, metric, bd_rate)
            ci = bootstrap.interval(draws)
            out.append({"scenario": scenario, "codec": codec, "mode": mode, "anchor": anchor, "quality_metric": metric,
                        "bd_rate_percent": None if v is None else round(v, 2),
                        "ci95": None if ci is None else [round(ci[0], 2), round(ci[1], 2)],
                        "boot": [None if d is None else round(d, 2) for d in draws]})
    return out
