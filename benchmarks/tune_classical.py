"""Tune the classical task stream on the training photos, not on the set `taskcodec bench` reports (issue 16).

    .venv/bin/python benchmarks/tune_classical.py [--limit 40] [--variants base8,base4,...] [--no-docs]
        [--scenarios all,traffic] [--grounding SPEC] [--teacher SPEC] [--gt-score 0.5] [--mosaic]
        [--qualities avif=Q,Q,...] [--cache DIR]

The photos are the last N of ../shared/data/train/coco (the codec training set; no annotations), so
the ground truth is the judge's own detections on the originals (YOLOv8n, score >= 0.5): mAP then
says how much of what the judge saw in the original it still sees in the decoded image. Each variant
codes the traffic task and the all-COCO task (the configured grounding at 0.3, as `taskcodec bench`; another
with ``--grounding SPEC``, or ``oracle`` for the ground truth's own boxes; the tables in docs/benchmarks.md before 2026-12-04 used ``yolox``) at
qualities 20, 35, 50 and 70; the BD-rate is against Pillow AVIF (quality 15, 30, 50, 70) on the same
photos (``--qualities classical=...`` and ``avif=...`` measure other grids, as ``taskcodec bench``). ``--teacher SPEC`` takes the ground truth from another detector's confident detections instead
(``tiled:tflite:yolov8n_int8.tflite``: the judge on the whole image and on 2×2 tiles, which finds
more of the small objects that COCO's annotators box and the judge alone misses). ``--mosaic`` codes
640×480 mosaics of 4 photos each shrunk into a quarter, the ground truth found on the full-size
originals: medium objects become small ones that the ground truth still holds, the case the plain
photos' ground truth is blind to (benchmarks/pseudo_gt_sizes.py). Variants (combine
with ``+``; ``shipped`` names the settings classical.py ships, and ``shipped+hiq`` adds one to them):

    base8      the base at 1/8 scale below quality 40, 1/4 up to 85 (the first v2 plan)
    base4      the base at 1/4 scale below quality 85 (shipped before cov50)
    base4q20   base4 with the base 20 quality points under the objects instead of 10
    cov50      base4, but a 1/2-scale base when the object layers cover half the image or more
    cov30      the same from 30 % coverage
    nofloor    no recall floor (only objects at or over the threshold are sent)
    lowfloor   the recall floor at a third of the threshold instead of half
    floor4     the recall floor at a quarter of the threshold (floorN: at 1/N of it)
    p4         SVT-AV1 preset 4 instead of 6 (slower, smaller)
    tgt2       objects' target long side 64 + 6.4 q instead of 64 + 3.2 q (big objects less downscaled)
    tgthalf    the target 32 + 1.6 q (big objects more downscaled)
    tgtq       the target 16 + 0.8 q
    hiq        above quality 50 the target grows 4 times as fast (big objects less downscaled at high quality)
    hiq2       the same, 2 times as fast
    fine70     a 1/2-scale base from quality 70 (not 85)
    capbase    an object is never coded at a coarser scale than the base's
    cap2       an object is never coded at a coarser scale than 1/2 (capN: 1/N; shipped: 1/4), so a big
               object's layer adds detail the 1/4-scale base lacks
    fineq      a 1/2-scale base at the objects' quality, not 10 points under
    baseq0     every base at the objects' quality
    smallq     objects whose box's long side is under 64 pixels get 10 quality points more
    full80     a full-resolution base and no object layers when the objects cover 80 % of the image
               (fullNN: from NN %)
    base3      the base at 1/3 scale (not 1/4) below quality 85 and 50 % coverage
    baseup10   the base 10 quality points over the requested quality (objects keep theirs)
    tier5      tier offsets high 0, medium -5, low -10 (instead of 0, -10, -20)
    flat       every object at the requested quality (no tier offsets)
    tier15     tier offsets high 0, medium -15, low -30
    svtiq      SVT-AV1 ``tune=3`` (its still-image tuning) for every raster
    svtvb      SVT-AV1 ``enable-variance-boost=1`` for every raster
    sharpN     SVT-AV1 ``sharpness=N`` for every raster (sharpmN: -N), its deblocking and RD sharpness
    ctx10      every object's box grown by 10 % of its long side on each side before coding (more context)
    aom        every raster coded by libaom (Pillow's AVIF encoder, speed 6, container stripped) not SVT-AV1
    aombase    the base by libaom, object layers by SVT-AV1
    bigq       objects whose box's long side is 128 pixels or more get 10 quality points more
    smallfirst within a tier, objects coded smallest box first (not policy rank, then score), so a small
               object inside a big one owns its pixels at its own finer scale
    cubic      the base (and every layer) enlarged bicubic, as codec version 2, not Lanczos-4 (version 3)
    fbD        from quality 50 a full-resolution base D quality points under the requested quality (fb40:
               quality 70 -> a full-size base at 30), the objects residuals over it as usual; fbDatT: from
               quality T
    shrinkl    every raster shrunk with Pillow's antialiased Lanczos-3, not OpenCV's area filter (encoder only)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taskcodec.bench.report import write_section  # noqa: E402

TRAFFIC = ("person", "bicycle", "car", "motorcycle", "bus", "truck")


def pseudo_ground_truth(paths, judge, teacher=None, min_score=0.5):
    """Items whose boxes are the judge's detections of at least ``min_score`` on the originals (with
    ``teacher``, a grounding backend, its detections instead, merged by ``ground``'s NMS)."""
    from taskcodec.bench import run as B
    from taskcodec.domain.policy import policy_from_labels
    from taskcodec.grounding import ground
    from taskcodec.imageio import load_image
    from taskcodec.grounding.onnx import COCO80

    items = []
    every = policy_from_labels(list(COCO80), min_score=min_score)
    for i, p in enumerate(paths):
        px = load_image(p).pixels
        if teacher is None:
            dets = [d for d in judge.detect(px) if d.score >= min_score]
        else:
            dets = [d for d in ground(px, every, teacher).detections if d.score >= min_score]
        items.append(B.Item(i + 1, p.name, px, [(d.class_name, d.box) for d in dets]))
    return items


MOSAIC = (640, 480)  # ``--mosaic``: the mosaic's size; each photo fits a quarter of it


def mosaics(items, size=MOSAIC):
    """Every 4 items as one ``size`` photo: each shrunk (Lanczos, aspect kept) into a quarter, grey
    (114) around it, its boxes shrunk and moved with it. The boxes were found at full size, so a
    medium object the judge saw well becomes a small one that the ground truth still holds, as
    COCO's annotators box objects no detector at the photo's size sees."""
    from PIL import Image

    from taskcodec.bench import run as B

    cw, ch = size[0] // 2, size[1] // 2
    out = []
    for k in range(len(items) // 4):
        canvas = Image.new("RGB", size, (114, 114, 114))
        boxes = []
        for j, it in enumerate(items[4 * k:4 * k + 4]):
            h, w = it.pixels.shape[:2]
            s = min(cw / w, ch / h)
            nw, nh = max(1, round(w * s)), max(1, round(h * s))
            ox, oy = (j % 2) * cw + (cw - nw) // 2, (j // 2) * ch + (ch - nh) // 2
            canvas.paste(Image.fromarray(it.pixels).resize((nw, nh), Image.Resampling.LANCZOS), (ox, oy))
            boxes += [(c, (x0 * s + ox, y0 * s + oy, x1 * s + ox, y1 * s + oy)) for c, (x0, y0, x1, y1) in it.boxes]
        out.append(B.Item(k + 1, f"mosaic{k + 1}", np.asarray(canvas), boxes))
    return out


def coco_of(items):
    """A pycocotools COCO of the items' boxes, and the category ids by name."""
    from pycocotools.coco import COCO

    from taskcodec.grounding.onnx import COCO80

    cats = [{"id": i + 1, "name": n} for i, n in enumerate(COCO80)]
    cat_ids = {c["name"]: c["id"] for c in cats}
    anns = []
    for it in items:
        for c, (x0, y0, x1, y1) in it.boxes:
            anns.append({"id": len(anns) + 1, "image_id": it.id, "category_id": cat_ids[c],
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    gt = COCO()
    gt.dataset = {"images": [{"id": it.id, "width": it.pixels.shape[1], "height": it.pixels.shape[0]}
                             for it in items], "annotations": anns, "categories": cats}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt, cat_ids


def grounded_items(items, spec: str, labels, policy) -> dict:
    """Each item's grounding by id: ``spec``'s backend under ``policy``, or with ``oracle`` the ground
    truth's own boxes of ``labels`` (as the bench's oracle rows)."""
    from taskcodec.bench import run as B
    from taskcodec.grounding import get_backend, ground

    if spec == "oracle":
        return {it.id: B.oracle(it, labels) for it in items}
    backend = get_backend(spec)
    return {it.id: ground(it.pixels, policy, backend) for it in items}


ORIGINAL: dict = {}
SHIPPED = "cov50+tgthalf+baseq0"  # the variant whose settings classical.py ships


def apply(variant: str) -> None:
    """Set the module-level knobs a variant names (the shipped values otherwise)."""
    from taskcodec import decisions
    from taskcodec.codec import av1, classical

    parts = {q for p in variant.split("+") for q in (SHIPPED.split("+") if p == "shipped" else [p])}
    plans = {"base8": lambda q: (2 if q >= 85 else 4 if q >= 40 else 8, max(1, q - 10)),
             "base4": lambda q: (2 if q >= 85 else 4, max(1, q - 10)),
             "base4q20": lambda q: (2 if q >= 85 else 4, max(1, q - 20))}
    plans["base3"] = lambda q: (2 if q >= 85 else 3, max(1, q - 10))
    plan = next((plans[p] for p in parts if p in plans), plans["base4"])
    classical.FINE_BASE_COVERAGE = 0.5 if "cov50" in parts else 0.3 if "cov30" in parts else 1.01  # 1.01: never
    plan_cov = lambda q, cov=0.0: (2, plan(q)[1]) if cov >= classical.FINE_BASE_COVERAGE else plan(q)  # noqa: E731
    av1.PRESET = 4 if "p4" in parts else 6
    classical.SHRINK = "lanczos" if "shrinkl" in parts else "area"
    av1.ENCODER = "aom" if "aom" in parts else "svt"
    base_layer = ORIGINAL.setdefault("base_layer", classical._base_layer)

    def aom_base(*a, **k):
        av1.ENCODER = "aom"
        try:
            return base_layer(*a, **k)
        finally:
            av1.ENCODER = "svt"

    classical._base_layer = aom_base if "aombase" in parts else base_layer
    sharp = next((p[5:] for p in parts if p.startswith("sharp") and p[5:].lstrip("m").isdigit()), None)
    av1.SVT_PARAMS = ("tune=3" if "svtiq" in parts else "enable-variance-boost=1" if "svtvb" in parts
                      else f"sharpness={sharp.replace('m', '-')}" if sharp else "")
    classical.OBJECT_TARGET = ((64, 6.4) if "tgt2" in parts else (32, 1.6) if "tgthalf" in parts
                               else (16, 0.8) if "tgtq" in parts else (64, 3.2))
    target = ORIGINAL.setdefault("object_target", classical.object_target)
    steep = 4 if "hiq" in parts else 2 if "hiq2" in parts else 1
    hiq = lambda q: target(q) if q <= 50 else target(50) + steep * classical.OBJECT_TARGET[1] * (q - 50)  # noqa: E731
    classical.object_target = hiq if steep > 1 else target
    scale16 = ORIGINAL.setdefault("object_scale16", classical.object_scale16)
    state = {"factor": 4}

    def base_plan(q, cov=0.0):
        f, bq = plan_cov(q, cov)
        if "baseq0" in parts or ("fineq" in parts and f == 2):
            bq = q
        if "baseup10" in parts:
            bq = min(100, bq + 10)
        if "fine70" in parts and q >= 70:
            f = 2
        fb = next((p[2:].partition("at") for p in parts if p.startswith("fb") and p[2:3].isdigit()), None)
        if fb is not None and q >= int(fb[2] or 50):
            f, bq = 1, max(1, q - int(fb[0]))
        state["factor"] = f
        return f, bq

    cap = next((int(p[3:]) for p in parts if p.startswith("cap") and p[3:].isdigit()), None)

    def object_scale16(rect, quality):
        s16 = min(scale16(rect, quality), 16 * state["factor"]) if "capbase" in parts else scale16(rect, quality)
        return s16 if cap is None else min(s16, 16 * cap)

    classical.base_plan, classical.object_scale16 = base_plan, object_scale16
    encode = ORIGINAL.setdefault("encode", classical.encode)

    def patched(pixels, requests, params, ref=None):
        h, w = pixels.shape[:2]
        full = next((int(p[4:]) / 100 for p in parts if p.startswith("full") and p[4:].isdigit()), None)
        if full is not None and requests and classical.coverage(requests, w, h) >= full:
            requests, params = [], params.model_copy(update={"full": True})
        if "tier5" in parts or "flat" in parts or "tier15" in parts:
            k = 0 if "flat" in parts else 0.5 if "tier5" in parts else 1.5
            params = params.model_copy(update={"quality_offset": {t: int(o * k) for t, o in params.quality_offset.items()}})
        if "ctx10" in parts:
            def grow(b, m):
                return (max(0.0, b[0] - m), max(0.0, b[1] - m), min(float(w), b[2] + m), min(float(h), b[3] + m))

            requests = [r.model_copy(update={"box": grow(r.box, 0.1 * max(r.box[2] - r.box[0], r.box[3] - r.box[1]))})
                        for r in requests]
        boosted = {"smallq": lambda side: side < 64, "bigq": lambda side: side >= 128}
        if boosted.keys() & parts:  # +10 quality points, as a "+" tier, for the boxes the variant names
            offsets = params.quality_offset
            params = params.model_copy(update={"quality_offset": {**offsets, **{t + "+": o + 10 for t, o in offsets.items()}}})
            requests = [r.model_copy(update={"tier": r.tier + "+"})
                        if any(boosted[p](max(r.box[2] - r.box[0], r.box[3] - r.box[1])) for p in boosted.keys() & parts)
                        else r for r in requests]
        if "smallfirst" in parts:
            order = {"high": 0, "medium": 1, "low": 2}
            requests = sorted(requests, key=lambda r: (order.get(r.tier.rstrip("+"), 3),
                                                       (r.box[2] - r.box[0]) * (r.box[3] - r.box[1])))
        return encode(pixels, requests, params, ref)

    classical.encode = patched
    enlarge = ORIGINAL.setdefault("enlarge_filter", classical.enlarge_filter)
    classical.enlarge_filter = (lambda version: "cubic") if "cubic" in parts else enlarge
    floor_n = next((int(p[5:]) for p in parts if p.startswith("floor") and p[5:].isdigit() and int(p[5:]) > 0), None)
    decisions.RECALL_FLOOR_RATIO = (1.0 if "nofloor" in parts else 1 / 3 if "lowfloor" in parts
                                   else 1 / floor_n if floor_n else 0.5)


class Cache:
    """The ground truth's boxes and the AVIF curve of one run's photos and settings, as JSON in a folder
    (``--cache``), so that runs comparing variants on the same photos do not recompute them. The key is
    every input they depend on, Pillow's version (the AVIF encoder) included; nothing is reused otherwise."""

    def __init__(self, folder, names, teacher, gt_score, mosaic, avif_q):
        import hashlib
        import json

        import PIL

        self.path = None
        if folder is not None:
            key = json.dumps([names, teacher, gt_score, mosaic, list(avif_q), PIL.__version__])
            self.path = Path(folder) / f"tune-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
        self.data = json.loads(self.path.read_text()) if self.path is not None and self.path.exists() else {}

    def _save(self) -> None:
        import json

        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data))
            tmp.replace(self.path)

    def items(self, compute, paths):
        """The ground-truth items (with ``--mosaic`` the mosaics are made from them by the caller)."""
        from taskcodec.bench import run as B
        from taskcodec.imageio import load_image

        if "boxes" in self.data:
            return [B.Item(i + 1, p.name, load_image(p).pixels, [(c, tuple(b)) for c, b in boxes])
                    for i, (p, boxes) in enumerate(zip(paths, self.data["boxes"]))]
        items = compute()
        self.data["boxes"] = [[[c, list(map(float, b))] for c, b in it.boxes] for it in items]
        self._save()
        return items

    def avif(self, compute):
        if "avif" not in self.data:
            self.data["avif"] = compute()
            self._save()
        return self.data["avif"]


def points_text(rows) -> str:
    return ", ".join(f"{r['bpp']:.3f}/{r['mAP']:.3f}" for r in rows)


def bd_cell(anchor, rows, first) -> str:
    """The BD-rate of ``rows`` against ``anchor`` with its 95 % bootstrap interval and, for every variant
    after the first of the run, the paired interval of its difference from the first (``first``: the
    first variant's name and rows), over the same image draws."""
    from taskcodec.bench.bootstrap import bd_rate_draws, interval
    from taskcodec.bench.metrics import bd_rate

    bd = bd_rate([(r["bpp"], r["mAP"]) for r in anchor], [(r["bpp"], r["mAP"]) for r in rows])
    if bd is None:
        return "n/a"
    draws = bd_rate_draws(anchor, rows, "mAP", bd_rate)
    ci = interval(draws)
    text = f"{bd:+.1f} %" + (f" ({ci[0]:+.1f} to {ci[1]:+.1f})" if ci else "")
    name, base = first
    if base is not rows:
        diff = [a - b for a, b in zip(draws, bd_rate_draws(anchor, base, "mAP", bd_rate))
                if a is not None and b is not None]
        ci = interval(diff) if len(diff) >= len(draws) / 2 else None
        if ci:
            text += f"; vs {name}: {ci[0]:+.1f} to {ci[1]:+.1f}"
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--variants", default="base8,base4,base4q20,base4+nofloor,base4+lowfloor,base4+p4")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--scenarios", default="all,traffic")
    ap.add_argument("--grounding", default=None, help="the grounding spec the task streams use (default: the configured); 'oracle': "
                         "the ground truth's boxes")
    ap.add_argument("--teacher", default=None,
                    help="a grounding spec whose detections (score >= 0.5) on the originals are the ground truth "
                         "instead of the judge's, e.g. 'tiled:tflite:yolov8n_int8.tflite' (more small objects)")
    ap.add_argument("--gt-score", type=float, default=0.5,
                    help="the ground truth's score floor (default 0.5): lower keeps more of the small objects "
                         "COCO's annotators box, and more of the detector's mistakes")
    ap.add_argument("--qualities", action="append", default=[], metavar="NAME=Q,Q,...",
                    help="the settings of the AVIF curve (avif=...) or the variants' (classical=...), as "
                         "`taskcodec bench --qualities`; default 15, 30, 50, 70 and 20, 35, 50, 70")
    ap.add_argument("--cache", type=Path, default=None, metavar="DIR",
                    help="keep the ground truth and the AVIF curve in DIR (JSON) and reuse them when a later run "
                         "names the same photos, teacher, score floor, mosaics and AVIF grid (saves most of a run)")
    ap.add_argument("--mosaic", action="store_true",
                    help="code 640x480 mosaics of 4 photos at half size, the ground truth found at full size "
                         "(small objects the ground truth still holds)")
    args = ap.parse_args()

    from taskcodec.domain.policy import policy_from_labels
    from taskcodec.bench import run as B
    from taskcodec.errors import TaskcodecError

    try:
        grid = B.operating_points(args.qualities, ("classical",))
    except TaskcodecError as exc:
        raise SystemExit(f"error: {exc}")
    if {spec.partition("=")[0].strip() for spec in args.qualities} - {"avif", "classical"}:
        raise SystemExit("error: --qualities: this script measures only the avif and classical curves")
    avif_q, tc_q = grid["avif"], grid["classical"]
    from taskcodec.settings import get_settings
    from taskcodec.grounding import get_backend
    from taskcodec.grounding.onnx import COCO80

    paths = sorted((get_settings().shared_dir / "data" / "train" / "coco").glob("*.jpg"))[-args.limit:]
    judge = get_backend("tflite:yolov8n_int8.tflite")
    cache = Cache(args.cache, [p.name for p in paths], args.teacher, args.gt_score, args.mosaic, avif_q)
    items = cache.items(lambda: pseudo_ground_truth(paths, judge, get_backend(args.teacher) if args.teacher else None,
                                                    args.gt_score), paths)
    if args.mosaic:
        items = mosaics(items)
    gt, cat_ids = coco_of(items)
    scenarios = {"all": COCO80, "traffic": TRAFFIC}
    policies = {s: policy_from_labels(list(labels), min_score=0.3) for s, labels in scenarios.items()}
    args.grounding = args.grounding or get_settings().grounding
    grounded = {s: grounded_items(items, args.grounding, scenarios[s], policies[s]) for s in scenarios}

    def curve(coder, qualities, scens):
        """Per scenario, the rows of ``B.run_point`` (bpp, mAP and their bootstrap draws) at each quality."""
        out = {s: [] for s in scens}
        for q in qualities:
            rows = B.run_point(items, lambda it, q=q: coder(it, q), judge, gt, cat_ids, {s: scenarios[s] for s in scens})
            for s in scens:
                out[s].append(rows[s])
        return out

    avif = cache.avif(lambda: curve(lambda it, q: B.whole_image(it.pixels, "AVIF", q), avif_q, list(scenarios)))
    lines, first = [], {}
    for variant in args.variants.split(","):
        apply(variant)
        cells = []
        for s in args.scenarios.split(","):
            c = curve(lambda it, q, s=s: B.taskcodec_stream(it.pixels, grounded[s][it.id], policies[s], q),
                      tc_q, [s])[s]
            cells += [bd_cell(avif[s], c, first.setdefault(s, (variant, c))), points_text(c)]
            print(variant, s, cells[-2], cells[-1], flush=True)
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    apply("shipped")
    avif_pts = {s: points_text(avif[s]) for s in scenarios}
    body = "\n".join([
        f"Command: `python benchmarks/tune_classical.py --limit {args.limit}{' --mosaic' if args.mosaic else ''}` on "
        f"{platform.machine()} with {os.cpu_count()} CPU cores: the last {len(paths)} photos of "
        "../shared/data/train/coco (the codec training set, not coco-val158)"
        + (f", as {len(items)} mosaics of 4 at half size" if args.mosaic else "")
        + ", ground truth = "
        + (f"`{args.teacher}`'s" if args.teacher else "the judge's") + f" detections (score >= {args.gt_score}) on the originals, "
        f"grounding `{args.grounding}` at 0.3. Points are bpp/mAP at qualities {', '.join(map(str, tc_q))}.", "",
        f"AVIF (quality {', '.join(map(str, avif_q))}): all {avif_pts['all']}; traffic {avif_pts['traffic']}.", "",
        "| variant | BD-rate vs AVIF, all | points, all | BD-rate vs AVIF, traffic | points, traffic |",
        "|---|---|---|---|---|", *lines, "",
        f"The shipped settings are `{SHIPPED}` (a 1/2-scale base from 50 % coverage, the base at the requested "
        "quality, objects downscaled from 32 + 1.6 q pixels) with the recall floor at half the threshold and "
        "preset 6; the module "
        "docstring says what each variant changes. 40 photos and a pseudo ground truth make these curves noisy "
        "and not monotonic (mAP can drop from one quality to the next), and a BD-rate over such curves swings "
        "with single points: read the points, not only the BD-rates. In brackets, each BD-rate's 95 % interval "
        "over bootstrap resamples of the photos and, after the first variant, the interval of its paired "
        "difference from the first variant's (the same draws): a difference whose interval spans 0 is noise.",
    ])
    if not args.no_docs:
        write_section("tune-classical", "Tuning the classical task stream on training photos (issue 16)", body)


if __name__ == "__main__":
    main()
