"""Store faults are loud: a garbage database is a one-line error naming the file, a store deleted
mid-run fails the run, and runs whose process died are marked failed by the next run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from taskcodec.errors import StoreError
from taskcodec.settings import get_settings
from taskcodec.store import models as m
from taskcodec.store import repo
from taskcodec.store.db import session

TASK = "count cars and people"


def test_a_garbage_database_is_one_line_naming_the_file(home, tmp_path):
    home.mkdir(parents=True, exist_ok=True)
    db = home / "taskcodec.db"
    db.write_bytes(b"this is not a database, just notes\n" * 100)
    env = {**os.environ, "TASKCODEC_HOME": str(home)}
    r = subprocess.run([sys.executable, "-m", "taskcodec", "plan", TASK], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(db) in lines[0] and "cannot be used" in lines[0], lines


def test_a_store_deleted_mid_run_fails_the_run(prefect_server, home, tmp_path, sample_dir):
    from taskcodec.flows import compress_flow
    from taskcodec.progress import set_listener

    with session():  # the store exists before the run
        pass
    db = get_settings().home_dir / "taskcodec.db"
    images = [str(sample_dir / f) for f in ("astronaut.png", "coffee.png", "chelsea.png")]

    def delete_after_first(_path, _ok):
        if db.exists():
            db.unlink()

    set_listener(delete_after_first)
    try:
        with pytest.raises(StoreError, match="was deleted while taskcodec was using it"):
            compress_flow(TASK, images, str(tmp_path / "out"))  # was: "3 encoded, 0 failed", records lost
    finally:
        set_listener(None)


def test_runs_whose_process_died_are_marked_failed_on_the_next_start(home):
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with session() as s:
        s.add(m.Run(flow_name="archive", status="running", owner_pid=dead.pid, owner_host=socket.gethostname()))
        s.add(m.Run(flow_name="archive", status="running", owner_pid=os.getpid(), owner_host=socket.gethostname()))
        s.commit()
        repo.start_run(s, "compress", None, {})
        rows = {r.owner_pid: r for r in s.exec(repo.select(m.Run)).all()}
    assert rows[dead.pid].status == "failed" and f"pid {dead.pid}" in rows[dead.pid].errors[-1]["error"]
    assert rows[os.getpid()].status == "running"  # a live owner keeps its run


def test_a_read_only_store_is_refused_before_any_work(home, monkeypatch):
    from taskcodec.store import db

    home.mkdir(parents=True, exist_ok=True)
    path = home / "taskcodec.db"
    path.write_bytes(b"")
    real = os.access
    monkeypatch.setattr(db.os, "access", lambda p, mode: False if str(p) == str(path) else real(p, mode))
    db._engine_for.cache_clear()
    with pytest.raises(StoreError, match="store's file is read-only"):  # root ignores modes: simulate them
        session()
    db._engine_for.cache_clear()


def test_a_locked_store_is_one_line_after_the_busy_timeout(home, tmp_path):
    import sqlite3

    with session():
        pass
    db = get_settings().home_dir / "taskcodec.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process's long write
    try:
        env = {**os.environ, "TASKCODEC_HOME": str(home), "TASKCODEC_DB_BUSY_TIMEOUT_S": "1"}
        r = subprocess.run([sys.executable, "-m", "taskcodec", "plan", "count boats and people"], env=env,
                           capture_output=True, text=True, timeout=120)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert len(lines) == 1 and "locked" in lines[0] and str(db) in lines[0], lines
