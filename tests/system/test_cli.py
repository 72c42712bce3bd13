import json
import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from taskcodec.cli import app

runner = CliRunner()
TASK = "privacy audit: keep people and faces sharp"


def run(*args, code=0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, (r.exit_code, r.output, r.stderr if hasattr(r, "stderr") else "")
    return r


def test_plan_json_has_the_documented_fields(home):
    body = json.loads(run("plan", TASK, "--json").stdout)
    assert body["source"] == "offline" and body["policy_id"] == 1 and body["prompt_version"]
    assert [l["name"] for l in body["labels"]][:2] == ["person", "face"]
    assert all(0 <= l["importance"] <= 1 for l in body["labels"])
    again = json.loads(run("plan", TASK, "--json").stdout)
    assert again["cached"] and again["policy_id"] == 1
    assert [st["node"] for st in again["agent_steps"]][:3] == ["normalise", "lookup", "propose"]
    assert json.loads(run("plan", TASK, "--json", "--refresh").stdout)["version"] == 2


def test_empty_task_is_a_clear_error_not_a_traceback(home):
    r = run("plan", "  ", code=2)
    assert "task text is empty" in r.output and "Traceback" not in r.output


def test_ground_json_lists_label_class_box_score(home, astronaut, bad_images):
    r = run("ground", "--labels", "face,person,giraffe", "--grounding", "opencv", "--json", astronaut,
            bad_images["empty"], code=1)
    body = json.loads(r.stdout)
    ok, bad = body
    assert ok["ungroundable"] == ["giraffe"] and ok["threshold"] == 0.4
    face = [d for d in ok["detections"] if d["label"] == "face"][0]
    assert face["class_name"] == "face" and len(face["box"]) == 4 and face["score"] > 0.75
    assert "file is empty" in bad["error"]
    hi = json.loads(run("ground", "--labels", "face,person", "--grounding", "opencv", "--threshold", "0.9", "--json",
                        astronaut).stdout)
    assert all(d["score"] >= 0.9 for d in hi[0]["detections"])
    run("ground", astronaut, code=2)  # neither --task nor --labels


@pytest.mark.parametrize("flows", ["auto", "always"])
def test_compress_decode_why_round_trip(prefect_server, home, astronaut, sample_dir, bad_images, tmp_path, flows,
                                        monkeypatch):
    from sqlmodel import select

    from taskcodec.settings import get_settings
    from taskcodec.store import models as m
    from taskcodec.store.db import session

    monkeypatch.setenv("TASKCODEC_FLOWS", flows)
    get_settings.cache_clear()
    out = tmp_path / "out"
    r = run("compress", "--task", TASK, "--out", out, "--quality", "50", "--grounding", "opencv", astronaut,
            sample_dir / "chelsea.png", bad_images["notes"], code=1)
    assert "2 encoded, 1 failed" in r.stdout and "not a recognised image format" in r.stdout
    with session() as s:  # three images and no server configured: the stages directly, unless asked for a flow
        run_row = s.exec(select(m.Run)).one()
    assert (run_row.status, run_row.n_ok, run_row.n_failed) == ("partial", 2, 1)
    assert (run_row.flow_run_id is not None) == (flows == "always")
    tcb = out / "astronaut.tcb"

    run("decode", tcb, "--for", "human", "--out", tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").size == (512, 512)
    mask = Image.open(tmp_path / "a.png.mask.png")
    assert mask.size == (512, 512) and set(mask.getdata()) == {0, 255}

    run("decode", tcb, "--for", "machine", "--out", tmp_path / "a.json")
    body = json.loads((tmp_path / "a.json").read_text())
    assert {o["label"] for o in body["objects"]} == {"person", "face"} and (tmp_path / "a.png").is_file()
    run("decode", tcb, "--for", "machine", "--layers", "base", "--out", tmp_path / "b.json")
    assert json.loads((tmp_path / "b.json").read_text())["objects"] == []

    audit = json.loads(run("why", tcb, "--json").stdout)[0]
    reasons = {d["reason"] for d in audit["decisions"]}
    assert {"background_coarse", "in_policy", "not_detected"} <= reasons
    sent = [d for d in audit["decisions"] if d["action"] == "transmit"]
    assert sum(d["bytes"] for d in sent) == sum(l["bytes"] for l in audit["layers"])
    made_by = [st["node"] for st in audit["policy"]["made_by"]]
    assert made_by == ["normalise", "lookup", "propose", "validate", "rank", "persist"]
    by_image = json.loads(run("why", astronaut, "--json").stdout)  # by content hash
    assert by_image[0]["encoding_uid"] == audit["encoding_uid"]
    text = run("why", out / "chelsea.tcb", "--html", tmp_path / "why.html").stdout
    assert "not_in_policy" in text and "cat face" in text
    assert "<svg" in (tmp_path / "why.html").read_text()


def test_decode_reports_truncation_and_corruption(prefect_server, home, astronaut, tmp_path):
    run("compress", "--task", TASK, "--out", tmp_path, astronaut)
    data = (tmp_path / "astronaut.tcb").read_bytes()
    layers = json.loads(run("info", tmp_path / "astronaut.tcb", "--json").stdout)[0]["layers"]
    n = len(layers)
    (tmp_path / "cut.tcb").write_bytes(data[:-max(1, layers[-1]["length"] // 2)])  # into the last layer
    r = run("decode", tmp_path / "cut.tcb", "--for", "human", "--out", tmp_path / "cut.png")
    assert "truncated" in r.stderr and f"{n - 1} of {n} layers" in r.stdout
    r = run("decode", tmp_path / "cut.tcb", "--for", "human", "--strict", "--out", tmp_path / "x.png", code=1)
    assert not (tmp_path / "x.png").exists()
    (tmp_path / "bad.tcb").write_bytes(data[:20] + b"\x00" * 8 + data[28:])
    r = run("decode", tmp_path / "bad.tcb", "--for", "human", "--out", tmp_path / "y.png", code=1)
    assert "header is corrupt" in r.stderr and "Traceback" not in r.output


def test_compress_rejects_bad_options_before_starting_prefect(home, astronaut, tmp_path):
    assert "unknown codec" in run("compress", "--task", TASK, "--codec", "zip", "--out", tmp_path, astronaut,
                                  code=2).stderr
    assert "unknown grounding backend" in run("compress", "--task", TASK, "--grounding", "nope", "--out", tmp_path,
                                              astronaut, code=2).stderr
    run("compress", "--task", TASK, "--quality", "101", "--out", tmp_path, astronaut, code=2)


def test_console_script_help_everywhere():
    exe = shutil.which("taskcodec", path=os.path.dirname(sys.executable))
    assert exe, "the taskcodec console script is installed beside the interpreter"
    for cmd in ([], ["plan"], ["ground"], ["compress"], ["decode"], ["why"], ["demo"]):
        r = subprocess.run([exe, *cmd, "--help"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "Usage" in r.stdout, (cmd, r.stderr)


@pytest.mark.timeout(300)
def test_demo_runs_offline_and_explains_everything(tmp_path):
    env = {**os.environ, "TASKCODEC_HOME": str(tmp_path / "home"), "PREFECT_HOME": str(tmp_path / "home" / "pf")}
    env.pop("PREFECT_API_URL", None)
    exe = shutil.which("taskcodec", path=os.path.dirname(sys.executable))
    r = subprocess.run([exe, "demo", "--out", str(tmp_path / "demo")], capture_output=True, text=True, timeout=280,
                       env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = tmp_path / "demo"
    assert len(list((out / "bitstreams").glob("*.tcb"))) == 6
    assert len(list((out / "decoded").glob("*.mask.png"))) == 6
    page = (out / "audit.html").read_text()
    assert page.count("<section>") == 6 and "not_in_policy" in page and "in_policy" in page
    assert page.count("Whole-image JPEG q60") == 6  # each image compared with what users would pick instead
    assert "what was sent, and why" in r.stdout
    rules = [line for line in r.stdout.splitlines() if line.startswith("─")]
    assert rules and max(map(len, rules)) <= 100  # piped: a section rule is not 100,000 characters wide


def test_compress_full_codes_whole_images_without_a_task(prefect_server, home, astronaut, tmp_path):
    r = run("compress", "--full", "--quality", "50", "--out", tmp_path, astronaut)
    assert "1 encoded, 0 failed" in r.stdout
    audit = json.loads(run("why", tmp_path / "astronaut.tcb", "--json").stdout)[0]
    assert audit["policy"] is None and [d["reason"] for d in audit["decisions"]] == ["full_image"]
    assert [l["kind"] for l in audit["layers"]] == ["base"] and audit["grounding"] == "none"
    run("decode", tmp_path / "astronaut.tcb", "--for", "human", "--reconstruct", "none", "--out", tmp_path / "f.png")
    assert Image.open(tmp_path / "f.png").size == (512, 512)
    assert "not both" in run("compress", "--full", "--task", TASK, "--out", tmp_path, astronaut, code=2).stderr
