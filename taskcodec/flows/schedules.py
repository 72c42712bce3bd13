"""Standing archival jobs: stored in taskcodec's store, served by Prefect on their cron schedule.

``save_schedule`` records a job (and, with a Prefect server configured, registers its
deployment right away); ``serve_schedules`` serves every stored job with
``prefect.serve``: a long-running process that starts each run when it is due.
Cron schedules need a real Prefect server (``PREFECT_API_URL``): the temporary
local one Prefect starts by itself does not schedule.
"""

from __future__ import annotations

import os

from prefect import flow
from sqlmodel import select

from taskcodec.errors import TaskcodecError
from taskcodec.flows.archive import run_archive
from taskcodec.store import models as m
from taskcodec.store.db import session
from taskcodec.store.models import utcnow


@flow(name="archive-job")
def archive_job(task_text: str, source: str, out_dir: str, codec: str = "classical", quality: int = 60,
                grounding: str | None = None, delete_originals_after_verify: bool = False,
                workers: int | None = None) -> dict:
    """A scheduled archive run: the archive flow with the task runner ``workers`` asks for."""
    items = run_archive(task_text, source, out_dir, workers=workers, codec=codec, quality=quality,
                        grounding=grounding, delete_originals_after_verify=delete_originals_after_verify)
    counts = {s: sum(i.status == s for i in items) for s in ("archived", "skipped", "failed")}
    if counts["failed"]:
        raise TaskcodecError(f"{counts['failed']} of {len(items)} images failed to archive")
    return counts


def validate_cron(cron: str) -> str:
    from cronsim import CronSim, CronSimError
    from datetime import datetime

    try:
        CronSim(cron, datetime.now())
    except (CronSimError, ValueError) as exc:
        raise TaskcodecError(f"--cron {cron!r} is not a valid cron expression ({exc})") from None
    return cron


def save_schedule(name: str, cron: str, parameters: dict) -> tuple[m.Schedule, bool]:
    """Create or update the job ``name``; returns (row, registered with a Prefect server now)."""
    validate_cron(cron)
    with session() as s:
        row = s.exec(select(m.Schedule).where(m.Schedule.name == name)).first()
        if row is None:
            row = m.Schedule(name=name, cron=cron, parameters=parameters)
        else:
            row.cron, row.parameters, row.updated_at = cron, parameters, utcnow()
        s.add(row)
        s.commit()
        s.refresh(row)
    registered = False
    if os.environ.get("PREFECT_API_URL"):
        deployment(row).apply()
        registered = True
    return row, registered


def list_schedules() -> list[m.Schedule]:
    with session() as s:
        return list(s.exec(select(m.Schedule).order_by(m.Schedule.name)))


def deployment(row: m.Schedule):
    return archive_job.to_deployment(name=row.name, cron=row.cron, parameters=row.parameters,
                                     description=f"taskcodec archive job '{row.name}'", tags=["taskcodec"])


def serve_schedules() -> None:
    """Serve every stored job until interrupted."""
    from prefect import serve

    if not os.environ.get("PREFECT_API_URL"):
        raise TaskcodecError("taskcodec serve needs a Prefect server: run `prefect server start` and set "
                             "PREFECT_API_URL=http://127.0.0.1:4200/api (cron schedules do not run on the "
                             "temporary local server)")
    rows = list_schedules()
    if not rows:
        raise TaskcodecError("no schedules stored yet: create one with `taskcodec schedule`")
    serve(*[deployment(r) for r in rows])
