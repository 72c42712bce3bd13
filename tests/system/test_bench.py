"""The benchmark instrument: metrics are right, and a small real run produces every output."""

import json

import numpy as np
import pytest

from taskcodec.bench.metrics import bd_rate, bpp_at_share, ms_ssim, psnr
from taskcodec.bench.report import point_key
from tests.conftest import SHARED

COCO = SHARED / "data" / "coco-val158"


def test_bd_rate_of_a_curve_at_half_the_rate_is_minus_50_percent():
    anchor = [(0.2, 0.20), (0.4, 0.26), (0.8, 0.30), (1.6, 0.32)]
    assert bd_rate(anchor, [(r / 2, q) for r, q in anchor]) == pytest.approx(-50.0, abs=1e-6)
    assert bd_rate(anchor, [(r * 1.25, q) for r, q in anchor]) == pytest.approx(25.0, abs=1e-6)
    assert bd_rate(anchor, anchor) == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(anchor, [(1.0, 0.9), (2.0, 0.95)]) is None  # no shared quality interval


def test_bd_rate_ignores_a_point_that_costs_more_and_scores_less_than_a_cheaper_one():
    anchor = [(0.2, 0.20), (0.4, 0.26), (0.8, 0.30), (1.6, 0.32)]
    half = [(r / 2, q) for r, q in anchor]
    # AVIF's traffic curve in the bench: its top point scores below the one before
    dominated = anchor + [(3.2, 0.31)]
    assert bd_rate(dominated, half) == pytest.approx(-50.0, abs=1e-6)
    assert bd_rate(anchor, half + [(1.2, 0.25)]) == pytest.approx(-50.0, abs=1e-6)
    # a point past the test curve's best, scoring less: without the frontier it bends the top
    assert bd_rate(anchor, half + [(1.0, 0.31)]) == pytest.approx(-50.0, abs=1e-6)


def test_bpp_at_95_percent_of_the_ceiling_interpolates_in_log_bpp():
    pts = [{"bpp": 0.1, "mAP": 0.2}, {"bpp": 0.4, "mAP": 0.3}, {"bpp": 1.6, "mAP": 0.4}]
    assert bpp_at_share(pts, 0.4 / 0.95) == pytest.approx(1.6)
    assert bpp_at_share(pts, 0.25 / 0.95) == pytest.approx(0.2)  # halfway in mAP, halfway in log-bpp
    assert bpp_at_share(pts, 0.1) == 0.1 and bpp_at_share(pts, 1.0) is None


def test_psnr_and_ms_ssim(astronaut_pixels):
    x = astronaut_pixels
    noisy = np.clip(x.astype(int) + np.random.default_rng(0).integers(-10, 11, x.shape), 0, 255).astype(np.uint8)
    assert psnr(x, x) == 100.0 and 25 < psnr(x, noisy) < 35
    mask = np.zeros(x.shape[:2], bool)
    assert psnr(x, noisy, mask) is None
    assert ms_ssim(x, x) == pytest.approx(1.0) and 0.5 < ms_ssim(x, noisy) < 0.99
    # the library's reference: worse noise scores lower; a side of 160 px or less falls back to SSIM
    noisier = np.clip(x.astype(int) + np.random.default_rng(0).integers(-40, 41, x.shape), 0, 255).astype(np.uint8)
    assert ms_ssim(x, noisier) < ms_ssim(x, noisy)
    assert 0.0 < ms_ssim(x[:120, :300], noisy[:120, :300]) < 0.99


@pytest.mark.skipif(not (COCO / "instances.json").is_file(), reason=f"shared COCO data not found under {COCO}")
@pytest.mark.timeout(900)
def test_bench_runs_end_to_end_on_a_few_images(prefect_server, home, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from taskcodec.cli import app

    out = tmp_path / "bench"
    from taskcodec.settings import get_settings

    monkeypatch.setenv("TASKCODEC_SHARED_DIR", str(get_settings().shared_path))  # absolute, before leaving the repo
    get_settings.cache_clear()
    monkeypatch.chdir(tmp_path)
    doc = out / "doc.md"
    r = CliRunner().invoke(app, ["bench", "--limit", "2", "--out", str(out), "--qualities", "webp=55,10",
                                 "--docs", str(doc), "--docs-section", "bench-webp2"])
    assert r.exit_code == 0, r.output
    assert {p.name for p in tmp_path.iterdir()} <= {"bench", "home"}  # nothing outside --out (no ./docs)
    text = doc.read_text()  # its own section, so the default run's stays
    assert "<!-- bench-webp2:start -->\n## Rate-accuracy benchmark (bench-webp2)" in text and "<!-- bench:" not in text
    assert "issue 7" not in r.output
    res = json.loads((out / "results.json").read_text())
    kinds = {(p["scenario"], p["codec"], p["mode"]) for p in res["points"]}
    assert ("traffic", "taskcodec-classical", "task") in kinds and ("all", "avif", "whole") in kinds
    assert ("kodak", "taskcodec-classical", "whole") in kinds
    for mode in ("task", "oracle", "whole"):
        assert ("traffic", "taskcodec-learned", mode) in kinds and ("all", "taskcodec-learned", mode) in kinds
    assert ("kodak", "taskcodec-learned", "whole") in kinds
    whole = {p["scenario"]: p["bpp"] for p in res["points"] if (p["codec"], p["setting"]) == ("avif", 50)}
    assert whole["all"] == whole["traffic"]  # a whole-image stream is coded once, judged per scenario
    assert len([p for p in res["points"] if p["codec"] == "jpeg" and p["scenario"] == "all"]) >= 4
    # --qualities: the WebP curve at its 2 settings, in rising order; every other curve at its defaults
    assert [p["setting"] for p in res["points"] if p["codec"] == "webp" and p["scenario"] == "all"] == [10, 55]
    assert res["qualities"] == {"jpeg": [10, 25, 50, 75], "webp": [10, 55], "avif": [15, 30, 50, 70],
                                "classical": [20, 35, 50, 70], "learned": [20, 35, 50, 70]}
    assert all(p["bpp"] > 0 and 0 <= p.get("mAP", 0) <= 1 for p in res["points"])
    assert {b["anchor"] for b in res["bd_rates"]} == {"avif", "jpeg"} and res["ceiling"]["all"]["mAP"] > 0
    # rate ordering inside each curve: a higher setting costs more bits
    for codec in ("jpeg", "avif", "taskcodec-classical", "taskcodec-learned"):
        bpps = [p["bpp"] for p in res["points"] if p["codec"] == codec and p["scenario"] == "all"
                and p["mode"] == "whole"]
        assert bpps == sorted(bpps)
    assert (out / "results.csv").read_text().count("\n") == len(res["points"]) + 1
    assert (out / "all_mAP.png").is_file() and (out / "kodak_psnr.png").is_file()
    summary = (out / "summary.md").read_text()
    assert "BD-rate vs AVIF" in summary and "95 % interval" in summary
    # every point's bootstrap draws: kept out of results.json, one entry a point, the same count everywhere
    assert all("boot" not in p for p in res["points"])
    every = json.loads((out / "draws.json").read_text())
    draws = every["points"]
    assert len(draws) == len(res["points"])
    assert all("boot" not in b for b in res["bd_rates"]) and len(every["bd_rates"]) == len(res["bd_rates"])
    key = "traffic|taskcodec-classical|task|50"
    n = len(draws[key]["bpp"])
    assert n == 400 and all(len(d["bpp"]) == n for d in draws.values())
    assert all(len(d["mAP"]) == n for k, d in draws.items() if not k.startswith("kodak|"))
    point = next(p for p in res["points"] if point_key(p) == key)
    assert min(draws[key]["bpp"]) <= point["bpp"] <= max(draws[key]["bpp"])
    for b in res["bd_rates"]:  # an interval, where there is one, is ordered
        assert b["ci95"] is None or b["ci95"][0] <= b["ci95"][1]
    assert res["workers"] == 2  # points ran concurrently: each must still use its own scenario's regions
    from taskcodec.domain.policy import policy_from_labels
    from taskcodec.bench import run as B
    from taskcodec.settings import get_settings

    data = get_settings().shared_path / "data" / "coco-val158"
    _, items = B.load_coco(data / "images", data / "instances.json", 2)
    for scen, (_title, labels) in B.SCENARIOS.items():
        policy = policy_from_labels(list(labels), min_score=0.3)
        bpp = np.mean([8 * B.taskcodec_stream(it.pixels, B.oracle(it, labels), policy, 50)[0] / it.pixels[..., 0].size
                       for it in items])
        got = next(p["bpp"] for p in res["points"] if (p["scenario"], p["codec"], p["mode"], p["setting"])
                   == (scen, "taskcodec-classical", "oracle", 50))
        assert got == round(float(bpp), 5)
