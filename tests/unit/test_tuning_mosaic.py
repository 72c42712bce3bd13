"""``benchmarks/tune_classical.py --mosaic``: each photo shrunk into a quarter, its boxes moved with its pixels."""

from __future__ import annotations

import numpy as np

from benchmarks.tune_classical import coco_of, mosaics
from taskcodec.bench.run import Item


def test_mosaic_boxes_follow_their_pixels():
    items = []
    for i, (w, h) in enumerate([(640, 480), (480, 640), (500, 375), (640, 427), (640, 480)]):
        px = np.full((h, w, 3), 40 * i, np.uint8)
        box = (100.0, 120.0, 260.0, 300.0)
        px[120:300, 100:260] = (250, 10, 10)  # the object: a red block inside its box
        items.append(Item(i + 1, f"p{i}", px, [("car", box)]))
    out = mosaics(items)
    assert len(out) == 1 and out[0].pixels.shape == (480, 640, 3)  # 4 photos a mosaic, the 5th left out
    assert [c for c, _ in out[0].boxes] == ["car"] * 4
    for k, ((_, (x0, y0, x1, y1)), it) in enumerate(zip(out[0].boxes, items)):
        h, w = it.pixels.shape[:2]
        s = min(320 / w, 240 / h)  # each photo fits a 320x240 quarter, aspect kept
        assert abs((x1 - x0) - 160 * s) < 1e-6 and abs((y1 - y0) - 180 * s) < 1e-6
        cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
        assert (k % 2) * 320 <= cx < (k % 2 + 1) * 320 and (k // 2) * 240 <= cy < (k // 2 + 1) * 240
        r, g, b = (int(v) for v in out[0].pixels[cy, cx])
        assert r > 235 and g < 25 and b < 25  # the red block is where its box went
    gt, cat_ids = coco_of(out)
    assert len(gt.getAnnIds(imgIds=[1], catIds=[cat_ids["car"]])) == 4


def test_size_ap_uses_cocos_area_classes():
    from benchmarks.size_ap import size_class

    assert size_class((0, 0, 31, 32)) == "small"
    assert size_class((10, 10, 42, 42)) == "medium"
    assert size_class((0, 0, 95, 97)) == "medium"
    assert size_class((0, 0, 96, 96)) == "large"
