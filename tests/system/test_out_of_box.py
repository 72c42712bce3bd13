"""System test: the installed package, with no ../shared and no settings, finds what the task asks for
(or says it cannot). Runs the real CLI in a child process on photos that ship with scikit-image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TASK = "traffic: people, vehicles and their licence plates"


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKCODEC_")}
    env.update(TASKCODEC_HOME=str(tmp_path / "home"), TASKCODEC_SHARED_DIR=str(tmp_path / "no-shared-here"),
               COLUMNS="250")
    return env


def _cli(tmp_path: Path, *args, code: int = 0) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "taskcodec", *map(str, args)], cwd=tmp_path, env=_clean_env(tmp_path),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == code, (r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    return r


def test_fresh_install_sends_people_and_vehicles_and_says_what_it_cannot_find(tmp_path, sample_dir):
    bike, astronaut = sample_dir / "motorcycle_left.png", sample_dir / "astronaut.png"
    out = tmp_path / "out"
    r = _cli(tmp_path, "compress", "--task", TASK, "--out", out, bike, astronaut)
    assert "cannot detect policy label(s) license plate: sending their likely area" in " ".join(r.stderr.split())
    audits = {Path(a["image"]).name: a for f in ("motorcycle_left", "astronaut")
              for a in json.loads(_cli(tmp_path, "why", out / f"{f}.tcb", "--json").stdout)}
    assert not (tmp_path / "no-shared-here").exists()
    for name, label in (("motorcycle_left.png", "motorcycle"), ("astronaut.png", "person")):
        audit = audits[name]
        assert audit["grounding"] == "yolox+saliency"
        assert label in [l["label"] for l in audit["layers"] if l["kind"] == "object"], (name, audit["layers"])
        plate = [d for d in audit["decisions"] if d["label"] == "license plate" and d["object_index"] is None]
        assert plate and plate[0]["reason"] == "ungroundable" and "likely area" in plate[0]["sentence"]
    # the motorcycle's plate area (bottom of the bike) goes out as its own low-quality layer, and says why
    areas = [d for d in audits["motorcycle_left.png"]["decisions"] if d["reason"] == "likely_area"]
    assert areas and areas[0]["label"] == "license plate" and areas[0]["layer_index"]
    assert "bottom of a motorcycle" in areas[0]["sentence"]


def test_require_all_labels_refuses_before_any_work(tmp_path, sample_dir):
    r = _cli(tmp_path, "compress", "--task", TASK, "--out", tmp_path / "out", "--require-all-labels",
             sample_dir / "astronaut.png", code=2)
    assert "cannot detect policy label(s) license plate" in " ".join(r.stderr.split())
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_list_backends_names_each_backends_labels(tmp_path):
    rows = json.loads(_cli(tmp_path, "ground", "--list-backends", "--json").stdout)
    by = {r["spec"]: r for r in rows}
    assert by["yolox+saliency (default)"]["model"] == "ships inside taskcodec"
    assert by["tiled"]["labels"] == "the labels SPEC finds"
    assert "main subject" in by["saliency"]["labels"] and "license plate" in by["opencv"]["labels"]
    assert "motorcycle" in by["yolox"]["labels"] and by["grounding-dino"]["labels"].startswith("any label")
