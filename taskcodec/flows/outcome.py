"""How a taskcodec flow run ends, as a Prefect user reads it in the UI.

A run says what it handled in its name, logs one line per item, leaves a table
artifact of per-item results (with links to the outputs), and ends **Failed** when
any item failed (the results are still its data: ``results_of``), Completed otherwise.
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run, task_run
from prefect.states import Completed, Failed, State


def short(text: str | None, n: int = 40) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def run_name(what: str, items_param: str, noun: str = "image", task_param: str | None = "task_text") -> str:
    """``compress 3 images: count vehicles…`` or ``archive cameras/: count vehicles…``: the flow, its
    items (a count, or the folder they come from) and, where there is one, the task."""
    p = flow_run.parameters or {}
    items = p.get(items_param)
    if isinstance(items, (list, tuple)):
        items = f"{len(items)} {noun if len(items) == 1 else noun + 's'}"
    else:
        items = (Path(str(items)).name or str(items)) + "/"
    if task_param is None:
        return f"{what} {items}"
    return f"{what} {items}: {short(p.get(task_param)) if p.get(task_param) else 'whole images'}"


def item_run_name() -> str:
    """A task run named by its stage and the file it handled: ``encode kodim01.png``."""
    p = task_run.parameters or {}
    src = p.get("path") or p.get("file") or getattr(p.get("image"), "path", None) or getattr(p.get("bs"), "path", None)
    return f"{task_run.task_name} {Path(str(src)).name}" if src else str(task_run.task_name)


def link(path: str | None) -> str:
    return f"[{Path(path).name}]({Path(path).resolve().as_uri()})" if path else ""


def finish(kind: str, rows: list[dict], failed: list[str], data, noun: str = "image") -> State:
    """Log, publish the ``taskcodec-<kind>`` table artifact, and return the run's final state."""
    logger = get_run_logger()
    for msg in failed:
        logger.error(msg)
    n = len(rows)
    summary = f"{n - len(failed)} of {n} {noun if n == 1 else noun + 's'} ok, {len(failed)} failed"
    create_table_artifact(table=rows or [{"result": "nothing to do"}], key=f"taskcodec-{kind}",
                          description=f"taskcodec {kind}: {summary}")
    logger.info(summary)
    return Failed(message=summary, data=data) if failed else Completed(message=summary, data=data)


def results_of(state: State):
    """The list a flow run returned, whether it Completed or Failed; an exception it raised is raised."""
    data = state.result(raise_on_failure=False)
    if isinstance(data, BaseException):
        raise data
    return data
