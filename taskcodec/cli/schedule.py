"""``taskcodec schedule create|list|pause|resume|delete`` and ``taskcodec serve``: standing archive jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from taskcodec.cli.common import _fail, app, console
from taskcodec.errors import TaskcodecError

schedule_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                           help="Standing archive jobs on Prefect schedules (cron or interval, with a timezone).")
app.add_typer(schedule_app, name="schedule")


def _server_note(registered: bool) -> str:
    return "(and on the Prefect server)" if registered else "(set PREFECT_API_URL to register it with Prefect)"


@schedule_app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="The job's name (an existing job is updated)."),
    task: str = typer.Option(..., "--task", help="What the archive is kept for."),
    source: Path = typer.Option(..., "--source", help="Folder of images to archive (must exist)."),
    out: Path = typer.Option(..., "--out", help="Archive folder."),
    cron: Optional[str] = typer.Option(None, "--cron", help='Cron string, e.g. "0 2 * * *" (02:00 daily) or @daily.'),
    every: Optional[str] = typer.Option(None, "--every", help="An interval instead: seconds, HH:MM:SS or ISO 8601 "
                                        "(PT15M)."),
    timezone: Optional[str] = typer.Option(None, "--timezone", help="IANA timezone of the schedule (default UTC), "
                                           "e.g. Europe/Paris."),
    quality: int = typer.Option(60, "--quality", min=1, max=100),
    grounding: Optional[str] = typer.Option(None, "--grounding"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1),
    delete_originals: bool = typer.Option(False, "--delete-originals-after-verify"),
) -> None:
    """Store an archive job on a schedule; `taskcodec serve` runs it when due."""
    from taskcodec.domain.policy import normalise_task
    from taskcodec.flows.schedules import describe, parse_schedule, save_schedule

    try:
        when = parse_schedule(cron, every, timezone)
        normalise_task(task)
        if not source.is_dir():
            raise TaskcodecError(f"--source {source} is not a folder")
        if out.exists() and not out.is_dir():
            raise TaskcodecError(f"--out {out} is a file; give a folder for the archive")
        params = {"task_text": task, "source": str(source.resolve()), "out_dir": str(out.resolve()),
                  "quality": quality, "grounding": grounding, "workers": workers,
                  "delete_originals_after_verify": delete_originals}
        row, registered = save_schedule(name, when, params)
    except TaskcodecError as exc:
        _fail(exc)
    where = "stored and registered with the Prefect server" if registered else f"stored {_server_note(False)}"
    console.print(escape(f"schedule '{row.name}' ({describe(row)}) {where}; run `taskcodec serve` to execute it "
                         "when due"))


@schedule_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="One JSON object per job.")) -> None:
    """Every stored job: its schedule, state and parameters."""
    from taskcodec.flows.schedules import describe, list_schedules

    rows = list_schedules()
    if as_json:
        print(json.dumps([{"name": r.name, "cron": r.cron, "interval_s": r.interval_s, "timezone": r.timezone,
                           "paused": r.paused, "parameters": r.parameters, "updated_at": r.updated_at.isoformat()}
                          for r in rows], indent=2))
        return
    t = Table("name", "schedule", "state", "task", "source", "out")
    for r in rows:
        p = r.parameters
        t.add_row(escape(r.name), escape(describe(r)), "paused" if r.paused else "active", escape(p.get("task_text", "")),
                  escape(p.get("source", "")), escape(p.get("out_dir", "")))
    console.print(t)
    console.print(f"{len(rows)} schedule{'' if len(rows) == 1 else 's'}")


def _pause(name: str, paused: bool) -> None:
    from taskcodec.flows.schedules import set_paused

    try:
        row, registered = set_paused(name, paused)
    except TaskcodecError as exc:
        _fail(exc)
    console.print(escape(f"schedule '{row.name}' {'paused' if paused else 'resumed'} {_server_note(registered)}"))


@schedule_app.command("pause")
def pause(name: str = typer.Argument(..., help="The job's name.")) -> None:
    """Stop running a job when due; it stays stored."""
    _pause(name, True)


@schedule_app.command("resume")
def resume(name: str = typer.Argument(..., help="The job's name.")) -> None:
    """Run a paused job when due again."""
    _pause(name, False)


@schedule_app.command("delete")
def delete(name: str = typer.Argument(..., help="The job's name.")) -> None:
    """Forget a job (the archive it wrote stays)."""
    from taskcodec.flows.schedules import delete_schedule

    try:
        on_server = delete_schedule(name)
    except TaskcodecError as exc:
        _fail(exc)
    console.print(escape(f"schedule '{name}' deleted" + (" (and its Prefect deployment)" if on_server else "")))


@app.command()
def serve() -> None:
    """Serve every stored schedule with Prefect until interrupted (needs PREFECT_API_URL)."""
    from taskcodec.flows.schedules import serve_schedules

    try:
        serve_schedules()
    except TaskcodecError as exc:
        _fail(exc, 1)
