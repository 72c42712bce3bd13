import numpy as np
import pytest

from taskcodec.agents import plan_offline
from taskcodec.codec import bitstream as bsm
from taskcodec.codec import classical
from taskcodec.codec.api import ObjectRequest, StreamRef
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
    face_rect = classical.object_rect(layers[1].meta["grid"], 512, 512)
    taken = np.zeros((512, 512), bool)
    taken[face_rect[1]:face_rect[3], face_rect[0]:face_rect[2]] = True
    body_crop = classical.object_geometry(layers[2].meta["grid"], layers[2].meta["scale16"], taken).crop
    assert body_crop[0] <= face_rect[0] and body_crop[2] >= face_rect[2]  # L-shaped region, bbox spans it
    dec = classical.decode(bsm.unpack(r.data))
    assert dec.mask.sum() == np.count_nonzero(_union_mask(layers, 512, 512))


def _union_mask(layers, w, h):
    m = np.zeros((h, w), bool)
    for l in layers[1:]:
        x0, y0, x1, y1 = classical.object_rect(l.meta["grid"], w, h)
        m[y0:y1, x0:x1] = True
    return m


def test_importance_sets_quality_and_size_sets_scale(astronaut_pixels):
    reqs = [req(0, FACE, 1.0, "face"), req(1, (300, 300, 500, 500), 0.2, "thing")]
    r = classical.encode(astronaut_pixels, reqs, classical.ClassicalParams(quality=60))
    face, thing = r.header.layers[1:]
    assert face.quality == 60 and thing.quality == 40
    big = classical.encode(astronaut_pixels, [req(0, (0, 0, 512, 512))], classical.ClassicalParams(quality=30))
    assert big.header.layers[1].meta["scale16"] > 24  # coded at under 1/1.5 of full size


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
    """The stream with header fields or layer 1's meta changed, handed to the decoder as parsed (a forger
    can write any of these into a v2 table)."""
    bs = bsm.unpack(data)
    layers = list(bs.header.layers)
    if "meta" in changes:
        layers[1] = layers[1].model_copy(update={"meta": {**layers[1].meta, **changes.pop("meta")}})
    if "payload" in changes:
        bs.payloads[1] = changes.pop("payload")
    bs.header = bs.header.model_copy(update={"layers": tuple(layers), **changes})
    return bs


@pytest.mark.parametrize("changes,msg", [
    ({"codec": "learned"}, "written by codec 'learned'"),
    ({"codec_version": "9"}, "codec version '9' is not supported"),
    ({"meta": {"scale16": 9999}}, "scale16 9999 is outside 16..64"),
    ({"meta": {"scale16": 48}}, "does not decode at the layer table's"),  # bare payloads: the size is the table's
    ({"payload": b"\x0a\x0b" + bytes(40)}, "AV1 payload (does not decode|holds 0 frames)"),
    ({"settings": {"format": "bmp"}}, "unknown raster format"),
])
def test_forged_layer_geometry_is_a_clear_error(astronaut_pixels, changes, msg):
    r = classical.encode(astronaut_pixels, [req(0, FACE)], classical.ClassicalParams(quality=50))
    with pytest.raises(BitstreamError, match=msg):
        classical.decode(_reheader(r.data, **changes))


def test_a_forged_grid_outside_the_image_is_refused_by_the_parser(astronaut_pixels):
    r = classical.encode(astronaut_pixels, [req(0, FACE)], classical.ClassicalParams(quality=50))
    bs = bsm.unpack(r.data)
    layers = list(bs.header.layers)
    layers[1] = layers[1].model_copy(update={"meta": {**layers[1].meta, "grid": [0, 0, 999, 10]}})
    with pytest.raises(BitstreamError, match="layers.1.grid"):
        bsm.unpack(bsm.pack(bs.header.model_copy(update={"layers": tuple(layers)}), bs.payloads))


def test_policy_header_fields(astronaut_pixels):
    p = plan_offline("faces")
    ref = StreamRef(policy_id=7, policy_hash=p.content_hash(), task=p.task, policy_labels=tuple(p.label_names),
                    encoding_uid="00000000000000ab")
    r = classical.encode(astronaut_pixels, [req(0, FACE, label="face")], classical.ClassicalParams(), ref)
    h = bsm.unpack(r.data).header
    assert (h.policy_id, h.policy_hash, h.task, h.encoding_uid) == (7, p.content_hash()[:8], None, "00000000000000ab")
    assert h.layers[1].label_index == p.label_names.index("face")
    named = bsm.unpack(bsm.annotate(r.data, p.task, p.label_names)).header
    assert named.task == "faces" and named.layers[1].label == "face"


def test_residual_layers_spend_fewer_bytes_than_pixel_layers(astronaut_pixels):
    reqs = [req(0, FACE, 1.0, "face"), req(1, (300, 300, 480, 500), 0.6)]
    a = classical.encode(astronaut_pixels, reqs, classical.ClassicalParams(quality=40, predict=False))
    b = classical.encode(astronaut_pixels, reqs, classical.ClassicalParams(quality=40, predict=True))
    da, db = classical.decode(bsm.unpack(a.data)), classical.decode(bsm.unpack(b.data))
    assert bsm.unpack(b.data).header.settings["predict"] and not bsm.unpack(a.data).header.settings["predict"]
    assert len(b.data) < len(a.data)
    assert psnr(db.pixels, astronaut_pixels, db.mask) > psnr(da.pixels, astronaut_pixels, da.mask) - 0.5


def test_a_v1_file_still_decodes_exactly():
    """tests/data/v1_classical.tcb was written by the v1 encoder (commit 8a97850: Pillow AVIF/WebP
    layers, JSON header); its decode then is tests/data/v1_classical.decoded.png."""
    from pathlib import Path

    from PIL import Image

    here = Path(__file__).resolve().parent.parent / "data"
    bs = bsm.read(here / "v1_classical.tcb")
    assert bs.version == (1, 0) and bs.header.task == "faces and people"
    assert [(e.kind, e.label) for e in bs.layers] == [("base", "background"), ("object", "face"), ("object", "person")]
    dec = classical.decode(bs)
    assert (dec.pixels == np.asarray(Image.open(here / "v1_classical.decoded.png"))).all()


def test_a_codec_version_2_stream_still_decodes_exactly():
    """tests/data/v2_classical_c2.tcb was written by classical codec version 2 (commit a138a3b: every AV1
    payload with its sequence header) from a crop of skimage's astronaut; its decode then is the .png."""
    from pathlib import Path

    from PIL import Image

    here = Path(__file__).resolve().parent.parent / "data"
    bs = bsm.read(here / "v2_classical_c2.tcb")
    assert bs.version == (2, 0) and bs.header.codec_version == "2"
    assert all(p[:1] == b"\x0a" for p in bs.payloads)  # each starts with its sequence header OBU
    dec = classical.decode(bs)
    assert (dec.pixels == np.asarray(Image.open(here / "v2_classical_c2.decoded.png"))).all()


def test_a_stream_written_by_one_process_decodes_identically_in_another(astronaut_pixels, tmp_path):
    """The writer decodes its own stream too; this process must get the same pixels, bit for bit."""
    import subprocess
    import sys

    np.save(tmp_path / "in.npy", astronaut_pixels[:200, :300])
    code = f"""
import numpy as np
from taskcodec.codec import bitstream, classical
from taskcodec.codec.api import ObjectRequest, StreamRef
px = np.load({str(tmp_path / "in.npy")!r})
reqs = [ObjectRequest(object_index=0, label="face", box=(177, 66, 272, 161), importance=1.0, tier="high"),
        ObjectRequest(object_index=1, label="person", box=(20, 20, 120, 190), importance=0.5, tier="medium")]
r = classical.encode(px, reqs, classical.ClassicalParams(quality=45))
open({str(tmp_path / "s.tcb")!r}, "wb").write(r.data)
np.save({str(tmp_path / "writer.npy")!r}, classical.decode(bitstream.unpack(r.data)).pixels)
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    bs = bsm.read(tmp_path / "s.tcb")
    assert bs.version == (2, 0) and len(bs.layers) == 3
    assert (classical.decode(bs).pixels == np.load(tmp_path / "writer.npy")).all()


def test_a_five_layer_stream_at_quality_30_is_at_most_3_percent_bookkeeping(astronaut_pixels):
    reqs = [req(0, FACE, 1.0, "face"), req(1, BODY, 0.8), req(2, (300, 300, 480, 500), 0.6, "rocket"),
            req(3, (400, 20, 500, 120), 0.3, "flag")]
    r = classical.encode(astronaut_pixels, reqs, classical.ClassicalParams(quality=30),
                         StreamRef(policy_id=3, policy_hash="ab" * 32, policy_labels=("face", "person", "rocket", "flag")))
    bs = bsm.unpack(r.data)
    assert len(bs.layers) == 5
    assert bs.header_bytes / len(r.data) <= 0.03, (bs.header_bytes, len(r.data))


def test_classical_streams_are_pinned_byte_for_byte():
    from tests.pinned import PINNED, digests

    assert digests("classical") == PINNED["classical"], "the classical codec writes other bytes than before"


def test_the_base_is_finer_when_the_objects_cover_half_the_image(astronaut_pixels):
    """Many objects: most of the picture matters, so the base is coded at 1/2 scale instead of 1/4."""
    h, w = astronaut_pixels.shape[:2]
    small, big = [req(0, FACE)], [req(0, (0.0, 0.0, w * 0.8, h * 0.8))]
    assert classical.coverage(small, w, h) < 0.1 and classical.coverage(big, w, h) >= 0.64
    assert classical.coverage([], w, h) == 0.0
    for reqs, scale in ((small, 4), (big, 2)):
        bs = bsm.unpack(classical.encode(astronaut_pixels, reqs, classical.ClassicalParams(quality=40)).data)
        assert bs.header.layers[0].meta["scale"] == scale


def test_the_tuning_scripts_shipped_variant_is_what_the_codec_ships(monkeypatch):
    """benchmarks/tune_classical.py measures variants by patching the codec's knobs; its ``shipped``
    variant must be the codec as it ships, or the tuning table compares against something else."""
    import benchmarks.tune_classical as tune
    from taskcodec import decisions
    from taskcodec.codec import av1

    knobs = ["base_plan", "object_scale16", "object_target", "encode", "OBJECT_TARGET", "FINE_BASE_COVERAGE",
             "enlarge_filter", "_base_layer"]
    for mod, name in [(classical, k) for k in knobs] + [(decisions, "RECALL_FLOOR_RATIO"), (av1, "PRESET"),
                                                        (av1, "SVT_PARAMS"), (av1, "ENCODER")]:
        monkeypatch.setattr(mod, name, getattr(mod, name))  # restored after the test
    cases = [(q, cov) for q in (1, 20, 35, 50, 70, 84, 85, 100) for cov in (0.0, 0.49, 0.5, 1.0)]
    rects = [(0, 0, w, h) for w, h in ((8, 8), (40, 200), (300, 120), (640, 480), (2000, 100))]
    shipped = ([classical.base_plan(q, c) for q, c in cases],
               [classical.object_scale16(r, q) for r in rects for q, _ in cases])
    base_layer = classical._base_layer
    assert classical.enlarge_filter(classical.CODEC_VERSION) == "lanczos"
    tune.apply("shipped+cubic+svtvb+aom")
    assert classical.enlarge_filter(classical.CODEC_VERSION) == "cubic" and av1.SVT_PARAMS and av1.ENCODER == "aom"
    tune.apply("shipped+aombase")
    assert classical._base_layer is not base_layer and av1.ENCODER == "svt"
    tune.apply("shipped")
    assert ([classical.base_plan(q, c) for q, c in cases],
            [classical.object_scale16(r, q) for r in rects for q, _ in cases]) == shipped
    assert classical.enlarge_filter(classical.CODEC_VERSION) == "lanczos" and av1.SVT_PARAMS == "" and av1.ENCODER == "svt"
    assert classical._base_layer is base_layer
    tune.apply("cov50")
    assert classical.base_plan(35, 0.0) == (4, 25)  # a variant does change the knobs
    tune.apply("shipped+hiq")
    assert classical.object_scale16((0, 0, 400, 100), 50) == 57  # 400 / 112 pixels, as shipped
    assert classical.object_scale16((0, 0, 400, 100), 70) == 27  # 400 / 240 pixels, not 400 / 144


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_both_shrink_filters_keep_a_flat_raster_flat_and_the_sizes_asked_for(dtype):
    from taskcodec.codec.raster import resize

    flat = np.full((37, 51, 3), 90, dtype)
    for shrink in ("area", "lanczos"):
        out = resize(flat, 13, 10, shrink=shrink)
        assert out.shape == (10, 13, 3) and out.dtype == dtype
        assert np.abs(out.astype(np.float32) - 90).max() < 0.5, shrink
    ramp = np.tile(np.linspace(-80, 80, 51, dtype=np.float32), (37, 1))[..., None].repeat(3, -1)
    lanczos = resize(ramp.astype(dtype) if dtype == np.float32 else np.uint8(ramp + 100), 13, 10, shrink="lanczos")
    assert np.all(np.diff(lanczos[5, :, 0].astype(np.float32)) > 0)  # a ramp stays a rising ramp
