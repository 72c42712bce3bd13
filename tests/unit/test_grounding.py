import numpy as np
import pytest

from taskcodec.agents import plan_offline, policy_from_labels
from taskcodec.errors import GroundingSpecError
from taskcodec.grounding import get_backend, ground
from taskcodec.grounding.base import GroundingBackend, RawDetection, iou

ASTRONAUT_FACE = (177, 66, 272, 161)  # measured once by eye on the 512x512 sample


def test_opencv_finds_the_astronauts_face(astronaut_pixels):
    g = ground(astronaut_pixels, plan_offline("keep faces"), get_backend("opencv"))
    faces = [d for d in g.detections if d.label == "face"]
    assert faces and iou(faces[0].box, ASTRONAUT_FACE) > 0.6
    assert faces[0].score > 0.75 and faces[0].backend == "opencv"


def test_large_photo_boxes_come_back_in_original_pixels(astronaut_pixels):
    import cv2

    big = cv2.resize(astronaut_pixels, (4096, 4096), interpolation=cv2.INTER_CUBIC)
    g = ground(big, plan_offline("keep faces"), get_backend("opencv"))
    faces = [d for d in g.detections if d.label == "face"]
    scaled = tuple(v * 8 for v in ASTRONAUT_FACE)
    assert faces and iou(faces[0].box, scaled) > 0.5
    assert max(d.box[2] for d in g.detections) <= 4096


def test_classes_outside_the_policy_are_reported_unmapped(sample_dir):
    from taskcodec.imageio import load_image

    cat = load_image(sample_dir / "chelsea.png").pixels
    g = ground(cat, plan_offline("keep faces"), get_backend("opencv"))
    assert any(d.class_name == "cat face" and d.label is None for d in g.detections)


def test_ungroundable_policy_labels_are_listed(astronaut_pixels):
    g = ground(astronaut_pixels, policy_from_labels(["face", "giraffe", "pedestrian"]), get_backend("opencv"))
    assert g.ungroundable == ("giraffe",)


def test_blank_image_finds_nothing():
    g = ground(np.full((300, 400, 3), 127, np.uint8), plan_offline("people"), get_backend("opencv"))
    assert g.detections == ()


@pytest.mark.parametrize("spec,msg", [("", "empty"), ("yolo", "unknown grounding backend 'yolo'"),
                                      ("opencv:x", "takes no argument"), ("tiled", "tiled:SPEC")])
def test_bad_specs_are_clear_errors(spec, msg):
    with pytest.raises(GroundingSpecError, match=msg):
        get_backend(spec)


@pytest.mark.parametrize("spec", ["yolox", "nanodet", "saliency", "opencv", "yolox+saliency+opencv", "yolox|nanodet",
                                  "tiled:yolox"])
def test_every_backend_declares_what_ground_needs(spec):
    b = get_backend(spec)
    assert isinstance(b, GroundingBackend)
    assert b.max_side is None or (isinstance(b.max_side, int) and b.max_side > 0)
    assert 0.0 < b.merge_iou < 1.0 and b.open_vocabulary is False


class _CornerFinder:
    """A backend a developer might write: it declares its limits and ``ground`` honours them."""

    spec, max_side, merge_iou, open_vocabulary = "corner", 100, 0.5, True

    def __init__(self):
        self.seen: list[tuple[int, int]] = []
        self.asked: list[str] = []

    def class_map(self) -> dict[str, str]:
        return {}

    def detect(self, pixels, labels=None, classes=None):
        self.seen.append(pixels.shape[:2])
        self.asked = list(labels or [])
        h, w = pixels.shape[:2]
        return [RawDetection(class_name=labels[0], box=(0.0, 0.0, w / 2, h / 2), score=0.9, raw_score=0.9),
                RawDetection(class_name=labels[0], box=(1.0, 1.0, w / 2, h / 2), score=0.8, raw_score=0.8)]


def test_ground_follows_a_backends_declared_max_side_merge_iou_and_vocabulary():
    b = _CornerFinder()
    assert isinstance(b, GroundingBackend)
    g = ground(np.zeros((400, 600, 3), np.uint8), policy_from_labels(["kite"]), b)
    assert b.seen == [(67, 100)] and b.asked == ["kite"]  # shrunk to max_side; asked for the policy's labels
    assert len(g.detections) == 1  # the two overlapping boxes merged at merge_iou
    d = g.detections[0]
    assert d.label == "kite" and d.match == "exact" and g.ungroundable == ()  # open vocabulary: any label
    assert d.box == pytest.approx((0.0, 0.0, 300.0, 201.0), abs=0.1)  # boxes back in the original's pixels
