"""``compress`` and ``decode`` flows: one Prefect task per stage per image.

A failing image fails only itself: its error is reported and recorded on the
run, and the batch goes on. Transient errors (I/O, a locked database) are
retried; bad input (``TaskcodecError``) is not, since it would fail again.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError

from taskcodec import pipeline, routes
from taskcodec.errors import TaskcodecError
from taskcodec.flows.progress import item_done
from taskcodec.imageio import sha256_file
from taskcodec.store import repo
from taskcodec.store.db import session


def _transient(_task, _task_run, state) -> bool:
    try:
        state.result()
    except TaskcodecError:
        return False
    except (OSError, OperationalError, TimeoutError):
        return True
    except Exception:
        return False
    return False


_stage = dict(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1, retry_condition_fn=_transient)

plan_t = task(pipeline.plan_task, name="plan", **_stage)
load_t = task(pipeline.load, name="load", **_stage)
ground_t = task(pipeline.ground_image, name="ground", **_stage)
encode_t = task(pipeline.encode_grounded, name="encode", **_stage)
persist_t = task(pipeline.persist, name="persist", **_stage)


class ImageReport(BaseModel):
    path: str
    ok: bool
    error: str | None = None
    bitstream: str | None = None
    encoding_id: int | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    bpp: float | None = None
    layers: int | None = None
    transmitted: int = 0
    dropped: int = 0
    seconds: float = 0.0


encode_full_t = task(pipeline.encode_full, name="encode", **_stage)


def _compress_one(path, out_path, policy, codec, quality, budget_bytes, grounding, threshold, run_id,
                  uncovered=None, overwrite=False) -> ImageReport:
    t0 = time.perf_counter()
    try:
        image = load_t(path)
        if policy is None:  # whole-image mode: no grounding, no decisions to take
            encoded = encode_full_t(image, codec, quality, budget_bytes)
            backend, timings = "none", {"encode_s": encoded.seconds}
        else:
            g = ground_t(image, policy, grounding, uncovered)
            encoded = encode_t(image, g, policy, codec, quality, budget_bytes, threshold, uncovered)
            backend = g.backend
            timings = {"ground_s": g.seconds, "encode_s": encoded.seconds, "total_s": round(time.perf_counter() - t0, 4)}
        enc_id = persist_t(image, policy, encoded, out_path, backend, run_id, timings, overwrite=overwrite)
    except Exception as exc:  # one bad image fails only itself
        msg = str(exc) if isinstance(exc, TaskcodecError) else f"{path}: {type(exc).__name__}: {exc}"
        return ImageReport(path=str(path), ok=False, error=msg, seconds=round(time.perf_counter() - t0, 3))
    objs = [d for d in encoded.decisions if d.object_index is not None]
    return ImageReport(
        path=str(path), ok=True, bitstream=str(out_path), encoding_id=enc_id, width=image.width, height=image.height,
        bytes=len(encoded.data), bpp=round(8 * len(encoded.data) / (image.width * image.height), 4),
        layers=len(encoded.header.layers), transmitted=sum(d.action != "drop" for d in objs),
        dropped=sum(d.action == "drop" for d in objs), seconds=round(time.perf_counter() - t0, 3),
    )


@flow(name="compress")
def compress_flow(
    task_text: str | None, images: list[str], out_dir: str, codec: str = "classical", quality: int = 60,
    budget_bytes: int | None = None, grounding: str | None = None, threshold: float | None = None,
    full: bool = False, uncovered: str | None = None, overwrite: bool = False,
) -> list[ImageReport]:
    """Plan the task once, then load, ground, decide, encode and persist every image
    (``full``: no task, every image coded whole)."""
    policy = None if full else plan_t(task_text)
    warning = None if full else pipeline.check_coverage(policy, grounding, uncovered)  # raises under "fail"
    if warning:
        get_run_logger().warning(warning)
    params = dict(task=task_text, images=len(images), out_dir=out_dir, codec=codec, quality=quality, full=full,
                  budget_bytes=budget_bytes, grounding=grounding, threshold=threshold, uncovered=uncovered,
                  policy_id=policy.policy_id if policy else None)
    with session() as s:
        run_id = repo.start_run(s, "compress", str(flow_run.id) if flow_run.id else None, params)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    reports = []
    for path, out_path in zip(images, pipeline.output_names(images, out_dir)):
        r = _compress_one(path, out_path, policy, codec, quality, budget_bytes, grounding, threshold, run_id,
                          uncovered, overwrite)
        reports.append(r)
        item_done(r.path, r.ok)
    with session() as s:
        repo.finish_run(s, run_id, sum(r.ok for r in reports),
                        [{"path": r.path, "error": r.error} for r in reports if not r.ok])
    return reports


read_t = task(pipeline.read_bitstream, name="read", **_stage)
decode_t = task(pipeline.decode_bitstream, name="decode", cache_policy=NO_CACHE)
human_t = task(routes.human, name="reconstruct", **_stage)


@flow(name="decode")
def decode_flow(files: list[str], out_dir: str, layers: str = "all", reconstruct: str | None = None,
                overwrite: bool = False) -> list[dict]:
    """Decode many bitstreams for people: ``OUT/<stem>.png``, its mask and its metadata each."""
    results = []
    for f in files:
        try:
            bs = read_t(f)
            out, mask, meta = human_t(bs, decode_t(bs, layers), Path(out_dir) / (Path(f).stem + ".png"),
                                      sha256_file(f), reconstruct, overwrite=overwrite)
            results.append({"file": f, "ok": True, "out": str(out), "mask": str(mask), "meta": str(meta),
                            "problems": bs.problems})
        except Exception as exc:
            results.append({"file": f, "ok": False, "error": str(exc)})
        item_done(f, results[-1]["ok"])
    return results
