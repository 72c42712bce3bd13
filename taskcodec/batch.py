"""Batches of images through the stages, with or without Prefect.

The same loop serves an interactive ``taskcodec compress`` of a few files (the stage
functions of ``taskcodec.stages`` called directly: no Prefect import, no server)
and the ``compress`` flow (the same stages wrapped as Prefect tasks, passed in as
``Stages``). A failing image fails only itself: it gets a report with its error and
the batch goes on. Every batch is one row in the store's run table (``recorded_run``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from pydantic import BaseModel

from taskcodec import decode_routes
from taskcodec import stages as stage_functions  # ``stages`` below is a ``Stages``: which versions to call
from taskcodec.domain.policy import TaskPolicy
from taskcodec.errors import error_text
from taskcodec.progress import item_done
from taskcodec.imageio import sha256_file
from taskcodec.store import repo
from taskcodec.store.db import session


class ImageReport(BaseModel):
    """What became of one input image."""

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


@dataclass(frozen=True)
class Stages:
    """The per-image stages; the compress flow passes their Prefect-task versions."""

    load: Callable = stage_functions.load
    ground: Callable = stage_functions.ground_image
    encode: Callable = stage_functions.encode_grounded
    encode_full: Callable = stage_functions.encode_full
    persist: Callable = stage_functions.persist
    read: Callable = stage_functions.read_bitstream
    decode: Callable = stage_functions.decode_bitstream
    reconstruct: Callable = decode_routes.human


@dataclass
class RunRecord:
    """A batch's row in the run table; ``done`` counts what succeeded, ``errors`` what failed."""

    run_id: int
    n_ok: int = 0
    errors: list[dict] = field(default_factory=list)

    def done(self, path: str, error: str | None) -> None:
        if error is None:
            self.n_ok += 1
        else:
            self.errors.append({"path": path, "error": error})


@contextmanager
def recorded_run(kind: str, params: dict, flow_run_id: str | None = None) -> Iterator[RunRecord]:
    """Start a run row, yield it, and finish it with its counts (completed / partial / failed). A batch
    that raises leaves the row running; the next start marks it failed once this process is gone."""
    with session() as s:
        record = RunRecord(repo.start_run(s, kind, flow_run_id, params))
    yield record
    with session() as s:
        repo.finish_run(s, record.run_id, record.n_ok, record.errors)


def compress_one(path, out_path, policy: TaskPolicy | None, codec: str, quality: int, budget_bytes: int | None,
                 grounding: str | None, threshold: float | None, run_id: int | None, uncovered: str | None = None,
                 overwrite: bool = False, stages: Stages = Stages()) -> ImageReport:
    """load -> ground -> decide + encode -> write + record, for one image (``policy`` None: whole image)."""
    t0 = time.perf_counter()
    try:
        image = stages.load(path)
        if policy is None:  # whole-image mode: no grounding, no decisions to take
            encoded = stages.encode_full(image, codec, quality, budget_bytes)
            backend, timings = "none", {"encode_s": encoded.seconds}
        else:
            g = stages.ground(image, policy, grounding, uncovered)
            encoded = stages.encode(image, g, policy, codec, quality, budget_bytes, threshold, uncovered)
            backend = g.backend
            timings = {"ground_s": g.seconds, "encode_s": encoded.seconds, "total_s": round(time.perf_counter() - t0, 4)}
        enc_id = stages.persist(image, policy, encoded, out_path, backend, run_id, timings, overwrite=overwrite)
    except Exception as exc:  # one bad image fails only itself
        return ImageReport(path=str(path), ok=False, error=error_text(path, exc), seconds=round(time.perf_counter() - t0, 3))
    objs = [d for d in encoded.decisions if d.object_index is not None]
    return ImageReport(
        path=str(path), ok=True, bitstream=str(out_path), encoding_id=enc_id, width=image.width, height=image.height,
        bytes=len(encoded.data), bpp=round(8 * len(encoded.data) / (image.width * image.height), 4),
        layers=len(encoded.header.layers), transmitted=sum(d.action != "drop" for d in objs),
        dropped=sum(d.action == "drop" for d in objs), seconds=round(time.perf_counter() - t0, 3),
    )


def compress_images(
    policy: TaskPolicy | None, images: list[str], out_dir: str, codec: str = "classical", quality: int = 60,
    budget_bytes: int | None = None, grounding: str | None = None, threshold: float | None = None,
    uncovered: str | None = None, overwrite: bool = False, task_text: str | None = None,
    stages: Stages = Stages(), flow_run_id: str | None = None,
) -> list[ImageReport]:
    """Every image through ``compress_one`` into ``out_dir/<stem>.tcb``, recorded as one run."""
    params = dict(task=task_text, images=len(images), out_dir=out_dir, codec=codec, quality=quality,
                  full=policy is None, budget_bytes=budget_bytes, grounding=grounding, threshold=threshold,
                  uncovered=uncovered, policy_id=policy.policy_id if policy else None)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    reports = []
    with recorded_run("compress", params, flow_run_id) as run:
        for path, out_path in zip(images, stage_functions.output_names(images, out_dir)):
            r = compress_one(path, out_path, policy, codec, quality, budget_bytes, grounding, threshold,
                             run.run_id, uncovered, overwrite, stages)
            reports.append(r)
            run.done(r.path, r.error)
            item_done(r.path, r.ok)
    return reports


def decode_one(file: str, out_dir: str, layers: str = "all", reconstruct: str | None = None,
               overwrite: bool = False, stages: Stages = Stages()) -> dict:
    """One bitstream decoded for people: ``OUT/<stem>.png``, its mask and its metadata."""
    try:
        bs = stages.read(file)
        out, mask, meta = stages.reconstruct(bs, stages.decode(bs, layers), Path(out_dir) / (Path(file).stem + ".png"),
                                             sha256_file(file), reconstruct, overwrite=overwrite)
        result = {"file": file, "ok": True, "out": str(out), "mask": str(mask), "meta": str(meta),
                  "problems": bs.problems}
    except Exception as exc:
        result = {"file": file, "ok": False, "error": error_text(file, exc)}
    item_done(file, result["ok"])
    return result
