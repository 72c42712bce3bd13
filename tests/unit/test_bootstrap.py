"""The bench's image bootstrap: its mAP is pycocotools' own, and a weighted draw equals COCO on a set
where each image really appears that many times."""

import contextlib
import re
import io

import numpy as np
import pytest

from taskcodec.bench.bootstrap import (MapBootstrap, bd_rate_draws, interval, resample_weights,
                                       weighted_means)
from taskcodec.bench.metrics import bd_rate


def synthetic(n_images=24, seed=0):
    """Ground truth in 3 classes (one crowd box per few images) and detections: most objects found with
    jittered boxes, some missed, some false positives, random scores."""
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for i in range(1, n_images + 1):
        images.append({"id": i, "width": 640, "height": 480})
        for _ in range(rng.integers(0, 6)):
            c = int(rng.integers(1, 4))
            x, y = rng.uniform(0, 500), rng.uniform(0, 380)
            w, h = rng.uniform(8, 140), rng.uniform(8, 100)
            crowd = int(rng.random() < 0.08)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": c, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": crowd})
            if rng.random() < 0.75:
                j = rng.normal(0, 0.08 * max(w, h), 4)
                dets.append({"image_id": i, "category_id": c, "bbox": [x + j[0], y + j[1], w + j[2], h + j[3]],
                             "score": float(rng.random())})
        for _ in range(rng.integers(0, 3)):
            dets.append({"image_id": i, "category_id": int(rng.integers(1, 4)),
                         "bbox": [rng.uniform(0, 500), rng.uniform(0, 380), 40, 30], "score": float(rng.random())})
    return images, anns, dets


def coco_eval(images, anns, dets):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns,
                  "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 3)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.params.imgIds = [im["id"] for im in images]
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return ev


def test_unit_weights_give_pycocotools_map_exactly():
    images, anns, dets = synthetic()
    ev = coco_eval(images, anns, dets)
    ids = [im["id"] for im in images][::-1]  # the caller's order need not be COCO's
    assert MapBootstrap(ev, ids).ap(np.ones(len(ids))) == pytest.approx(ev.stats[0], abs=1e-12)


def test_a_weighted_draw_equals_coco_on_the_images_repeated():
    images, anns, dets = synthetic(seed=3)
    ev = coco_eval(images, anns, dets)
    ids = [im["id"] for im in images]
    for w in resample_weights(len(ids), draws=3, seed=7):
        # the same draw spelled out: image i appears w[i] times, each copy under a new id
        rep_images, rep_anns, rep_dets = [], [], []
        for im, times in zip(images, w):
            for copy in range(times):
                new = 1000 * (copy + 1) + im["id"]
                rep_images.append({**im, "id": new})
                for a in anns:
                    if a["image_id"] == im["id"]:
                        rep_anns.append({**a, "id": len(rep_anns) + 1, "image_id": new})
                rep_dets += [{**d, "image_id": new} for d in dets if d["image_id"] == im["id"]]
        expected = coco_eval(rep_images, rep_anns, rep_dets).stats[0]
        assert MapBootstrap(ev, ids).ap(w) == pytest.approx(expected, abs=1e-9)
        assert abs(expected - ev.stats[0]) > 1e-4  # the draw really is another sample


def test_weights_are_resamples_of_the_same_size_and_repeatable():
    w = resample_weights(50, draws=20, seed=1)
    assert w.shape == (20, 50) and (w.sum(axis=1) == 50).all() and (w >= 0).all()
    assert (w == resample_weights(50, draws=20, seed=1)).all() and not (w == resample_weights(50, 20, 2)).all()
    assert weighted_means([1.0, 3.0], np.array([[1, 1], [2, 0]])).tolist() == [2.0, 1.0]


def test_bd_rate_draws_and_their_interval():
    rng = np.random.default_rng(0)
    anchor_q = [0.2, 0.26, 0.30, 0.32]
    anchor = [{"bpp": r, "mAP": q, "boot": {"bpp": list(r * (1 + 0.02 * rng.standard_normal(200))),
                                             "mAP": [q] * 200}} for r, q in zip((0.2, 0.4, 0.8, 1.6), anchor_q)]
    test = [{**p, "boot": {"bpp": [b / 2 for b in p["boot"]["bpp"]], "mAP": p["boot"]["mAP"]}} for p in anchor]
    draws = bd_rate_draws(anchor, test, "mAP", bd_rate)
    assert len(draws) == 200 and all(d == pytest.approx(-50.0, abs=1e-6) for d in draws)
    assert bd_rate_draws(anchor, [{"bpp": 0.1, "mAP": 0.2}], "mAP", bd_rate) == []  # no draws stored
    lo, hi = interval(list(np.linspace(-60, -20, 401)))
    assert lo == pytest.approx(-59.0) and hi == pytest.approx(-21.0)
    assert interval([None] * 3 + [1.0]) is None  # most draws gave no BD-rate


def test_a_target_holds_only_when_the_whole_interval_is_under_it():
    from taskcodec.bench.report import verdict

    row = {"bd_rate_percent": -45.0, "ci95": [-60.0, -41.0], "boot": [-60.0, -50.0, -45.0, -41.0]}
    assert verdict(row, -40).endswith(", holds") and "in 100% of the draws" in verdict(row, -40)
    assert verdict({**row, "ci95": [-38.0, -30.0]}, -40).endswith(", does not hold")
    spans = verdict({**row, "ci95": [-60.0, -20.0], "boot": [-60.0, -45.0, -30.0, None, -20.0]}, -40)
    assert "undecided" in spans and "met by the point estimate" in spans
    assert "in 50% of the draws" in spans  # of the draws that gave a BD-rate
    assert verdict({"bd_rate_percent": None}, -40) == "not measurable"
    assert verdict({"bd_rate_percent": -41.0, "ci95": None}, -40) == "-41.0 %, holds (no interval)"


def test_bd_pairs_reads_a_bench_folder_and_pairs_the_draws(tmp_path, monkeypatch, capsys):
    import json

    from benchmarks import bd_pairs

    a = [-50.0, -40.0, -30.0, None]
    b = [-45.0, -33.0, -26.0, -20.0]  # b is 4 to 7 points worse than a in every draw where both exist
    (tmp_path / "draws.json").write_text(json.dumps({"points": {}, "bd_rates": {
        "traffic|taskcodec-classical|task|avif": a, "traffic|taskcodec-classical|oracle|avif": b}}))
    (tmp_path / "results.json").write_text(json.dumps({"bd_rates": [
        {"scenario": "traffic", "codec": "taskcodec-classical", "mode": "task", "anchor": "avif", "bd_rate_percent": -41.0},
        {"scenario": "traffic", "codec": "taskcodec-classical", "mode": "oracle", "anchor": "avif", "bd_rate_percent": -33.0}]}))
    monkeypatch.setattr("sys.argv", ["bd_pairs", str(tmp_path), "traffic", "taskcodec-classical/task",
                                     "taskcodec-classical/oracle", "--target", "-40"])
    bd_pairs.main()
    out = capsys.readouterr().out
    assert "taskcodec-classical/task: -41.0 %" in out and "at or under -40 % in 67% of 3 draws" in out
    assert "at or under -40 % in 25% of 4 draws" in out  # the second curve: -45 only
    diff = out.splitlines()[-1]
    assert "median -5.0 points" in diff and "spans 0" not in diff
    monkeypatch.setattr("sys.argv", ["bd_pairs", str(tmp_path), "all", "taskcodec-classical/task", "avif"])
    with pytest.raises(SystemExit, match=re.escape("no BD-rate draws for 'all|taskcodec-classical|task|avif'")):
        bd_pairs.main()


def test_bd_pairs_against_pairs_a_curve_with_the_same_curve_of_another_run(tmp_path, monkeypatch, capsys):
    import json

    from benchmarks import bd_pairs

    def run(folder, draws):
        folder.mkdir()
        (folder / "draws.json").write_text(json.dumps({"points": {}, "bd_rates": {
            "traffic|taskcodec-classical|task|avif": draws}}))
        (folder / "results.json").write_text(json.dumps({"bd_rates": [
            {"scenario": "traffic", "codec": "taskcodec-classical", "mode": "task", "anchor": "avif",
             "bd_rate_percent": draws[0]}]}))

    run(tmp_path / "after", [-30.0, -20.0, -10.0, -25.0])
    run(tmp_path / "before", [-40.0, -22.0, -30.0, -26.0])  # after minus before: +10, +2, +20, +1
    run(tmp_path / "other", [-40.0, -22.0])  # other images: other draws
    spec = "taskcodec-classical/task"
    monkeypatch.setattr("sys.argv", ["bd_pairs", str(tmp_path / "after"), "traffic", spec, spec,
                                     "--against", str(tmp_path / "before")])
    bd_pairs.main()
    out = capsys.readouterr().out
    assert f"{spec} ({tmp_path / 'before'}): -40.0 %" in out
    diff = out.splitlines()[-1]
    assert "median +6.0 points" in diff and "spans 0" not in diff
    monkeypatch.setattr("sys.argv", ["bd_pairs", str(tmp_path / "after"), "traffic", spec, spec,
                                     "--against", str(tmp_path / "other")])
    with pytest.raises(SystemExit, match="2 bootstrap draws against 4"):
        bd_pairs.main()
