"""The grounding that ships inside the package: packaged models, ensembles, coverage and likely areas."""

from __future__ import annotations

import numpy as np
import pytest

from taskcodec.domain.policy import policy_from_labels
from taskcodec.decisions import decide, requests_for
from taskcodec.errors import TaskcodecError
from taskcodec.imageio import load_image
from taskcodec.grounding import catalogue, get_backend, ground, packaged_model
from taskcodec.grounding import coverage
from taskcodec.grounding.base import iou, ungroundable_labels
from taskcodec.grounding.saliency import SaliencyBackend


@pytest.fixture(scope="module")
def motorcycle(sample_dir) -> np.ndarray:
    return load_image(sample_dir / "motorcycle_left.png").pixels


def test_models_and_their_licences_ship_inside_the_package():
    for name in ("yolox_nano.onnx", "nanodet_m.onnx", "u2netp.onnx", "LICENSE-Apache-2.0.txt",
                 "LICENSE-rembg-MIT.txt", "README.md"):
        assert packaged_model(name).is_file(), name
    assert "Apache License" in packaged_model("LICENSE-Apache-2.0.txt").read_text()


def test_default_finds_people_and_vehicles_without_shared(monkeypatch, tmp_path, motorcycle, astronaut_pixels):
    monkeypatch.setenv("TASKCODEC_SHARED_DIR", str(tmp_path / "nothing-here"))
    backend = get_backend("yolox+saliency")
    policy = policy_from_labels(["person", "motorcycle"])
    bike = [d for d in ground(motorcycle, policy, backend).detections if d.label == "motorcycle"]
    assert bike and bike[0].score > 0.8 and bike[0].backend == "yolox+saliency"
    x0, y0, x1, y1 = bike[0].box
    assert (x1 - x0) * (y1 - y0) > 0.4 * motorcycle.shape[0] * motorcycle.shape[1]  # the big bike in front
    people = [d for d in ground(astronaut_pixels, policy, backend).detections if d.label == "person"]
    assert people and people[0].score > 0.8


def test_ensemble_runs_saliency_only_when_the_policy_needs_it(monkeypatch, motorcycle):
    calls = []
    original = SaliencyBackend.detect
    monkeypatch.setattr(SaliencyBackend, "detect", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    backend = get_backend("yolox+saliency")
    ground(motorcycle, policy_from_labels(["person", "car"]), backend)
    assert calls == []
    g = ground(motorcycle, policy_from_labels(["main subject"]), backend)
    assert calls == [1]
    main = [d for d in g.detections if d.label == "main subject"]
    assert main and main[0].class_name == "salient object" and main[0].score > 0.5


def test_later_members_add_only_labels_earlier_ones_lack():
    both = get_backend("yolox+saliency+opencv")
    cmap = both.class_map()
    assert cmap["person"] == "person" and "full body" not in cmap and "upper body" not in cmap  # people: YOLOX
    assert cmap["face"] == "face" and cmap["license plate"] == "license plate" and cmap["salient object"]
    rows = {r["spec"]: r for r in catalogue("yolox+saliency")}
    assert rows["yolox+saliency (default)"]["labels"].startswith("81: ")
    assert "main subject" in rows["saliency"]["labels"] and "face" in rows["opencv"]["labels"]


def test_a_union_finds_what_either_member_finds_and_merges_what_both_find(sample_dir):
    """``yolox|nanodet``: every object of either detector, one detection where both saw the same object."""
    pixels = load_image(sample_dir / "motorcycle_left.png").pixels
    policy = policy_from_labels(["person", "motorcycle", "car", "bicycle"], min_score=0.1)
    union = get_backend("yolox|nanodet")
    assert union.spec == "yolox|nanodet" and set(union.class_map()) == set(get_backend("yolox").class_map())
    found = {spec: ground(pixels, policy, get_backend(spec)).detections for spec in ("yolox", "nanodet")}
    both = ground(pixels, policy, union).detections
    for spec, dets in found.items():  # each member's every object is in the union (merged or not)
        for d in dets:
            assert any(u.label == d.label and u.score >= d.score - 1e-9 and iou(u.box, d.box) > 0.5 for u in both), spec
    assert len(both) < len(found["yolox"]) + len(found["nanodet"])  # the big motorcycle: one object, not two
    assert max(len(v) for v in found.values()) <= len(both)
    assert [d.label for d in both if d.score > 0.8].count("motorcycle") == 1
    tied = get_backend("yolox|nanodet+saliency")  # | binds tighter than +
    assert [m.spec for m in tied.members] == ["yolox|nanodet", "saliency"]


@pytest.mark.parametrize("size", [(640, 480), (741, 500), (33, 17)])
def test_tiles_cover_the_image_and_overlap_their_neighbours(size):
    from taskcodec.grounding.tiled import OVERLAP, tiles

    w, h = size
    ts = tiles(w, h)
    assert len(ts) == 4 and all(0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h for x0, y0, x1, y1 in ts)
    covered = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in ts:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    (ax0, _, ax1, _), (bx0, _, _, _) = ts[0], ts[1]
    assert ax1 - bx0 >= int(OVERLAP * (ax1 - ax0))  # left and right neighbours share a quarter of a tile


def test_tiled_grounding_keeps_every_whole_image_object_and_no_cut_halves(motorcycle):
    """``tiled:yolox``: the whole-image pass's objects, each once, plus what only the tiles see."""
    policy = policy_from_labels(["person", "motorcycle", "car", "bicycle"], min_score=0.1)
    whole = ground(motorcycle, policy, get_backend("yolox")).detections
    tiled = ground(motorcycle, policy, get_backend("tiled:yolox"))
    assert tiled.backend == "tiled:yolox"
    for d in whole:
        assert any(t.label == d.label and t.score >= d.score - 1e-9 and iou(t.box, d.box) > 0.5
                   for t in tiled.detections), d
    sure = [t for t in tiled.detections if t.score >= 0.5 and t.label]
    assert [t.label for t in sure].count("motorcycle") == 1  # the big bike spans all tiles: no cut halves kept
    assert len(sure) > len([d for d in whole if d.score >= 0.5 and d.label])  # the tiles see more


def test_coverage_fail_mode_refuses_with_the_labels_named():
    policy = policy_from_labels(["person", "face", "license plate"])
    backend = get_backend("yolox")
    assert ungroundable_labels(backend, policy) == ("face", "license plate")
    with pytest.raises(coverage.CoverageError, match="cannot detect policy label.*face, license plate"):
        coverage.require(backend, policy, "fail")
    assert coverage.require(backend, policy, "area") == ("face", "license plate")
    with pytest.raises(TaskcodecError, match="--uncovered must be one of"):
        coverage.require(backend, policy, "sometimes")


def test_likely_area_of_a_face_is_the_top_of_each_person_and_goes_out_at_low_tier(astronaut_pixels):
    policy = policy_from_labels(["face", "person"])
    g = coverage.likely_areas(ground(astronaut_pixels, policy, get_backend("yolox")), policy, astronaut_pixels)
    person = next(d for d in g.detections if d.label == "person")
    face = next(d for d in g.detections if d.label == "face")
    assert face.match == "likely area: top of a person" and face.score == person.score
    assert face.box[1] == person.box[1] and face.box[3] < person.box[1] + 0.35 * (person.box[3] - person.box[1])
    decisions = decide(g, policy)
    row = next(d for d in decisions if d.label == "face" and d.object_index is not None)
    assert row.action == "transmit" and row.reason == "likely_area"
    label_row = next(d for d in decisions if d.label == "face" and d.object_index is None)
    assert label_row.reason == "ungroundable" and label_row.numbers["likely_areas"] == 1
    tiers = {r.label: r.tier for r in requests_for(decisions, policy.rules)}
    assert tiers["face"] == "low" and tiers["person"] != "low"


def test_a_label_with_no_host_falls_back_to_the_main_subject(motorcycle):
    policy = policy_from_labels(["helmet"])
    backend = get_backend("yolox")
    g = coverage.likely_areas(ground(motorcycle, policy, backend), policy, motorcycle)
    areas = [d for d in g.detections if d.label == "helmet"]
    assert areas and all(d.match == "likely area: the photo's main subject" for d in areas)


def test_package_data_globs_ship_every_model_file():
    """The wheel carries what ``packaged_model`` reads: every file in models/ matches a package-data glob."""
    import fnmatch
    import tomllib

    from tests.conftest import REPO

    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["taskcodec"]
    folder = packaged_model("README.md").parent
    for f in folder.iterdir():
        rel = f.relative_to(REPO / "taskcodec").as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in globs), rel
