"""Grounding DINO (tiny random model through the real loading path), the ONNX
backend on real COCO images, and open-label mapping."""

import json

import numpy as np
import pytest

from taskcodec.agents import policy_from_labels
from taskcodec.errors import GroundingSpecError
from taskcodec.grounding import get_backend, ground
from taskcodec.grounding.base import label_map
from tests.conftest import SHARED

COCO = SHARED / "data" / "coco-val158"
MODELS = SHARED / "models"
needs_shared = pytest.mark.skipif(not (MODELS / "yolox_nano.onnx").is_file(),
                                  reason=f"shared models not found under {MODELS} (set TASKCODEC_SHARED_DIR)")


@pytest.fixture(scope="module")
def tiny_gdino(tmp_path_factory):
    from tests.tiny_models import save_tiny_grounding_dino

    return save_tiny_grounding_dino(tmp_path_factory.mktemp("gdino"))


def test_grounding_dino_loads_from_a_folder_and_grounds_policy_labels(tiny_gdino):
    b = get_backend(f"grounding-dino:{tiny_gdino}")
    assert b.spec == f"grounding-dino:{tiny_gdino}" and b.device in ("cpu", "cuda")
    img = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    g = ground(img, policy_from_labels(["person", "car", "traffic light"]), b)
    assert g.ungroundable == () and g.detections
    assert {d.label for d in g.detections} <= {"person", "car", "traffic light"}
    assert all(d.class_name == d.label and d.match == "exact" for d in g.detections)
    assert all(0 <= d.box[0] < d.box[2] <= 320 and 0 <= d.box[1] < d.box[3] <= 240 for d in g.detections)
    for label in ("person", "car", "traffic light"):  # same-label NMS left no heavy overlaps
        boxes = [d.box for d in g.detections if d.label == label]
        from taskcodec.grounding.base import iou
        assert all(iou(a, c) < 0.5 for i, a in enumerate(boxes) for c in boxes[i + 1:])


def test_many_labels_are_split_across_prompts_and_merged(tiny_gdino):
    b = get_backend(f"grounding-dino:{tiny_gdino}")
    labels = [f"{w} {v}" for w in ("person", "car", "dog", "cat", "truck", "bus") for v in "abcd"] * 4
    chunks = b.chunks(labels)
    assert len(chunks) > 1 and [l for c in chunks for l in c] == labels
    tok = b.processor.tokenizer
    assert all(len(tok(" . ".join(c) + " .").input_ids) <= b.max_tokens for c in chunks)
    img = np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    raw = b.detect(img, labels)
    assert {r.class_name for r in raw} <= set(labels)
    assert len({r.class_name for r in raw}) > 1


def test_grounding_dino_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(GroundingSpecError, match="could not load Grounding DINO"):
        get_backend(f"grounding-dino:{tmp_path}")


@pytest.mark.parametrize("offline", ["1", ""])
def test_a_hub_model_that_cannot_be_fetched_fails_in_seconds_saying_what_to_do(tmp_path, monkeypatch, offline):
    """No cached copy and no hub (offline, or unreachable: a closed local port stands in for the hub)."""
    import time

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    t0 = time.perf_counter()
    with pytest.raises(GroundingSpecError, match="not in the local cache and .*grounding-dino:/path/to/model"):
        get_backend("grounding-dino:IDEA-Research/grounding-dino-tiny")
    assert time.perf_counter() - t0 < 15


def test_open_labels_map_to_closed_classes():
    b = get_backend(f"onnx:{MODELS / 'yolox_nano.onnx'}") if (MODELS / "yolox_nano.onnx").is_file() else None
    if b is None:
        pytest.skip(f"shared models not found under {MODELS}")
    p = policy_from_labels(["pedestrian", "automobile", "vehicle", "sofa bed", "dragon"])
    m = label_map(b, p)
    assert m["person"] == ("person", "exact")  # "pedestrian" is canonicalised to person by the vocabulary
    assert m["car"] == ("car", "exact")
    assert m["truck"] == ("vehicle", "group") and m["bus"] == ("vehicle", "group")
    assert m["couch"][0] == "sofa bed" and m["couch"][1].startswith("embedding")
    assert "dragon" not in {label for label, _ in m.values()}


@needs_shared
@pytest.mark.parametrize("model", ["yolox_nano.onnx", "nanodet_m.onnx"])
def test_onnx_backends_find_the_annotated_objects(model, tmp_path):
    from pycocotools.coco import COCO as Coco

    gt = Coco(str(COCO / "instances.json"))
    b = get_backend(f"onnx:{model}")  # a bare name resolves in the shared models folder
    assert b.format == model.split("_")[0]
    policy = policy_from_labels(["person", "car", "dog", "pizza", "tv"])
    hits = total = 0
    from taskcodec.imageio import load_image
    from taskcodec.grounding.base import iou

    for img in gt.loadImgs(gt.getImgIds())[:20]:
        g = ground(load_image(COCO / "images" / img["file_name"]).pixels, policy, b)
        assert g.ungroundable == ()
        found = [d for d in g.detections if d.label and d.score >= 0.3]
        for a in gt.loadAnns(gt.getAnnIds(imgIds=img["id"], iscrowd=False)):
            name = gt.loadCats(a["category_id"])[0]["name"]
            if name not in policy.label_names or a["area"] < 32 * 32:
                continue
            x, y, w, h = a["bbox"]
            total += 1
            hits += any(d.label == name and iou(d.box, (x, y, x + w, y + h)) >= 0.5 for d in found)
    assert total > 20 and hits / total > 0.5, (hits, total)


@needs_shared
def test_ground_cli_json_exposes_the_detections(home):
    from typer.testing import CliRunner

    from taskcodec.cli import app

    img = COCO / "images" / "000000000139.jpg"
    r = CliRunner().invoke(app, ["ground", "--labels", "person,tv,chair", "--grounding", "onnx:yolox_nano.onnx",
                                 "--threshold", "0.05", "--json", str(img)])
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)[0]
    assert body["backend"].endswith("yolox_nano.onnx")
    assert {d["label"] for d in body["detections"]} >= {"person", "tv", "chair"}
    assert all(d["score"] >= 0.05 for d in body["detections"])


def test_onnx_spec_errors():
    with pytest.raises(GroundingSpecError, match="needs a model file"):
        get_backend("onnx")
    with pytest.raises(GroundingSpecError, match="needs a model file"):
        get_backend("tflite")
    with pytest.raises(GroundingSpecError, match="does not exist"):
        get_backend("onnx:/nonexistent/model.onnx")
