"""Archive safety under an operator's bad day: a second run into the same folder, a new --out with
--delete-originals-after-verify, and two archive processes started at once."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from taskcodec.archive import ArchiveBusyError, output_lock
from taskcodec.store import models as m
from taskcodec.store.db import session
from tests.system.test_archive import TASK, make_images


def records(out: Path) -> dict[str, str]:
    with session() as s:
        rows = s.exec(select(m.Encoding).where(m.Encoding.archive_key.is_not(None))).all()
    return {r.bitstream_path: r.bitstream_sha256 for r in rows if Path(r.bitstream_path).is_relative_to(out.resolve())}


def files(out: Path) -> dict[str, str]:
    return {str(p.resolve()): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*.tcb")}


def test_a_second_run_into_the_same_folder_is_refused_clearly(prefect_server, home, tmp_path, sample_dir):
    from taskcodec.flows import run_archive

    make_images(tmp_path / "src", 2, sample_dir)
    out = tmp_path / "out"
    out.mkdir()
    with output_lock(out):  # as if another run were writing there
        with pytest.raises(ArchiveBusyError, match="another archive run is writing into this folder"):
            run_archive(TASK, str(tmp_path / "src"), str(out))
    assert not list(out.rglob("*.tcb"))
    assert {i.status for i in run_archive(TASK, str(tmp_path / "src"), str(out))} == {"archived"}


def test_delete_needs_a_verified_copy_in_the_current_out(prefect_server, home, tmp_path, sample_dir):
    from taskcodec.flows import run_archive

    src = tmp_path / "src"
    make_images(src, 3, sample_dir)
    run_archive(TASK, str(src), str(tmp_path / "old"))
    items = run_archive(TASK, str(src), str(tmp_path / "new"), delete_originals_after_verify=True)
    assert all(i.status == "archived" and i.deleted_original for i in items)  # archived again: a new folder
    new = tmp_path / "new"
    assert len(files(new)) == 3 and files(new) == records(new)  # every deleted original has its copy here
    assert not list(src.rglob("*.jpg"))


def test_two_archive_processes_at_once_leave_files_and_records_in_agreement(home, tmp_path, sample_dir):
    src, out = tmp_path / "src", tmp_path / "out"
    make_images(src, 6, sample_dir)
    env = {**os.environ, "TASKCODEC_HOME": str(home), "COLUMNS": "250"}
    cmd = [sys.executable, "-m", "taskcodec", "archive", "--task", TASK, "--source", str(src), "--out", str(out)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    for code, _out, err in results:
        assert code in (0, 1), err[-2000:]
        assert code == 0 or "another archive run is writing into this folder" in err, err[-2000:]
    assert len(files(out)) == 6 and files(out) == records(out)  # was: 15 of 20 files no longer matched


@pytest.mark.timeout(600)
def test_after_kill_9_the_next_run_reaps_the_orphaned_server_and_fails_the_dead_run(tmp_path, sample_dir):
    import signal
    import time

    from taskcodec.flows.runtime import SERVER_APP
    from tests.system.test_archive import _env, _exe

    src, out, home = tmp_path / "src", tmp_path / "out", tmp_path / "home"
    make_images(src, 12, sample_dir)
    cmd = [_exe(), "archive", "--task", TASK, "--source", str(src), "--out", str(out), "--quality", "40"]
    proc = subprocess.Popen(cmd, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not list(out.rglob("*.tcb")) and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the CLI alone: its temporary Prefect server is orphaned
    proc.wait()

    def servers() -> list[int]:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if SERVER_APP.encode() in cmdline and f"PREFECT_HOME={home / 'prefect'}".encode() in environ:
                found.append(int(pid))
        return found

    assert servers(), "the killed run left its server behind (what this test is about)"
    r = subprocess.run(cmd, env=_env(home), capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    time.sleep(1)
    assert servers() == []  # the rerun reaped the orphan and stopped its own server on exit
    os.environ["TASKCODEC_HOME"] = str(home)
    from taskcodec.settings import get_settings

    get_settings.cache_clear()
    try:
        with session() as s:
            runs = s.exec(select(m.Run).order_by(m.Run.id)).all()
        assert runs[0].status == "failed" and f"pid {proc.pid}" in runs[0].errors[-1]["error"]
        assert runs[-1].status == "completed"
    finally:
        os.environ["TASKCODEC_HOME"] = os.environ.get("TASKCODEC_TESTS_HOME", os.environ["TASKCODEC_HOME"])
        get_settings.cache_clear()
