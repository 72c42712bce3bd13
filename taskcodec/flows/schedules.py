"""Standing archival jobs: stored in taskcodec's store, served by Prefect on their schedules.

A job's schedule is one of Prefect's own schedule types (``CronSchedule`` with cron
strings such as ``0 2 * * *`` or ``@daily``, or ``IntervalSchedule``), in a timezone;
Prefect validates it. ``save_schedule`` records a job (and, with a Prefect server
configured, registers its deployment right away); ``pause``/``resume``/``delete`` change
the store and that deployment alike; ``serve_schedules`` serves every stored job with
``prefect.serve``: a long-running process that starts each run when it is due.
Schedules need a real Prefect server (``PREFECT_API_URL``): the temporary local one
Prefect starts by itself does not schedule.
"""

from __future__ import annotations

from datetime import timedelta

from prefect import flow
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, construct_schedule
from pydantic import TypeAdapter, ValidationError
from sqlmodel import select

from taskcodec.errors import TaskcodecError
from taskcodec.flows.archive import run_archive
from taskcodec.flows.outcome import run_name
from taskcodec.flows.runtime import server_configured
from taskcodec.store import models as m
from taskcodec.store.db import session
from taskcodec.store.models import utcnow

DEPLOYMENT_FLOW = "archive-job"


@flow(name=DEPLOYMENT_FLOW, flow_run_name=lambda: f"scheduled {run_name('archive', 'source')}")
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


def parse_schedule(cron: str | None = None, every: str | None = None,
                   timezone: str | None = None) -> CronSchedule | IntervalSchedule:
    """Prefect's schedule for ``--cron`` (a cron string or @hourly/@daily/@weekly/@monthly/@yearly) or
    ``--every`` (seconds, ``HH:MM:SS`` or ISO 8601 such as ``PT15M``), in ``timezone`` (IANA name)."""
    if (cron is None) == (every is None):
        raise TaskcodecError("give exactly one of --cron or --every")
    try:
        interval = None
        if every is not None:
            text = every.strip()
            try:  # plain seconds
                interval = timedelta(seconds=float(text))
            except ValueError:
                interval = TypeAdapter(timedelta).validate_python(text)
            if interval <= timedelta(0):
                raise TaskcodecError(f"--every {every!r} must be a positive duration")
        return construct_schedule(cron=cron, interval=interval, timezone=timezone)
    except ValidationError as exc:
        what = {"cron": f"--cron {cron!r} is not a valid cron expression",
                "timezone": f"--timezone {timezone!r} is not an IANA timezone (e.g. Europe/Paris)"}
        field = str(exc.errors()[0]["loc"][0]) if exc.errors() and exc.errors()[0]["loc"] else ""
        msg = what.get(field, f"--every {every!r} is not a duration (seconds, HH:MM:SS or ISO 8601 like PT15M)")
        raise TaskcodecError(f"{msg} ({exc.errors()[0]['msg']})") from None


def schedule_of(row: m.Schedule) -> CronSchedule | IntervalSchedule:
    if row.cron is not None:
        return CronSchedule(cron=row.cron, timezone=row.timezone)
    return IntervalSchedule(interval=timedelta(seconds=row.interval_s), timezone=row.timezone)


def describe(row: m.Schedule) -> str:
    what = f"cron {row.cron}" if row.cron is not None else f"every {timedelta(seconds=row.interval_s)}"
    return f"{what} ({row.timezone or 'UTC'})"


def save_schedule(name: str, schedule: CronSchedule | IntervalSchedule, parameters: dict) -> tuple[m.Schedule, bool]:
    """Create or update the job ``name``; returns (row, registered with a Prefect server now)."""
    cron = schedule.cron if isinstance(schedule, CronSchedule) else None
    interval_s = None if cron is not None else schedule.interval.total_seconds()
    with session() as s:
        row = s.exec(select(m.Schedule).where(m.Schedule.name == name)).first() or m.Schedule(name=name)
        row.cron, row.interval_s, row.timezone = cron, interval_s, schedule.timezone
        row.parameters, row.updated_at = parameters, utcnow()
        s.add(row)
        s.commit()
        s.refresh(row)
    return row, _register(row)


def _get(name: str) -> m.Schedule:
    with session() as s:
        row = s.exec(select(m.Schedule).where(m.Schedule.name == name)).first()
    if row is None:
        known = ", ".join(r.name for r in list_schedules()) or "none yet"
        raise TaskcodecError(f"no schedule named {name!r} (stored: {known})")
    return row


def set_paused(name: str, paused: bool) -> tuple[m.Schedule, bool]:
    """Pause or resume the job ``name``; returns (row, changed on the Prefect server too)."""
    row = _get(name)
    with session() as s:
        row.paused, row.updated_at = paused, utcnow()
        s.add(row)
        s.commit()
        s.refresh(row)
    return row, _register(row)


def delete_schedule(name: str) -> bool:
    """Forget the job ``name``; returns whether its deployment was deleted from the Prefect server too."""
    row = _get(name)
    with session() as s:
        s.delete(s.get(m.Schedule, row.id))
        s.commit()
    if not server_configured():
        return False
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.delete_deployment(client.read_deployment_by_name(f"{DEPLOYMENT_FLOW}/{name}").id)
        except ObjectNotFound:
            return False
    return True


def list_schedules() -> list[m.Schedule]:
    with session() as s:
        return list(s.exec(select(m.Schedule).order_by(m.Schedule.name)))


def deployment(row: m.Schedule):
    return archive_job.to_deployment(name=row.name, schedule=schedule_of(row), paused=row.paused,
                                     parameters=row.parameters, tags=["taskcodec"],
                                     description=f"taskcodec archive job '{row.name}', {describe(row)}")


def _register(row: m.Schedule) -> bool:
    if not server_configured():
        return False
    deployment(row).apply()
    return True


def serve_schedules() -> None:
    """Serve every stored job until interrupted (paused ones are registered, not run)."""
    from prefect import serve

    if not server_configured():
        raise TaskcodecError("taskcodec serve needs a Prefect server: run `prefect server start` and set "
                             "PREFECT_API_URL=http://127.0.0.1:4200/api (schedules do not run on the "
                             "temporary local server)")
    rows = list_schedules()
    if not rows:
        raise TaskcodecError("no schedules stored yet: create one with `taskcodec schedule create`")
    serve(*[deployment(r) for r in rows])
