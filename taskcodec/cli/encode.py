"""``taskcodec plan``, ``ground``, ``compress`` and ``archive``: the encode side.

Batch commands run as Prefect flows; interactive ones (plan, ground, a compress of a few files with
no Prefect server configured) call the stage functions directly (``taskcodec.flows.runtime.use_flows``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from taskcodec.cli.common import _each, _emit, _fail, _progress, app, console, err, expand_inputs, print_reports
from taskcodec.errors import TaskcodecError


@app.command()
def plan(
    task: str = typer.Argument(..., help="What the images are for, in plain language."),
    as_json: bool = typer.Option(False, "--json", help="Print the policy as JSON."),
    refresh: bool = typer.Option(False, "--refresh", help="Plan again and store a new policy version."),
) -> None:
    """Show the task policy (labels and their importance) for TASK."""
    from taskcodec.agents.graph import run_agent
    from taskcodec.settings import get_settings
    from taskcodec.store import repo
    from taskcodec.store.db import session

    try:
        p, state = run_agent(task, refresh=refresh)
    except TaskcodecError as exc:
        _fail(exc)
    with session() as s:
        steps = [{"node": st.node, **st.outcome} for st in repo.agent_steps(s, p.policy_id)]
    spec, missing, warning = get_settings().grounding, [], None
    try:
        from taskcodec.grounding import coverage, get_backend
        from taskcodec.grounding.base import ungroundable_labels

        missing = list(ungroundable_labels(get_backend(spec), p))
        warning = coverage.describe(spec, tuple(missing), get_settings().uncovered) if missing else None
    except TaskcodecError as exc:  # a bad TASKCODEC_GROUNDING: say so, the policy still stands
        warning = str(exc)
    if warning:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if as_json:
        body = p.model_dump(mode="json")
        body.update(grounding=spec, not_groundable_by_backend=missing)
        body.update(source=p.provenance.source, model=p.provenance.model, cached=bool(state.get("cached")),
                    prompt_version=p.provenance.prompt_version, content_hash=p.content_hash(), agent_steps=steps)
        console.print_json(json.dumps(body, default=str))
        return
    console.print(f"policy #{p.policy_id} v{p.version} for [bold]{escape(p.task)}[/] "
                  f"({p.provenance.source}: {p.provenance.model}, version {p.provenance.prompt_version})")
    t = Table("rank", "label", "importance", "tier", "synonyms")
    for l in p.labels:
        t.add_row(str(l.rank), escape(l.name), f"{l.importance:.2f}", p.rules.tier(l.importance),
                  escape(", ".join(l.synonyms[:5])))
    console.print(t)
    r = p.rules
    console.print(f"rules: min score {r.min_score}, max objects {r.max_objects}, background {r.background}, "
                  f"quality offsets {r.quality_offset}")
    if not warning:
        console.print(escape(f"grounding '{spec}' can detect every label"))
    how = "from the store (no planning call)" if state.get("cached") else "planned now"
    console.print(escape(f"{how}; made by: ") + escape(" -> ".join(
        f"{st['node']}({st.get('outcome', st.get('backend', ''))})".replace("()", "") for st in steps)))


@app.command()
def ground(
    images: Optional[list[Path]] = typer.Argument(None, help="Image files."),
    task: Optional[str] = typer.Option(None, "--task", help="Task text (its policy gives the labels)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Comma-separated labels instead of a task."),
    grounding: Optional[str] = typer.Option(None, "--grounding", help="Backend spec (default TASKCODEC_GROUNDING)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Minimum score (default: the policy's)."),
    as_json: bool = typer.Option(False, "--json"),
    list_backends: bool = typer.Option(False, "--list-backends", help="List every backend and the labels it finds."),
) -> None:
    """Preview what would be found: per image, label, detector class, box [x0,y0,x1,y1] in pixels, score."""
    from taskcodec import stages
    from taskcodec.domain.policy import policy_from_labels
    from taskcodec.settings import get_settings

    if list_backends:
        from taskcodec.grounding import catalogue

        rows = catalogue(get_settings().grounding)
        if as_json:
            print(json.dumps(rows, indent=2))
        else:
            t = Table("backend", "model", "labels it can find")
            for r in rows:
                t.add_row(escape(r["spec"]), r["model"], escape(r["labels"]))
            console.print(t)
        raise typer.Exit(0)
    images = expand_inputs(images or [])
    if not images:
        _fail(TaskcodecError("give IMAGES to ground, or --list-backends"))
    if (task is None) == (labels is None):
        _fail(TaskcodecError("give exactly one of --task or --labels"))
    try:
        policy = stages.plan_task(task) if task is not None else policy_from_labels(labels.split(","))
        thr = policy.rules.min_score if threshold is None else threshold
        warning = stages.check_coverage(policy, grounding, "area")
    except TaskcodecError as exc:
        _fail(exc)
    if warning:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    def render(item: dict) -> None:
        t = Table("label", "class", "box [x0,y0,x1,y1]", "score", title=escape(f"{item['image']} ({item['backend']})"))
        for d in item["detections"]:
            t.add_row(escape(d["label"]), escape(d["class_name"]),
                      escape("[" + ", ".join(f"{v:g}" for v in d["box"]) + "]"), f"{d['score']:.3f}")
        console.print(t)
        if item["ungroundable"]:
            console.print(escape(f"  not groundable by {item['backend']}: {', '.join(item['ungroundable'])}"))

    out, failed = _each(images, lambda path: stages.ground_report(path, policy, grounding, thr), "image")
    _emit(out, as_json, render)
    raise typer.Exit(1 if failed else 0)


@app.command()
def compress(
    images: list[Path] = typer.Argument(..., help="Image files."),
    task: Optional[str] = typer.Option(None, "--task", help="What the images are for (omit with --full)."),
    out: Path = typer.Option(..., "--out", help="Output folder: one <stem>.tcb per image."),
    full: bool = typer.Option(False, "--full", help="Whole-image mode: no task, no grounding (human archives)."),
    codec: str = typer.Option("classical", "--codec", help="classical | learned"),
    quality: int = typer.Option(60, "--quality", min=1, max=100, help="1-100, higher = better."),
    budget_bytes: Optional[int] = typer.Option(None, "--budget-bytes", min=1,
                                               help="Byte budget per image: least important layers go first."),
    grounding: Optional[str] = typer.Option(None, "--grounding", help="Backend spec (default TASKCODEC_GROUNDING)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Minimum score (default: the policy's)."),
    uncovered: Optional[str] = typer.Option(None, "--uncovered", help="Policy labels the backend cannot detect: "
                                            "area (send their likely area), whole (send the whole image) or fail "
                                            "(default TASKCODEC_UNCOVERED, else area)."),
    require_all: bool = typer.Option(False, "--require-all-labels", help="Same as --uncovered fail."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing OUT/<stem>.tcb files."),
    annotate: bool = typer.Option(False, "--annotate", help="Also write the task text and the policy's labels into "
                                  "each file, so it explains itself without the store (TASKCODEC_ANNOTATE)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per input instead of the table."),
) -> None:
    """Compress IMAGES for TASK into OUT/<stem>.tcb; exit 1 if any image failed.

    More than 8 images, or a Prefect server configured (PREFECT_API_URL or your Prefect profile), run as a
    Prefect flow; a few images with no server are compressed directly, without starting Prefect."""
    from taskcodec import stages
    from taskcodec.codec import get_codec
    from taskcodec.grounding.coverage import check_mode

    images = expand_inputs(images)
    if annotate:  # a setting, so that the flow's workers see it too
        import os

        from taskcodec.settings import get_settings

        os.environ["TASKCODEC_ANNOTATE"] = "1"
        get_settings.cache_clear()

    try:  # fail fast, before any image is read, on what would fail every image
        if full == (task is not None):
            raise TaskcodecError("give --task TASK, or --full for whole-image mode (not both)")
        if out.exists() and not out.is_dir():
            raise TaskcodecError(f"--out {out} is a file; give a folder (one <stem>.tcb per image goes there)")
        if require_all:
            if uncovered not in (None, "fail"):
                raise TaskcodecError("--require-all-labels contradicts --uncovered " + uncovered)
            uncovered = "fail"
        if uncovered is not None:
            check_mode(uncovered)
        if get_codec(codec).CODEC_ID == "learned":
            from taskcodec.codec.learned import load_model

            load_model()
        policy = None if full else stages.plan_task(task)
        warning = None if full else stages.check_coverage(policy, grounding, uncovered)
    except TaskcodecError as exc:  # --uncovered fail stops here too, before any image is read
        _fail(exc)
    from taskcodec.flows.runtime import use_flows

    as_flow = use_flows(len(images))  # a batch, or a Prefect server configured: a flow run (it logs the warning)
    if warning and not as_flow:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    with _progress(len(images), "compress"):
        try:
            if as_flow:
                from taskcodec.flows import run_compress

                reports = run_compress(task, [str(p) for p in images], str(out), codec, quality, budget_bytes,
                                       grounding, threshold, full, uncovered, overwrite)
            else:  # a few files: the stages directly, with the policy planned above; no Prefect server to start
                from taskcodec import batch

                reports = batch.compress_images(policy, [str(p) for p in images], str(out), codec, quality,
                                                budget_bytes, grounding, threshold, uncovered, overwrite, task)
        except TaskcodecError as exc:
            _fail(exc)
    if as_json:
        print(json.dumps([r.model_dump() for r in reports], indent=2))
        raise typer.Exit(1 if any(not r.ok for r in reports) else 0)
    raise typer.Exit(1 if print_reports(reports) else 0)


@app.command()
def archive(
    task: str = typer.Option(..., "--task", help="What the archive is kept for."),
    source: Path = typer.Option(..., "--source", help="Folder of images (searched recursively)."),
    out: Path = typer.Option(..., "--out", help="Archive folder: OUT/<relative path>.tcb per image."),
    codec: str = typer.Option("classical", "--codec"),
    quality: int = typer.Option(60, "--quality", min=1, max=100),
    grounding: Optional[str] = typer.Option(None, "--grounding", help="Backend spec (default TASKCODEC_GROUNDING)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Dask worker processes (default: one "
                                          "thread; TASKCODEC_DASK_ADDRESS uses an existing Dask cluster)."),
    delete_originals: bool = typer.Option(False, "--delete-originals-after-verify",
                                          help="Delete each original once its bitstream was decoded and verified."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per image instead of the table."),
) -> None:
    """Archive what is new in SOURCE (by content hash), verify every bitstream, record it (a Prefect flow)."""
    from taskcodec import stages
    from taskcodec.archive import ArchiveBusyError, list_images

    try:
        if out.exists() and not out.is_dir():
            raise TaskcodecError(f"--out {out} is a file; give a folder for the archive")
        n = len(list_images(source))
        stages.check_coverage(stages.plan_task(task), grounding)  # raises under "fail"; the flow logs warnings
    except TaskcodecError as exc:
        _fail(exc)
    from taskcodec.flows import run_archive

    with _progress(n, "archive"):
        try:
            items = run_archive(task, str(source), str(out), workers=workers, codec=codec, quality=quality,
                                grounding=grounding, delete_originals_after_verify=delete_originals)
        except ArchiveBusyError as exc:  # not a usage error: the same command works once the other run ends
            _fail(exc, 1)
        except TaskcodecError as exc:
            _fail(exc)
    if as_json:
        print(json.dumps([i.model_dump() for i in items], indent=2))
        raise typer.Exit(1 if any(i.status == "failed" for i in items) else 0)
    t = Table("image", "status", "bytes", "original deleted", "bitstream / reason")
    for i in items:
        colour = {"archived": "green", "skipped": "cyan", "failed": "red"}[i.status]
        t.add_row(escape(i.path), f"[{colour}]{i.status}[/]", f"{i.bytes:,}" if i.bytes else "", "yes" if i.deleted_original
                  else "", escape(i.bitstream or "") if i.status != "failed" else escape(i.reason))
    console.print(t)
    counts = {s: sum(i.status == s for i in items) for s in ("archived", "skipped", "failed")}
    console.print(f"{counts['archived']} archived, {counts['skipped']} already archived, {counts['failed']} failed")
    raise typer.Exit(1 if counts["failed"] else 0)
