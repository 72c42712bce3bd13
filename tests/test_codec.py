import numpy as np
import pytest

from taskcodec.agents import plan_offline
from taskcodec.codec import bitstream as bsm
from taskcodec.codec import classical
from taskcodec.decisions import ObjectRequest
from taskcodec.errors import BitstreamError, BudgetError


def psnr(a, b, mask=None):
    d = (a.astype(float) - b.astype(float)) ** 2
    d = d[mask] if mask is not None else d
    return 10 * np.log10(255**2 / d.mean())


def req(i, box, importance=1.0, label="person"):
    return ObjectRequest(object_index=i, label=label, box=box, importance=importance,
                         tier="high" if importance >= 0.75 else "medium" if importance >= 0.4 else "low")


FACE = (177.0, 66.0, 272.0, 161.0)
BODY = (100.0, 40.0, 400.0, 500.0)  # contains the face box, margins included


def test_round_trip_objects_are_sharper_than_the_base(astronaut_pixels):
    r = classical.encode(astronaut_pixels, [req(0, FACE)], classical.ClassicalParams(quality=70))
    dec = classical.decode(bsm.unpack(r.data))
    assert dec.pixels.shape == astronaut_pixels.shape
    base_only = classical.decode(bsm.unpack(r.data), max_objects=0)
    inside = dec.mask
    assert inside.sum() > 0.9 * (FACE[2] - FACE[0]) * (FACE[3] - FACE[1])
    assert psnr(dec.pixels, astronaut_pixels, inside) > psnr(base_only.pixels, astronaut_pixels, inside) + 4
    assert not base_only.mask.any()
    assert (dec.pixels[~inside] == base_only.pixels[~inside]).all()  # outside objects: the base, untouched


def test_overlaps_are_coded_once_and_a_covered_object_gets_no_layer(astronaut_pixels):
    reqs = [req(0, BODY), req(1, FACE, 0.8, "face")]  # the face lies inside the body's rect
    r = classical.encode(astronaut_pixels, reqs, classical.ClassicalParams(quality=60))
    assert [o.reason for o in r.outcomes] == ["in_policy", "covered"]
    assert r.outcomes[1].numbers["covered_by"] == 1
    reqs = [req(0, FACE, 1.0, "face"), req(1, BODY, 0.8)]  # face first: the body codes only what is left
    r = classical.encode(astronaut_pixels, reqs, classical.ClassicalParams(quality=60))
    layers = r.header.layers
    assert [l.kind for l in layers] == ["base", "object", "object"]
    body_crop = layers[2].meta["crop"]
    face_rect = layers[1].meta["rect"]
    assert body_crop[0] <= face_rect[0] and body_crop[2] >= face_rect[2]  # L-shaped region, bbox spans it
    dec = classical.decode(bsm.unpack(r.data))
    assert dec.mask.sum() == np.count_nonzero(_union_mask(layers, 512, 512))


def _union_mask(layers, w, h):
    m = np.zeros((h, w), bool)
    for l in layers[1:]:
        x0, y0, x1, y1 = l.meta["rect"]
        m[y0:y1, x0:x1] = True
    return m


def test_importance_sets_quality_and_size_sets_scale(astronaut_pixels):
    reqs = [req(0, FACE, 1.0, "face"), req(1, (300, 300, 500, 500), 0.2, "thing")]
    r = classical.encode(astronaut_pixels, reqs, classical.ClassicalParams(quality=60))
    face, thing = r.header.layers[1:]
    assert face.quality == 60 and thing.quality == 40
    big = classical.encode(astronaut_pixels, [req(0, (0, 0, 512, 512))], classical.ClassicalParams(quality=30))
    assert big.header.layers[1].meta["scale"] > 1.5


def test_truncated_file_decodes_its_prefix_exactly(astronaut_pixels):
    reqs = [req(0, FACE, 1.0, "face"), req(1, (300, 300, 480, 500), 0.6)]
    r = classical.encode(astronaut_pixels, reqs, classical.ClassicalParams(quality=60))
    full = classical.decode(bsm.unpack(r.data))
    two = classical.decode(bsm.unpack(r.data), max_objects=1)
    cut = bsm.unpack(r.data[: len(r.data) - r.header.layers[2].length + 3])
    assert len(cut.payloads) == 2 and cut.problems
    part = classical.decode(cut)
    assert (part.pixels == two.pixels).all() and (part.mask == two.mask).all()
    assert (part.pixels[part.mask] == full.pixels[part.mask]).all()


def test_budget_is_respected_downgrading_before_dropping(astronaut_pixels):
    reqs = [req(0, FACE, 1.0, "face"), req(1, (300, 300, 480, 500), 0.6)]
    free = classical.encode(astronaut_pixels, reqs, classical.ClassicalParams(quality=80))
    budget = len(free.data) - 1500
    r = classical.encode(astronaut_pixels, reqs, classical.ClassicalParams(quality=80, budget_bytes=budget))
    assert len(r.data) <= budget
    assert {o.reason for o in r.outcomes} & {"budget_downgrade", "budget_exhausted"}
    with pytest.raises(BudgetError, match="base layer alone needs"):
        classical.encode(astronaut_pixels, reqs, classical.ClassicalParams(quality=80, budget_bytes=100))


def test_no_background_policy_writes_no_base(astronaut_pixels):
    r = classical.encode(astronaut_pixels, [req(0, FACE)], classical.ClassicalParams(background="none"))
    assert [l.kind for l in r.header.layers] == ["object"]
    dec = classical.decode(bsm.unpack(r.data))
    assert (dec.pixels[~dec.mask] == classical.GREY).all()


def _reheader(data, **changes):
    bs = bsm.unpack(data)
    layers = list(bs.header.layers)
    if "meta" in changes:
        layers[1] = layers[1].model_copy(update={"meta": {**layers[1].meta, **changes.pop("meta")}})
    hd = bs.header.model_copy(update={"layers": tuple(layers), **changes})
    return bsm.unpack(bsm.pack(hd, bs.payloads))


@pytest.mark.parametrize("changes,msg", [
    ({"codec": "learned"}, "written by codec 'learned'"),
    ({"codec_version": "9"}, "codec version '9' is not supported"),
    ({"meta": {"rect": [0, 0, 9999, 10]}}, "outside the 512x512 image"),
    ({"meta": {"size": [5000, 5000]}}, "larger than the region"),
    ({"meta": {"size": [3, 3]}}, "the layer table says 3x3"),
    ({"meta": {"format": "webp"}}, "is not a WEBP image"),
    ({"meta": {"format": "bmp"}}, "unknown raster format"),
])
def test_forged_layer_geometry_is_a_clear_error(astronaut_pixels, changes, msg):
    r = classical.encode(astronaut_pixels, [req(0, FACE)], classical.ClassicalParams(quality=50, format="avif"))
    with pytest.raises(BitstreamError, match=msg):
        classical.decode(_reheader(r.data, **changes))


def test_policy_header_fields(astronaut_pixels):
    p = plan_offline("faces")
    r = classical.encode(astronaut_pixels, [], classical.ClassicalParams(), policy_id=7,
                         policy_hash=p.content_hash(), task=p.task, encoding_uid="abc")
    h = bsm.unpack(r.data).header
    assert (h.policy_id, h.policy_hash, h.task, h.encoding_uid) == (7, p.content_hash(), "faces", "abc")
