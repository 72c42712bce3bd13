"""``taskcodec`` command line. Batch commands run as Prefect flows; interactive commands (plan,
ground, why, info, decode, a compress of a few files with no Prefect server configured) call the
stage functions directly (``taskcodec.flows.runtime.use_flows``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from taskcodec.errors import TaskcodecError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Task-aware, layered image compression with an audit trail.")
# Off a terminal (a pipe, a log, CI) tables are as wide as their content: nothing is cut or wrapped.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 100_000)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 100_000)


def _version(value: bool) -> None:
    if value:
        import taskcodec

        print(f"taskcodec {taskcodec.__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Task-aware, layered image compression with an audit trail.

    Exit codes, the same for every command: 0 all good; 1 some inputs failed (the batch went on) or a
    stream was damaged; 2 usage error (bad option, nothing was done)."""


def expand_inputs(paths: list[Path], suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Files as given; a folder stands for the images in it (recursively), a pattern with * ? [ for its
    matches (for shells that pass it through quoted). A pattern that matches nothing stays as it is,
    so it fails as a missing file with its own name."""
    import glob

    from taskcodec.archive import IMAGE_SUFFIXES

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(q for q in sorted(p.rglob("*")) if q.is_file() and not q.name.startswith(".")
                       and q.suffix.lower() in (suffixes or IMAGE_SUFFIXES))
        elif not p.exists() and any(ch in str(p) for ch in "*?["):
            out.extend(Path(m) for m in sorted(glob.glob(str(p), recursive=True)) or [str(p)])
        else:
            out.append(p)
    return out


def _each(items, fn, key: str) -> tuple[list[dict], int]:
    """``fn`` over every item; one that fails is reported in one line and the rest go on."""
    out, failed = [], 0
    for x in items:
        try:
            out.append(fn(x))
        except (OSError, TaskcodecError) as exc:
            failed += 1
            err.print(f"[red]error:[/] {escape(str(exc))}")
            out.append({key: str(x), "error": str(exc)})
    return out, failed


def _emit(out: list[dict], as_json: bool, render) -> None:
    """All items as one JSON list, or each good one rendered for people."""
    if as_json:
        print(json.dumps(out, indent=2))
        return
    for item in out:
        if "error" not in item:
            render(item)


def _fail(exc: Exception, code: int = 2) -> None:
    from taskcodec.errors import StoreError

    if isinstance(exc, StoreError):  # the environment, not the command line, is at fault
        code = 1
    err.print(f"[red]error:[/] {escape(str(exc))}")
    raise typer.Exit(code)


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
        from taskcodec.tools.grounding import coverage, get_backend
        from taskcodec.tools.grounding.base import ungroundable_labels

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
    from taskcodec import pipeline
    from taskcodec.agents.policy import policy_from_labels
    from taskcodec.settings import get_settings

    if list_backends:
        from taskcodec.tools.grounding import catalogue

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
        policy = pipeline.plan_task(task) if task is not None else policy_from_labels(labels.split(","))
        thr = policy.rules.min_score if threshold is None else threshold
        warning = pipeline.check_coverage(policy, grounding, "area")
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

    out, failed = _each(images, lambda path: pipeline.ground_report(path, policy, grounding, thr), "image")
    _emit(out, as_json, render)
    raise typer.Exit(1 if failed else 0)


def _progress(total: int | None, what: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from taskcodec.progress import set_listener

    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                   transient=True)
    tid = bar.add_task(what, total=total)
    set_listener(lambda _path, _ok: bar.advance(tid))
    return bar


def print_reports(reports) -> int:
    t = Table("image", "status", "bytes", "bpp", "layers", "sent", "dropped", "seconds", "bitstream / error")
    for r in reports:
        if r.ok:
            t.add_row(escape(Path(r.path).name), "[green]ok[/]", f"{r.bytes:,}", f"{r.bpp:.4f}", str(r.layers),
                      str(r.transmitted), str(r.dropped), f"{r.seconds:.2f}", r.bitstream)
        else:
            t.add_row(escape(Path(r.path).name), "[red]failed[/]", "", "", "", "", "", f"{r.seconds:.2f}",
                      escape(r.error or ""))
    console.print(t)
    failed = sum(not r.ok for r in reports)
    console.print(f"{len(reports) - failed} encoded, {failed} failed")
    return failed


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
    from taskcodec import pipeline
    from taskcodec.codec import get_codec
    from taskcodec.tools.grounding.coverage import check_mode

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
        warning = None if full else pipeline.check_coverage(pipeline.plan_task(task), grounding, uncovered)
    except TaskcodecError as exc:  # --uncovered fail stops here too, before any image is read
        _fail(exc)
    from taskcodec.flows.runtime import use_flows

    args = (task, [str(p) for p in images], str(out), codec, quality, budget_bytes, grounding, threshold, full,
            uncovered, overwrite)
    as_flow = use_flows(len(images))  # a batch, or a Prefect server configured: a flow run (it logs the warning)
    if warning and not as_flow:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    with _progress(len(images), "compress"):
        try:
            if as_flow:
                from taskcodec.flows import run_compress

                reports = run_compress(*args)
            else:  # a few files: the stages directly, no Prefect server to start
                from taskcodec import batch

                reports = batch.compress(*args)
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
    from taskcodec import pipeline
    from taskcodec.archive import ArchiveBusyError, list_images

    try:
        if out.exists() and not out.is_dir():
            raise TaskcodecError(f"--out {out} is a file; give a folder for the archive")
        n = len(list_images(source))
        pipeline.check_coverage(pipeline.plan_task(task), grounding)  # raises under "fail"; the flow logs warnings
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


@app.command()
def demo(
    out: Path = typer.Option(Path("taskcodec-demo"), "--out", help="Where the demo writes its outputs."),
    task: str = typer.Option("privacy audit: keep people and faces sharp", "--task"),
    quality: int = typer.Option(60, "--quality", min=1, max=100),
) -> None:
    """Offline end-to-end run on photos shipped with scikit-image: compress, explain, decode, compare."""
    from taskcodec.demo import run_demo

    try:
        failed = run_demo(out, task, quality, console)
    except TaskcodecError as exc:
        _fail(exc, 1)
    raise typer.Exit(1 if failed else 0)


# codec work (bench, train-codec), decoding and schedules live in their own modules; importing them
# registers the commands
from taskcodec import cli_codec, cli_decode, cli_schedule  # noqa: E402,F401


def main() -> None:
    from sqlalchemy.exc import OperationalError

    try:
        app()
    except TaskcodecError as exc:  # raised outside a command's own handling (a store fault, say): one line
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise SystemExit(1) from None
    except OperationalError as exc:  # the store failed mid-command: locked past the busy timeout, disk full...
        from taskcodec.settings import get_settings

        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        hint = " (another process holds it; TASKCODEC_DB_BUSY_TIMEOUT_S)" if "locked" in reason else ""
        err.print(f"[red]error:[/] {escape(get_settings().db_url)}: the store failed: {escape(reason)}{hint}")
        raise SystemExit(1) from None


if __name__ == "__main__":  # `python -m taskcodec.cli`: run the imported module, whose app has every command
    from taskcodec.cli import main as _main

    _main()
