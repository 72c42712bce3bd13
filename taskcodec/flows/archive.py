"""``archive`` flow: compress what is new in a folder, verify every bitstream, record it.

Per image (one Prefect task, run by a thread pool, or by Dask worker processes
when ``workers`` > 1 or ``TASKCODEC_DASK_ADDRESS`` is set):

    hash -> already archived? (archive_key) -> load -> ground -> decide -> encode
         -> verify in memory -> write (temp + rename) -> verify on disk -> persist
         -> [delete the original after verification]

Idempotent: an image whose (content, policy version, codec settings) is already in
the store with an intact file is skipped. Crash-safe: files appear only whole
(rename), rows only with their file, and a re-run finishes what a killed one left.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from functools import partial

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run
from prefect.states import State
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from taskcodec import archive, pipeline
from taskcodec.domain.policy import TaskPolicy
from taskcodec.batch import error_text, recorded_run
from taskcodec.errors import BitstreamError, TaskcodecError
from taskcodec.flows.compress import STAGE_OPTIONS
from taskcodec.flows.outcome import finish, link, results_of, run_name
from taskcodec.imageio import sha256_file
from taskcodec.progress import item_done
from taskcodec.settings import get_settings


class ArchiveItem(BaseModel):
    path: str
    status: str  # archived | skipped | failed
    reason: str = ""
    bitstream: str | None = None
    bytes: int | None = None
    sha256: str | None = None  # of the bitstream, as recorded
    deleted_original: bool = False
    seconds: float = 0.0


def archive_one(path: str, source: str, out_dir: str, policy: TaskPolicy, codec: str, quality: int,
                grounding: str | None, delete_originals: bool, run_id: int | None) -> ArchiveItem:
    t0 = time.perf_counter()
    try:
        sha = sha256_file(path)
        settings = get_settings()  # what the output depends on, defaults resolved
        params = {"quality": quality, "grounding": grounding or settings.grounding, "uncovered": settings.uncovered,
                  "out": str(Path(out_dir).resolve())}  # another folder is another archive
        key = archive.archive_key(sha, policy.policy_id, codec, params)
        done = archive.find_archived(key)
        if done is not None:
            try:
                archive.verify_file(done.bitstream_path, done.bitstream_sha256)
            except (BitstreamError, OSError):
                archive.drop_stale(key)  # its file is gone or damaged: archive it again
                done = None
        if done is not None:
            deleted = _delete(path, done, delete_originals, out_dir)
            return ArchiveItem(path=path, status="skipped", reason="already archived", bitstream=done.bitstream_path,
                               sha256=done.bitstream_sha256, deleted_original=deleted,
                               seconds=round(time.perf_counter() - t0, 3))
        image = pipeline.load(path)
        if image.sha256 != sha:
            raise TaskcodecError(f"{path}: file changed while it was being archived")
        g = pipeline.ground_image(image, policy, grounding)
        encoded = pipeline.encode_grounded(image, g, policy, codec, quality)
        out = pipeline.write_bitstream(archive.output_path(out_dir, source, path), encoded.data,
                                       overwrite=True)  # the archive's own folder: its keys decide
        archive.verify_file(out)  # read back from disk and decoded before the row is committed
        try:
            enc_id = pipeline.record(image, policy, encoded, out, g.backend, run_id,
                                     {"ground_s": g.seconds, "encode_s": encoded.seconds}, archive_key=key)
        except IntegrityError:  # a concurrent run archived the same content first: keep its row and file
            done = archive.find_archived(key)
            return ArchiveItem(path=path, status="skipped", reason="archived concurrently",
                               bitstream=done.bitstream_path if done else None,
                               seconds=round(time.perf_counter() - t0, 3))
        done = archive.Archived(enc_id, str(out.resolve()), hashlib.sha256(encoded.data).hexdigest())
        deleted = _delete(path, done, delete_originals, out_dir)
        return ArchiveItem(path=path, status="archived", bitstream=str(out), bytes=len(encoded.data),
                           sha256=done.bitstream_sha256, deleted_original=deleted,
                           seconds=round(time.perf_counter() - t0, 3))
    except Exception as exc:  # one bad image fails only itself
        return ArchiveItem(path=path, status="failed", reason=error_text(path, exc),
                           seconds=round(time.perf_counter() - t0, 3))


def _delete(path: str, done: archive.Archived, enabled: bool, out_dir: str) -> bool:
    if not enabled:
        return False
    archive.delete_original(path, done, out_dir)
    return True


archive_t = task(archive_one, name="archive", **STAGE_OPTIONS)


def task_runner(workers: int | None):
    """Dask for real parallelism (separate processes), threads otherwise."""
    address = os.environ.get("TASKCODEC_DASK_ADDRESS")
    if address or (workers and workers > 1):
        from taskcodec.errors import require_extra

        require_extra("dask", "--workers N and TASKCODEC_DASK_ADDRESS (Dask)", "prefect_dask")
        from prefect_dask import DaskTaskRunner

        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                              "dashboard_address": None})
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=1)


@flow(name="archive", flow_run_name=partial(run_name, "archive", "source"))
def archive_flow(task_text: str, source: str, out_dir: str, codec: str = "classical", quality: int = 60,
                 grounding: str | None = None, delete_originals_after_verify: bool = False) -> State:
    """Archive every new image under ``source`` into ``out_dir`` for ``task_text``; one run at a time per
    output folder, and at the end every file is hash-checked against its record. Ends Failed when any
    image failed; ``run_archive`` returns the items either way."""
    policy = pipeline.plan_task(task_text)
    warning = pipeline.check_coverage(policy, grounding)  # raises under --uncovered fail
    if warning:
        get_run_logger().warning(warning)
    images = archive.list_images(source)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with archive.output_lock(out_dir):  # a second run into the same folder stops here, with a clear message
        items = _archive_locked(task_text, images, source, out_dir, policy, codec, quality, grounding,
                                delete_originals_after_verify)
    rows = [{"image": i.path, "status": i.status, "bytes": i.bytes, "original deleted": i.deleted_original,
             "bitstream": link(i.bitstream), "reason": i.reason, "seconds": i.seconds} for i in items]
    return finish("archive", rows, [i.reason for i in items if i.status == "failed"], items)


def _archive_locked(task_text, images, source, out_dir, policy, codec, quality, grounding,
                    delete_originals_after_verify) -> list[ArchiveItem]:
    swept = archive.sweep_temp_files(out_dir)
    params = dict(task=task_text, source=source, out_dir=out_dir, codec=codec, quality=quality, grounding=grounding,
                  delete_originals=delete_originals_after_verify, images=len(images), policy_id=policy.policy_id,
                  temp_files_swept=swept)
    with recorded_run("archive", params, str(flow_run.id) if flow_run.id else None) as run:
        futures = [archive_t.submit(str(p), source, out_dir, policy, codec, quality, grounding,
                                    delete_originals_after_verify, run.run_id) for p in images]
        items = []
        for p, f in zip(images, futures):
            try:
                item = f.result()
            except Exception as exc:
                item = ArchiveItem(path=str(p), status="failed", reason=error_text(p, exc))
            items.append(item)
            item_done(item.path, item.status != "failed")
        bad = archive.mismatches([(i.bitstream, i.sha256) for i in items if i.status != "failed" and i.sha256])
        for i in items:  # the file on disk and its record must agree at the end of every run
            if i.bitstream in bad:
                i.status, i.reason = "failed", bad[i.bitstream]
            run.done(i.path, i.reason if i.status == "failed" else None)
    return items


def run_archive(task_text: str, source: str, out_dir: str, workers: int | None = None, **kw) -> list[ArchiveItem]:
    """Run the archive flow with the task runner that ``workers`` asks for."""
    flow_fn = archive_flow.with_options(task_runner=task_runner(workers))
    return results_of(flow_fn(task_text, source, out_dir, **kw, return_state=True))
