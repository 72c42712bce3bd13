"""``archive`` flow: compress what is new in a folder, verify every bitstream, record it.

Per image, ``taskcodec.archive.archive_one`` as one Prefect task, run by a thread pool, or by Dask
worker processes when ``workers`` > 1 or ``TASKCODEC_DASK_ADDRESS`` is set:

    hash -> already archived? (archive_key) -> load -> ground -> decide -> encode
         -> verify in memory -> write (temp + rename) -> verify on disk -> persist
         -> [delete the original after verification]

Idempotent: an image whose (content, policy version, codec settings) is already in
the store with an intact file is skipped. Crash-safe: files appear only whole
(rename), rows only with their file, and a re-run finishes what a killed one left.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run
from prefect.states import State

from taskcodec import archive, stages
from taskcodec.archive import ArchiveItem, archive_one
from taskcodec.batch import recorded_run
from taskcodec.errors import error_text
from taskcodec.flows.compress import STAGE_OPTIONS
from taskcodec.flows.outcome import finish, link, results_of, run_name
from taskcodec.progress import item_done


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
    policy = stages.plan_task(task_text)
    warning = stages.check_coverage(policy, grounding)  # raises under --uncovered fail
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
