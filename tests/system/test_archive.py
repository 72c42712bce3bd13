"""Archival jobs: idempotent, verified, crash-safe; Dask workers; PostgreSQL; cron schedules."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlmodel import select

from taskcodec.archive import verify_file
from taskcodec.store import models as m
from taskcodec.store.db import session

TASK = "privacy audit: keep people and faces sharp"


def make_images(folder: Path, n: int, sample_dir: Path) -> list[Path]:
    """n distinct photos (crops of scikit-image samples), some in a subfolder."""
    srcs = [np.asarray(Image.open(sample_dir / f).convert("RGB")) for f in ("astronaut.png", "coffee.png", "rocket.jpg")]
    out = []
    for i in range(n):
        src = srcs[i % len(srcs)]
        y, x = 3 * (i // len(srcs)), 5 * (i // len(srcs))
        p = folder / ("sub" if i % 4 == 3 else "") / f"img{i:03d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(src[y:y + 256, x:x + 320]).save(p, quality=90)
        out.append(p)
    return out


@pytest.fixture
def source(tmp_path, sample_dir, bad_images):
    src = tmp_path / "src"
    imgs = make_images(src, 4, sample_dir)
    shutil.copy(imgs[0], src / "copy-of-0.jpg")  # same content, another name
    shutil.copy(bad_images["empty"], src / "broken.png")
    return src


def archived_rows():
    with session() as s:
        return s.exec(select(m.Encoding).where(m.Encoding.archive_key.is_not(None))).all()


def test_archive_is_idempotent_and_verified(prefect_server, home, source, tmp_path):
    from taskcodec.flows import run_archive

    out = tmp_path / "out"
    items = {Path(i.path).name: i for i in run_archive(TASK, str(source), str(out))}
    assert [items[f"img00{k}.jpg"].status for k in range(1, 4)] == ["archived"] * 3
    twins = sorted([items["img000.jpg"].status, items["copy-of-0.jpg"].status])
    assert twins == ["archived", "skipped"]  # same content: encoded once
    assert items["broken.png"].status == "failed"
    assert "file is empty" in items["broken.png"].reason
    assert (out / "sub" / "img003.jpg.tcb").is_file()
    rows = archived_rows()
    assert len(rows) == 4 and all(verify_file(r.bitstream_path, r.bitstream_sha256) for r in rows)
    again = run_archive(TASK, str(source), str(out))
    assert sorted(i.status for i in again) == ["failed"] + ["skipped"] * 5
    assert len(archived_rows()) == 4  # nothing encoded twice
    # a damaged bitstream is noticed and that image archived again
    damaged = out / "img001.jpg.tcb"
    damaged.write_bytes(damaged.read_bytes()[:-40])
    third = {Path(i.path).name: i.status for i in run_archive(TASK, str(source), str(out))}
    assert third["img001.jpg"] == "archived" and verify_file(damaged)
    assert len(archived_rows()) == 4


def test_originals_are_deleted_only_after_verification(prefect_server, home, source, tmp_path):
    from taskcodec.flows import run_archive

    items = run_archive(TASK, str(source), str(tmp_path / "out"), delete_originals_after_verify=True)
    deleted = {Path(i.path).name for i in items if i.deleted_original}
    assert deleted == {"img000.jpg", "img001.jpg", "img002.jpg", "img003.jpg", "copy-of-0.jpg"}
    left = sorted(p.name for p in source.rglob("*") if p.is_file())
    assert left == ["broken.png"]  # the failed one is kept


def test_dask_workers_give_the_same_result(prefect_server, home, source, tmp_path):
    from taskcodec.flows import run_archive

    items = run_archive(TASK, str(source), str(tmp_path / "out"), workers=2)
    assert sorted(i.status for i in items) == ["archived"] * 4 + ["failed", "skipped"]
    assert len(archived_rows()) == 4


def test_archive_on_postgresql(prefect_server, source, tmp_path, monkeypatch):
    from taskcodec.settings import get_settings
    from tests.pg import postgres_server

    with postgres_server() as url:
        monkeypatch.setenv("TASKCODEC_DATABASE_URL", url)
        get_settings.cache_clear()
        try:
            from taskcodec.flows import run_archive

            items = run_archive(TASK, str(source), str(tmp_path / "out"), workers=2)
            assert sorted(i.status for i in items) == ["archived"] * 4 + ["failed", "skipped"]
            with session() as s:
                assert s.get_bind().dialect.name == "postgresql"
                assert len(s.exec(select(m.Encoding)).all()) == 4
                run = s.exec(select(m.Run).where(m.Run.flow_name == "archive")).one()
                assert (run.status, run.n_ok, run.n_failed) == ("partial", 5, 1)
        finally:
            get_settings.cache_clear()


def _env(home: Path, **extra) -> dict:
    env = {**os.environ, "TASKCODEC_HOME": str(home), "PREFECT_HOME": str(home / "prefect"), **extra}
    for k in ("PREFECT_API_URL", "TASKCODEC_DATABASE_URL"):
        if k not in extra:
            env.pop(k, None)
    return env


def _exe() -> str:
    return shutil.which("taskcodec", path=os.path.dirname(sys.executable))


@pytest.mark.timeout(600)
def test_kill_9_mid_batch_then_rerun_leaves_exactly_one_bitstream_each(tmp_path, sample_dir):
    src, out, home = tmp_path / "src", tmp_path / "out", tmp_path / "home"
    imgs = make_images(src, 24, sample_dir)
    cmd = [_exe(), "archive", "--task", TASK, "--source", str(src), "--out", str(out), "--quality", "40"]
    proc = subprocess.Popen(cmd, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and len(list(out.rglob("*.tcb"))) < 4 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the archive process and everything it started
    proc.wait()
    written = len(list(out.rglob("*.tcb")))
    assert 4 <= written < len(imgs), "the kill must land mid-batch"
    r = subprocess.run(cmd, env=_env(home), capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    tcbs = sorted(out.rglob("*.tcb"))
    assert len(tcbs) == len(imgs) and not list(out.rglob("*.tmp"))
    os.environ["TASKCODEC_HOME"] = str(home)
    from taskcodec.settings import get_settings

    get_settings.cache_clear()
    try:
        rows = archived_rows()
        assert len(rows) == len(imgs) == len({r.archive_key for r in rows})
        assert sorted(Path(r.bitstream_path) for r in rows) == [p.resolve() for p in tcbs]
        for r in rows:
            verify_file(r.bitstream_path, r.bitstream_sha256)
    finally:
        os.environ["TASKCODEC_HOME"] = os.environ.get("TASKCODEC_TESTS_HOME", os.environ["TASKCODEC_HOME"])
        get_settings.cache_clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(api: str, path: str, body: dict) -> list[dict]:
    """POST a filter to the Prefect server's REST API (what its UI reads)."""
    import urllib.request

    req = urllib.request.Request(api + path, data=json.dumps({"limit": 200, "offset": 0, **body}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.mark.timeout(600)
def test_cron_schedule_fires_on_a_real_prefect_server(tmp_path, sample_dir):
    import urllib.request

    home, src, out = tmp_path / "home", tmp_path / "src", tmp_path / "out"
    make_images(src, 3, sample_dir)
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    prefect = shutil.which("prefect", path=os.path.dirname(sys.executable))
    env = _env(home, PREFECT_API_URL=api, PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5", PREFECT_RUNNER_POLL_FREQUENCY="2")
    (home / "prefect").mkdir(parents=True)
    server = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    serve = None
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{api}/health", timeout=2)
                break
            except OSError:
                assert time.time() < deadline and server.poll() is None, "prefect server did not start"
                time.sleep(0.5)
        r = subprocess.run([_exe(), "schedule", "create", "--name", "nightly", "--cron", "* * * * *", "--task", TASK,
                            "--source", str(src), "--out", str(out), "--quality", "40", "--timezone", "Europe/Paris"],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "registered with the Prefect server" in r.stdout, r.stdout + r.stderr
        for bad_args, says in ((["--cron", "every day"], "not a valid cron expression"),
                               (["--cron", "@daily", "--timezone", "Mars/Olympus"], "not an IANA timezone"),
                               (["--every", "soon"], "not a duration"), ([], "exactly one of --cron or --every")):
            bad = subprocess.run([_exe(), "schedule", "create", "--name", "x", "--task", TASK, "--source", str(src),
                                  "--out", str(out), *bad_args], env=env, capture_output=True, text=True)
            assert bad.returncode == 2 and says in bad.stderr, bad.stderr
        hourly = subprocess.run([_exe(), "schedule", "create", "--name", "hourly", "--every", "PT1H", "--task", TASK,
                                 "--source", str(src), "--out", str(tmp_path / "out2")], env=env, capture_output=True,
                                text=True)
        assert hourly.returncode == 0, hourly.stderr
        deployments = {d["name"]: d for d in _api(api, "/deployments/filter", {})}
        assert set(deployments) == {"nightly", "hourly"} and not deployments["hourly"]["paused"]
        assert deployments["nightly"]["schedules"][0]["schedule"]["timezone"] == "Europe/Paris"
        assert deployments["hourly"]["schedules"][0]["schedule"]["interval"] == 3600
        for cmd in (["pause", "hourly"], ["resume", "hourly"], ["pause", "hourly"]):
            assert subprocess.run([_exe(), "schedule", *cmd], env=env, capture_output=True).returncode == 0
        assert {d["name"]: d["paused"] for d in _api(api, "/deployments/filter", {})}["hourly"] is True
        listed = json.loads(subprocess.run([_exe(), "schedule", "list", "--json"], env=env, capture_output=True,
                                           text=True).stdout)
        assert [(j["name"], j["paused"]) for j in listed] == [("hourly", True), ("nightly", False)]
        gone = subprocess.run([_exe(), "schedule", "delete", "hourly"], env=env, capture_output=True, text=True)
        assert gone.returncode == 0 and "Prefect deployment" in gone.stdout
        assert [d["name"] for d in _api(api, "/deployments/filter", {})] == ["nightly"]
        serve = subprocess.Popen([_exe(), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        deadline = time.time() + 200  # the next whole minute, then the run itself
        while len(list(out.rglob("*.tcb"))) < 3:
            assert time.time() < deadline and serve.poll() is None, "the scheduled run did not complete in time"
            time.sleep(1)
        os.environ["TASKCODEC_HOME"] = str(home)
        from taskcodec.settings import get_settings

        get_settings.cache_clear()
        deadline = time.time() + 60
        while True:
            with session() as s:
                runs = s.exec(select(m.Run).where(m.Run.flow_name == "archive")).all()
            if runs and runs[0].status == "completed":
                break
            assert time.time() < deadline
            time.sleep(1)
        assert runs[0].flow_run_id and runs[0].n_ok == 3
        # a batch on the user's server: a named run, Failed when an image is bad, its table artifact and logs
        src2 = tmp_path / "src2"
        make_images(src2, 2, sample_dir)
        (src2 / "broken.png").write_bytes(b"not an image")
        r = subprocess.run([_exe(), "archive", "--task", TASK, "--source", str(src2), "--out", str(tmp_path / "a2")],
                           env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 1 and "2 archived" in r.stdout and "1 failed" in r.stdout, r.stdout + r.stderr
        run = [f for f in _api(api, "/flow_runs/filter", {}) if f["name"].startswith("archive src2/")]
        assert len(run) == 1 and run[0]["state"]["type"] == "FAILED", run
        assert run[0]["name"] == "archive src2/: privacy audit: keep people and faces sh…"  # folder, task
        assert run[0]["state"]["message"] == "2 of 3 images ok, 1 failed"
        tasks = {t["name"] for t in _api(api, "/task_runs/filter", {"task_runs": {"flow_run_id": {"any_": [run[0]["id"]]}}})}
        assert "archive broken.png" in tasks and len(tasks) == 3
        art = _api(api, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run[0]["id"]]}}})
        assert [a["key"] for a in art] == ["taskcodec-archive"] and "broken.png" in art[0]["data"]
        logs = _api(api, "/logs/filter", {"logs": {"flow_run_id": {"any_": [run[0]["id"]]}}})
        assert any("broken.png" in entry["message"] and entry["level"] >= 40 for entry in logs)  # ERROR in the UI
    finally:
        for p in (serve, server):
            if p is not None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        from taskcodec.settings import get_settings

        os.environ["TASKCODEC_HOME"] = os.environ.get("TASKCODEC_TESTS_HOME", os.environ["TASKCODEC_HOME"])
        get_settings.cache_clear()
