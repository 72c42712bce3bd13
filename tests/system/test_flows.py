import json
import shutil

import pytest
from sqlmodel import select

from taskcodec.codec import bitstream
from taskcodec.store import models as m
from taskcodec.store.db import session

TASK = "privacy audit: keep people and faces sharp"


@pytest.fixture
def batch(tmp_path, sample_dir, bad_images):
    d = tmp_path / "in"
    d.mkdir()
    for name in ("astronaut.png", "camera.png"):
        shutil.copy(sample_dir / name, d / name)
    shutil.copy(sample_dir / "astronaut.png", tmp_path / "astronaut.png")
    return [d / "astronaut.png", bad_images["empty"], d / "camera.png", bad_images["bomb"],
            bad_images["notes"], tmp_path / "astronaut.png"]


def api_post(path: str, body: dict) -> list[dict]:
    """What the Prefect server (the UI's API) holds; the sync client's own filters send nulls it refuses."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as c:
        r = c._client.post(path, json={"limit": 200, "offset": 0, **body})
        r.raise_for_status()
        return r.json()


def test_compress_flow_end_to_end_one_bad_image_fails_only_itself(prefect_server, home, batch, tmp_path):
    from taskcodec.flows import compress_flow, run_decode
    from taskcodec.flows.outcome import results_of

    out = tmp_path / "out"
    state = compress_flow(TASK, [str(p) for p in batch], str(out), return_state=True)
    assert state.is_failed() and state.message == "3 of 6 images ok, 3 failed"  # not "Completed"
    reports = results_of(state)
    assert [r.ok for r in reports] == [True, False, True, False, False, True]
    assert "file is empty" in reports[1].error and "decompression bomb" in reports[3].error
    assert sorted(p.name for p in out.iterdir()) == ["astronaut-2.tcb", "astronaut.tcb", "camera.tcb"]
    with session() as s:
        run = s.exec(select(m.Run)).one()
        assert (run.status, run.n_ok, run.n_failed) == ("partial", 3, 3)
        assert run.flow_run_id and {e["path"] for e in run.errors} == {str(batch[i]) for i in (1, 3, 4)}
        encs = s.exec(select(m.Encoding)).all()
        assert len(encs) == 3 and all(e.run_id == run.id and e.policy_id for e in encs)
        assert {e.timings["ground_s"] > 0 for e in encs} == {True}
        decisions = s.exec(select(m.Decision)).all()
    for e in encs:  # one background decision per encoding, and a sentence on every row
        mine = [d for d in decisions if d.encoding_id == e.id]
        assert sum(d.reason.startswith("background_") for d in mine) == 1 and all(d.sentence for d in mine)
    for r in reports:
        if r.ok:
            bs = bitstream.read(r.bitstream)
            assert bs.complete and len(bs.header.layers) == r.layers
    run = api_post("/flow_runs/filter", {"flow_runs": {"id": {"any_": [str(state.state_details.flow_run_id)]}}})[0]
    assert run["name"] == "compress 6 images: privacy audit: keep people and faces sh…"  # the task, cut at 40
    tasks = {t["name"] for t in api_post("/task_runs/filter", {"task_runs": {"flow_run_id": {"any_": [run["id"]]}}})}
    assert {"load astronaut.png", "ground astronaut.png", "encode camera.png", "persist camera.png"} <= tasks
    art = api_post("/artifacts/filter", {"artifacts": {"key": {"any_": ["taskcodec-compress"]},
                                                       "flow_run_id": {"any_": [run["id"]]}}})
    assert len(art) == 1 and art[0]["type"] == "table" and "3 of 6 images ok" in art[0]["description"]
    rows = json.loads(art[0]["data"])
    assert [r["status"] for r in rows] == ["ok", "failed", "ok", "failed", "failed", "ok"]
    assert "file is empty" in rows[1]["error"] and rows[0]["bitstream"].startswith("[astronaut.tcb](file://")
    decoded = run_decode([r.bitstream for r in reports if r.ok] + [str(batch[4])], str(tmp_path / "dec"))
    assert [d["ok"] for d in decoded] == [True, True, True, False]
    assert "not a taskcodec bitstream" in decoded[3]["error"]
    assert (tmp_path / "dec" / "camera.png").is_file() and (tmp_path / "dec" / "camera.png.mask.png").is_file()


def test_transient_errors_are_retried_but_bad_input_is_not():
    from prefect.states import Failed
    from sqlalchemy.exc import OperationalError

    from taskcodec.errors import ImageInputError
    from taskcodec.flows.compress import _transient

    def state(exc):
        return Failed(data=exc)

    assert _transient(None, None, state(OSError("disk hiccup")))
    assert _transient(None, None, state(OperationalError("x", {}, Exception("database is locked"))))
    assert not _transient(None, None, state(ImageInputError("a.png", "file is empty")))
    assert not _transient(None, None, state(ValueError("bug")))
