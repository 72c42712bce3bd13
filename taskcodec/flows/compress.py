"""``compress`` and ``decode`` flows: ``taskcodec.batch``'s loops with every stage a Prefect task.

A failing image fails only itself: its error is reported, logged and recorded on the
run, the batch goes on, and the run ends Failed (``outcome.finish``). Transient errors
(I/O, a locked database) are retried; bad input (``TaskcodecError``) is not, since it
would fail again.
"""

from __future__ import annotations

from functools import partial

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import State
from sqlalchemy.exc import OperationalError

from taskcodec import batch, stages
from taskcodec.batch import ImageReport
from taskcodec.errors import TaskcodecError
from taskcodec.flows.outcome import finish, item_run_name, link, results_of, run_name


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


STAGE_OPTIONS = dict(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1, retry_condition_fn=_transient,
                     task_run_name=item_run_name)

plan_t = task(stages.plan_task, name="plan", **{**STAGE_OPTIONS, "task_run_name": "plan"})
TASK_STAGES = batch.Stages(**{name: task(fn, name=label, **STAGE_OPTIONS) for name, label, fn in (
    ("load", "load", stages.load), ("ground", "ground", stages.ground_image),
    ("encode", "encode", stages.encode_grounded), ("encode_full", "encode", stages.encode_full),
    ("persist", "persist", stages.persist), ("read", "read", stages.read_bitstream),
    ("decode", "decode", batch.Stages.decode), ("reconstruct", "reconstruct", batch.Stages.reconstruct))})


@flow(name="compress", flow_run_name=partial(run_name, "compress", "images"))
def compress_flow(
    task_text: str | None, images: list[str], out_dir: str, codec: str = "classical", quality: int = 60,
    budget_bytes: int | None = None, grounding: str | None = None, threshold: float | None = None,
    full: bool = False, uncovered: str | None = None, overwrite: bool = False,
) -> State:
    """Plan the task once, then load, ground, decide, encode and persist every image (``full``: no task,
    every image coded whole). Ends Failed when any image failed; ``run_compress`` returns the reports."""
    policy = None if full else plan_t(task_text)
    warning = None if full else stages.check_coverage(policy, grounding, uncovered)  # raises under "fail"
    if warning:
        get_run_logger().warning(warning)
    reports = batch.compress_images(policy, images, out_dir, codec, quality, budget_bytes, grounding, threshold,
                                    uncovered, overwrite, task_text, TASK_STAGES,
                                    str(flow_run.id) if flow_run.id else None)
    rows = [{"image": r.path, "status": "ok" if r.ok else "failed", "bytes": r.bytes, "bpp": r.bpp,
             "layers": r.layers, "sent": r.transmitted, "dropped": r.dropped, "seconds": r.seconds,
             "bitstream": link(r.bitstream), "error": r.error or ""} for r in reports]
    return finish("compress", rows, [r.error for r in reports if not r.ok], reports)


def run_compress(*args, **kwargs) -> list[ImageReport]:
    """``compress_flow`` as a function: its reports, whether the run Completed or Failed."""
    return results_of(compress_flow(*args, **kwargs, return_state=True))


@flow(name="decode", flow_run_name=partial(run_name, "decode", "files", "file", None))
def decode_flow(files: list[str], out_dir: str, layers: str = "all", reconstruct: str | None = None,
                overwrite: bool = False) -> State:
    """Decode many bitstreams for people: ``OUT/<stem>.png``, its mask and its metadata each."""
    results = [batch.decode_one(f, out_dir, layers, reconstruct, overwrite, TASK_STAGES) for f in files]
    rows = [{"file": r["file"], "status": "ok" if r["ok"] else "failed", "image": link(r.get("out")),
             "error": r.get("error", "")} for r in results]
    return finish("decode", rows, [r["error"] for r in results if not r["ok"]], results, "file")


def run_decode(*args, **kwargs) -> list[dict]:
    """``decode_flow`` as a function: one dict per file, whether the run Completed or Failed."""
    return results_of(decode_flow(*args, **kwargs, return_state=True))
