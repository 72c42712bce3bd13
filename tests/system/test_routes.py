"""Decode routes: classical and diffusion reconstruction (tiny real pipelines), machine tools."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from taskcodec import stages
from taskcodec.cli import app
from taskcodec.consumers.reconstruct.classical import reconstruct, seam_strength
from taskcodec.consumers.reconstruct.diffusion import DiffusionReconstructor, tiles
from tests.conftest import SHARED, make_tcb

runner = CliRunner()
MODELS = SHARED / "models"
COCO_IMG = SHARED / "data" / "coco-val158" / "images" / "000000000139.jpg"
needs_shared = pytest.mark.skipif(not COCO_IMG.is_file(), reason=f"shared data not found under {SHARED}")


def cli(*args, code=0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    from tests.tiny_models import save_tiny_inpainting

    root = tmp_path_factory.mktemp("sd")
    save_tiny_inpainting(root / "inpaint", root / "controlnet")
    return root


@pytest.fixture
def tcb(home, astronaut, tmp_path):
    return make_tcb(astronaut, "privacy audit: keep people and faces sharp", tmp_path / "a.tcb", quality=30)


def test_classical_reconstruction_removes_seams_and_keeps_transmitted_pixels(tcb):
    decoded = stages.decode_bitstream(stages.read_bitstream(tcb))
    assert decoded.mask.any()
    out = reconstruct(decoded.pixels, decoded.base, decoded.mask)
    assert (out[decoded.mask] == decoded.pixels[decoded.mask]).all()
    assert seam_strength(out, decoded.mask) < seam_strength(decoded.pixels, decoded.mask)
    import cv2

    near = cv2.dilate(decoded.mask.astype(np.uint8), np.ones((61, 61), np.uint8)).astype(bool)
    assert np.abs(out[~near].astype(int) - decoded.base[~near]).max() <= 2  # far from objects: the base


def test_human_classical_is_the_default_and_is_recorded(tcb, tmp_path):
    r = cli("decode", tcb, "--for", "human", "--out", tmp_path / "h.png")
    meta = json.loads((tmp_path / "h.png.json").read_text())
    assert meta["reconstruct"] == "classical" and meta["layers_used"] == [0, 1, 2]
    assert 0 < meta["transmitted_fraction"] < 1 and "h.png.json" in r.stdout
    audit = json.loads(cli("why", tcb, "--json").stdout)[0]
    assert [d["route"] for d in audit["decodes"]] == ["human:classical"]


def test_diffusion_route_with_a_tiny_pipeline(tcb, tiny_sd, tmp_path):
    none = tmp_path / "raw.png"
    cli("decode", tcb, "--for", "human", "--reconstruct", "none", "--out", none)
    out = tmp_path / "d.png"
    cli("decode", tcb, "--for", "human", "--reconstruct", "diffusion", "--model", tiny_sd / "inpaint",
        "--steps", "2", "--seed", "7", "--tile", "128", "--out", out)
    raw = np.asarray(Image.open(none))
    img = np.asarray(Image.open(out))
    mask = np.asarray(Image.open(tmp_path / "d.png.mask.png")) > 127
    assert img.shape == raw.shape == (512, 512, 3) and mask.any() and not mask.all()
    assert (img[mask] == raw[mask]).all()  # transmitted pixels are exact
    assert (img[~mask] != raw[~mask]).any(axis=-1).mean() > 0.5  # the rest was synthesised
    meta = json.loads((tmp_path / "d.png.json").read_text())
    assert (meta["steps"], meta["seed"], meta["model"], meta["tile"]) == (2, 7, str(tiny_sd / "inpaint"), 128)
    assert "person" in meta["prompt"] or "face" in meta["prompt"]
    cli("decode", tcb, "--for", "human", "--reconstruct", "diffusion", "--model", tiny_sd / "inpaint",
        "--steps", "2", "--seed", "7", "--tile", "128", "--out", tmp_path / "d2.png")
    assert (np.asarray(Image.open(tmp_path / "d2.png")) == img).all()  # same seed, same image
    audit = json.loads(cli("why", tcb, "--json").stdout)[0]
    diff = [d for d in audit["decodes"] if d["route"] == "human:diffusion"]
    assert len(diff) == 2 and diff[0]["seed"] == 7 and diff[0]["steps"] == 2


def test_controlnet_inpainting_and_tiles(tiny_sd):
    rec = DiffusionReconstructor(str(tiny_sd / "inpaint"), controlnet=str(tiny_sd / "controlnet"))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (150, 230, 3), dtype=np.uint8)
    mask = np.zeros((150, 230), bool)
    mask[30:90, 40:120] = True
    windows = tiles(150, 230, 96, 24)
    assert len(windows) > 2 and {(w[2], w[3]) for w in windows} >= {(230, 150)}
    out = rec(img, mask, "a photo of person", steps=2, seed=1, tile=96, overlap=24)
    assert out.shape == img.shape and (out[mask] == img[mask]).all()
    assert (out[~mask] != img[~mask]).any(axis=-1).mean() > 0.5


def test_missing_diffusion_model_is_a_clear_error(tcb, tmp_path):
    r = cli("decode", tcb, "--for", "human", "--reconstruct", "diffusion", "--model", tmp_path / "nope",
            "--out", tmp_path / "x.png", code=1)
    assert "could not load the diffusion pipeline" in r.stderr


def test_machine_route_lists_objects_and_rejects_unknown_tools(tcb, tmp_path):
    cli("decode", tcb, "--for", "machine", "--out", tmp_path / "m.json")
    body = json.loads((tmp_path / "m.json").read_text())
    assert body["route"] == "machine" and {o["label"] for o in body["objects"]} == {"person", "face"}
    assert "must be one of" in cli("decode", tcb, "--for", "machine:dance", "--out", tmp_path / "x.json",
                                   code=2).stderr


@needs_shared
@pytest.mark.parametrize("detector", ["onnx:yolox_nano.onnx", "tflite:yolov8n_int8.tflite"])
def test_machine_detect_writes_coco_detections(home, tmp_path, detector):
    tcb = make_tcb(COCO_IMG, "living room: tv, chairs and people", tmp_path / "c.tcb", grounding="onnx:nanodet_m.onnx",
                   quality=70)
    image_id = int(COCO_IMG.stem)
    cli("decode", tcb, "--for", "machine:detect", "--detector", detector, "--threshold", "0.3",
        "--image-id", image_id, "--out", tmp_path / "det.json")
    dets = json.loads((tmp_path / "det.json").read_text())  # the COCO results list itself
    body = json.loads((tmp_path / "det.json.meta.json").read_text())
    assert body["route"] == "machine:detect" and (tmp_path / "det.json.png").is_file()
    assert dets and all(len(d["bbox"]) == 4 and d["bbox"][2] > 0 and d["score"] >= 0.3 for d in dets)
    import contextlib
    import io

    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        res = COCO(str(COCO_IMG.parent.parent / "instances.json")).loadRes(str(tmp_path / "det.json"))  # as-is
    assert {a["image_id"] for a in res.anns.values()} == {image_id}
    from taskcodec.consumers.machine.detect import CATEGORY_ID

    assert all(d["category_id"] == CATEGORY_ID[d["label"]] for d in dets)
    assert {d["label"]: d["category_id"] for d in dets}.get("tv") == 72  # COCO's own category id


@needs_shared
def test_machine_classify_with_the_tflite_mobilenet(home, tmp_path, sample_dir):
    tcb = make_tcb(sample_dir / "chelsea.png", "pets: cats and dogs", tmp_path / "cat.tcb", quality=80)
    cli("decode", tcb, "--for", "machine:classify", "--model", MODELS / "mobilenet_v2_1.0_224_quant.tflite",
        "--out", tmp_path / "cls.json")
    res = json.loads((tmp_path / "cls.json").read_text())["result"]
    assert len(res["image"]) == 5 and res["image"][0]["score"] >= res["image"][1]["score"]
    assert any("cat" in t["label"].lower() for t in res["image"][:5])  # a tabby cat photo


def test_machine_classify_with_a_transformers_model_folder(tcb, tmp_path):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    folder = tmp_path / "vit"
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=37, num_labels=3, id2label={0: "alpha", 1: "beta", 2: "gamma"},
                    label2id={"alpha": 0, "beta": 1, "gamma": 2})
    ViTForImageClassification(cfg).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    cli("decode", tcb, "--for", "machine:classify", "--model", folder, "--out", tmp_path / "v.json")
    res = json.loads((tmp_path / "v.json").read_text())["result"]
    assert {t["label"] for t in res["image"]} == {"alpha", "beta", "gamma"}
    assert abs(sum(t["score"] for t in res["image"]) - 1.0) < 1e-3
    assert [o["label"] for o in res["objects"]] == ["person", "face"]
