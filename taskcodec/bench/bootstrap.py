"""How sure a benchmark figure is: the image bootstrap (Efron 1979) of mAP, bpp and BD-rate.

A bench figure comes from one sample of images; another sample from the same source would give
another figure. Resampling the images with replacement, the same draws for every curve (so curves
stay paired, as they were coded from the same photos), and recomputing each figure per draw gives
its spread; the 2.5th and 97.5th percentiles of the draws are its 95 % percentile interval.

    judge detections ──COCOeval.evaluate() once──► per class: detections sorted by score,
        matched / ignored at 10 IoU thresholds, image of each, countable ground truth per image
    draw b: image weights w_b (how often each image was drawn)
        ──► mAP_b: COCO's precision envelope with every detection and ground truth counted w times
        ──► bpp_b, PSNR_b: weighted means over images
    curves of draw b ──bd_rate──► BD_b;   interval = percentiles of BD_b over the draws

``MapBootstrap.ap(ones)`` is exactly pycocotools' AP@[.5:.95] (area all, 100 detections), which a
test checks. Counting a detection w times in one step, rather than as w adjacent copies, drops only
intermediate precision/recall points that the envelope never takes: a copy of a true positive is
followed by a point of more recall and more precision, a copy of a false positive by none of more
recall. The interval says how much the figure depends on which images were drawn, not how the judge
or processor varies (docs/benchmarks.md, *The judge's arithmetic*).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

DRAWS = 400  # resamples per figure; with these, a 95 % interval's ends move by about a point between seeds
SEED = 20261206
LEVEL = 0.95


def resample_weights(n: int, draws: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """``(draws, n)`` integer weights: how often each of ``n`` images is drawn in each resample of size
    ``n``. The same ``n``, ``draws`` and ``seed`` give the same weights, so every curve of a run sees
    the same resamples."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=draws)


def weighted_means(values: Sequence[float], weights: np.ndarray) -> np.ndarray:
    """Per draw, the weighted mean of per-image ``values`` (one row of ``weights`` a draw)."""
    v = np.asarray(values, dtype=np.float64)
    return (weights @ v) / weights.sum(axis=1)


class MapBootstrap:
    """COCO's AP@[.5:.95] (all areas, 100 detections an image) under per-image weights, from one
    evaluated ``COCOeval`` (``evaluate()`` done; its ``params.imgIds`` the images, in any order)."""

    def __init__(self, ev, image_ids: Sequence[int]):
        p = ev.params
        ids = list(p.imgIds)  # evaluate() sorted them
        pos = {i: k for k, i in enumerate(ids)}
        self.order = np.array([pos[i] for i in image_ids])  # weight k of the caller -> image position
        self.rec_thrs = np.asarray(p.recThrs)
        n_img, n_area = len(ids), len(p.areaRng)
        a0 = list(p.areaRngLbl).index("all")
        max_det = p.maxDets[-1]
        self.classes = []
        for k in range(len(p.catIds) if p.useCats else 1):
            evs = [(i, ev.evalImgs[k * n_area * n_img + a0 * n_img + i]) for i in range(n_img)]
            evs = [(i, e) for i, e in evs if e is not None]
            if not evs:
                continue
            scores = np.concatenate([e["dtScores"][:max_det] for _, e in evs])
            img = np.concatenate([np.full(len(e["dtScores"][:max_det]), i) for i, e in evs]).astype(int)
            order = np.argsort(-scores, kind="mergesort")  # as accumulate(): ties keep image order
            dtm = np.concatenate([e["dtMatches"][:, :max_det] for _, e in evs], axis=1)[:, order]
            dtig = np.concatenate([e["dtIgnore"][:, :max_det] for _, e in evs], axis=1)[:, order]
            npig = np.zeros(n_img)
            for i, e in evs:
                npig[i] = np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)
            tps = np.logical_and(dtm, ~dtig.astype(bool)).astype(np.float64)
            fps = np.logical_and(~dtm.astype(bool), ~dtig.astype(bool)).astype(np.float64)
            self.classes.append((img[order], tps, fps, npig))

    def ap(self, weights: np.ndarray) -> float:
        """The mean over classes, IoU thresholds and recall thresholds of the interpolated precision,
        every image counted ``weights[k]`` times (``weights`` in the caller's ``image_ids`` order);
        -1 when no class has countable ground truth (as pycocotools)."""
        w = np.zeros(len(self.order))
        w[self.order] = weights
        cells = []
        for img, tps, fps, npig_img in self.classes:
            npig = float(w @ npig_img)
            if npig == 0:
                continue  # COCO leaves the class out (precision -1)
            dw = w[img]
            tp, fp = np.cumsum(tps * dw, axis=1), np.cumsum(fps * dw, axis=1)
            q = np.zeros((tp.shape[0], len(self.rec_thrs)))
            if tp.shape[1]:
                rc, pr = tp / npig, tp / (fp + tp + np.spacing(1))
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # the precision envelope
                for t in range(tp.shape[0]):
                    idx = np.searchsorted(rc[t], self.rec_thrs, side="left")
                    ok = idx < tp.shape[1]
                    q[t, ok] = pr[t, idx[ok]]
            cells.append(q)
        return float(np.mean(np.concatenate(cells, axis=1))) if cells else -1.0


def coco_map_draws(ev, image_ids: Sequence[int], weights: np.ndarray) -> list[float]:
    """mAP@[.5:.95] of every draw (one row of ``weights`` a draw) from an evaluated ``COCOeval``."""
    mb = MapBootstrap(ev, image_ids)
    return [round(mb.ap(w), 5) for w in weights]


def interval(values: Sequence[float | None], level: float = LEVEL) -> tuple[float, float] | None:
    """The percentile interval of the draws that gave a value (None when fewer than half did)."""
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if len(v) < max(2, len(values) / 2):
        return None
    lo, hi = np.percentile(v, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def bd_rate_draws(anchor: Sequence[dict], test: Sequence[dict], metric: str,
                  bd: Callable[[list, list], float | None]) -> list[float | None]:
    """``bd`` of the test curve against the anchor's in every draw; points carry ``boot`` with ``bpp``
    and ``metric`` lists of the same draws (points without them give an empty list)."""
    pts = [*anchor, *test]
    if not pts or any(metric not in (p.get("boot") or {}) for p in pts):
        return []
    n = min(len(p["boot"][metric]) for p in pts)

    def curve(points, b):
        return [(p["boot"]["bpp"][b], p["boot"][metric][b]) for p in points]

    return [bd(curve(anchor, b), curve(test, b)) for b in range(n)]
