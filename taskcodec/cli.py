"""``taskcodec`` command line. Batch commands run as Prefect flows; quick one-item
commands (plan, ground, why, one decode) call the stage functions directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from taskcodec.errors import TaskcodecError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Task-aware, layered image compression with an audit trail.")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail(exc: Exception, code: int = 2) -> None:
    err.print(f"[red]error:[/] {exc}")
    raise typer.Exit(code)


@app.command()
def plan(
    task: str = typer.Argument(..., help="What the images are for, in plain language."),
    as_json: bool = typer.Option(False, "--json", help="Print the policy as JSON."),
    refresh: bool = typer.Option(False, "--refresh", help="Plan again and store a new policy version."),
) -> None:
    """Show the task policy (labels and their importance) for TASK."""
    from taskcodec.agents.graph import run_agent
    from taskcodec.store import repo
    from taskcodec.store.db import session

    try:
        p, state = run_agent(task, refresh=refresh)
    except TaskcodecError as exc:
        _fail(exc)
    with session() as s:
        steps = [{"node": st.node, **st.outcome} for st in repo.agent_steps(s, p.policy_id)]
    if as_json:
        body = p.model_dump(mode="json")
        body.update(source=p.provenance.source, model=p.provenance.model, cached=bool(state.get("cached")),
                    prompt_version=p.provenance.prompt_version, content_hash=p.content_hash(), agent_steps=steps)
        console.print_json(json.dumps(body, default=str))
        return
    console.print(f"policy #{p.policy_id} v{p.version} for [bold]{p.task}[/] "
                  f"({p.provenance.source}: {p.provenance.model}, version {p.provenance.prompt_version})")
    t = Table("rank", "label", "importance", "tier", "synonyms")
    for l in p.labels:
        t.add_row(str(l.rank), l.name, f"{l.importance:.2f}", p.rules.tier(l.importance), ", ".join(l.synonyms[:5]))
    console.print(t)
    r = p.rules
    console.print(f"rules: min score {r.min_score}, max objects {r.max_objects}, background {r.background}, "
                  f"quality offsets {r.quality_offset}")
    how = "from the store (no planning call)" if state.get("cached") else "planned now"
    console.print(f"{how}; made by: " + " -> ".join(
        f"{st['node']}({st.get('outcome', st.get('backend', ''))})".replace("()", "") for st in steps))


@app.command()
def ground(
    images: list[Path] = typer.Argument(..., help="Image files."),
    task: Optional[str] = typer.Option(None, "--task", help="Task text (its policy gives the labels)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Comma-separated labels instead of a task."),
    grounding: Optional[str] = typer.Option(None, "--grounding", help="Backend spec (default TASKCODEC_GROUNDING)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Minimum score (default: the policy's)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Preview what would be found: per image, label, detector class, box [x0,y0,x1,y1] in pixels, score."""
    from taskcodec import pipeline
    from taskcodec.agents.policy import policy_from_labels

    if (task is None) == (labels is None):
        _fail(TaskcodecError("give exactly one of --task or --labels"))
    try:
        policy = pipeline.plan_task(task) if task is not None else policy_from_labels(labels.split(","))
        thr = policy.rules.min_score if threshold is None else threshold
    except TaskcodecError as exc:
        _fail(exc)
    out, failed = [], 0
    for path in images:
        try:
            out.append(pipeline.ground_report(path, policy, grounding, thr))
        except TaskcodecError as exc:
            failed += 1
            err.print(f"[red]error:[/] {exc}")
            out.append({"image": str(path), "error": str(exc)})
    if as_json:
        print(json.dumps(out, indent=2))
    else:
        for item in out:
            if "error" in item:
                continue
            t = Table("label", "class", "box [x0,y0,x1,y1]", "score", title=f"{item['image']} ({item['backend']})")
            for d in item["detections"]:
                t.add_row(d["label"], d["class_name"], "[" + ", ".join(f"{v:g}" for v in d["box"]) + "]",
                          f"{d['score']:.3f}")
            console.print(t)
            if item["ungroundable"]:
                console.print(f"  not groundable by {item['backend']}: {', '.join(item['ungroundable'])}")
    raise typer.Exit(1 if failed else 0)


def _progress(total: int, what: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from taskcodec.flows.progress import set_listener

    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                   transient=True)
    tid = bar.add_task(what, total=total)
    set_listener(lambda _path, _ok: bar.advance(tid))
    return bar


def print_reports(reports) -> int:
    t = Table("image", "status", "bytes", "bpp", "layers", "sent", "dropped", "seconds", "bitstream / error")
    for r in reports:
        if r.ok:
            t.add_row(Path(r.path).name, "[green]ok[/]", f"{r.bytes:,}", f"{r.bpp:.4f}", str(r.layers),
                      str(r.transmitted), str(r.dropped), f"{r.seconds:.2f}", r.bitstream)
        else:
            t.add_row(Path(r.path).name, "[red]failed[/]", "", "", "", "", "", f"{r.seconds:.2f}", r.error)
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
) -> None:
    """Compress IMAGES for TASK into OUT/<stem>.tcb (a Prefect flow); exit 1 if any image failed."""
    from taskcodec.agents.policy import normalise_task
    from taskcodec.codec import get_codec
    from taskcodec.tools.grounding import get_backend

    try:  # fail fast, before Prefect starts, on what would fail every image
        if full == (task is not None):
            raise TaskcodecError("give --task TASK, or --full for whole-image mode (not both)")
        if not full:
            normalise_task(task)
        if get_codec(codec).CODEC_ID == "learned":
            from taskcodec.codec.learned import load_model

            load_model()
        from taskcodec.settings import get_settings

        get_backend(grounding or get_settings().grounding)
    except TaskcodecError as exc:
        _fail(exc)
    from taskcodec.flows import compress_flow

    with _progress(len(images), "compress"):
        try:
            reports = compress_flow(task, [str(p) for p in images], str(out), codec, quality, budget_bytes,
                                    grounding, threshold, full)
        except TaskcodecError as exc:
            _fail(exc)
    raise typer.Exit(1 if print_reports(reports) else 0)


ROUTES = ("human", "machine", "machine:detect", "machine:classify")


@app.command()
def decode(
    file: Path = typer.Argument(..., help="A .tcb bitstream."),
    for_: str = typer.Option(..., "--for", help="human | machine | machine:detect | machine:classify"),
    out: Path = typer.Option(..., "--out", help="Output path (PNG for human, JSON for machine)."),
    layers: str = typer.Option("all", "--layers", help="all | base | N (base + first N object layers)."),
    strict: bool = typer.Option(False, "--strict", help="Fail on a truncated or corrupt file instead of "
                                                       "decoding its complete prefix."),
    reconstruct: Optional[str] = typer.Option(None, "--reconstruct", help="human: classical | diffusion | none "
                                              "(default: diffusion when TASKCODEC_DIFFUSION_MODEL is set)."),
    model: Optional[str] = typer.Option(None, "--model", help="Diffusion model (human) or classifier "
                                        "(machine:classify): hub id, folder or .tflite file."),
    controlnet: Optional[str] = typer.Option(None, "--controlnet", help="ControlNet on the coarse base (diffusion)."),
    steps: int = typer.Option(50, "--steps", min=1, help="Diffusion steps (8 is enough for machines, 50 for people)."),
    seed: int = typer.Option(0, "--seed", help="Diffusion seed (same seed, same image)."),
    strength: float = typer.Option(1.0, "--strength", min=0.01, max=1.0,
                                   help="How far diffusion may depart from the coarse base."),
    tile: int = typer.Option(512, "--tile", min=16, help="Diffusion works on tiles of at most this many pixels."),
    detector: Optional[str] = typer.Option(None, "--detector", help="machine:detect: a grounding spec "
                                           "(opencv, onnx:PATH, tflite:PATH, grounding-dino[:MODEL])."),
    threshold: float = typer.Option(0.25, "--threshold", help="machine:detect: minimum score."),
    labels: Optional[str] = typer.Option(None, "--labels", help="machine:detect with an open-vocabulary detector."),
) -> None:
    """Decode one bitstream for a person or a machine tool."""
    from taskcodec import pipeline, routes
    from taskcodec.imageio import sha256_file

    if for_ not in ROUTES:
        _fail(TaskcodecError(f"--for must be one of {', '.join(ROUTES)}, not {for_!r}"))
    try:
        bs = pipeline.read_bitstream(file)
        for p in bs.problems:
            (err.print(f"[red]error:[/] {file}: {p}") if strict else err.print(f"[yellow]warning:[/] {file}: {p}"))
        if strict and bs.problems:
            raise typer.Exit(1)
        decoded = pipeline.decode_bitstream(bs, layers)
        sha = sha256_file(file)
        used = f"({len(decoded.layers)} of {len(bs.header.layers)} layers)"
        if for_ == "human":
            img, mask, meta = routes.human(bs, decoded, out, sha, reconstruct, model, controlnet, steps, seed, strength,
                                           tile)
            console.print(f"wrote {img}, {mask} and {meta} {used}")
        else:
            tool = for_.partition(":")[2] or None
            options = {"detector": detector, "threshold": threshold, "model": model,
                       "labels": [l.strip() for l in labels.split(",") if l.strip()] if labels else None}
            js, img = routes.machine(bs, decoded, out, sha, tool, options)
            console.print(f"wrote {js} and {img} {used}")
    except TaskcodecError as exc:
        _fail(exc, 1)


@app.command()
def why(
    target: Path = typer.Argument(..., help="A .tcb bitstream, or an image that was compressed."),
    as_json: bool = typer.Option(False, "--json"),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Also write an HTML audit page here."),
) -> None:
    """The audit: every candidate object, transmitted or not, why, and the bytes spent."""
    from taskcodec.audit import audit_json, explain_target, render_text, write_html

    try:
        audits = explain_target(target)
    except TaskcodecError as exc:
        _fail(exc, 1)
    if as_json:
        print(json.dumps([audit_json(a) for a in audits], indent=2, default=str))
    else:
        for a in audits:
            render_text(a, console)
    if html_out is not None:
        write_html(audits, html_out, f"taskcodec audit: {target.name}")
        err.print(f"wrote {html_out}")


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
) -> None:
    """Archive what is new in SOURCE (by content hash), verify every bitstream, record it (a Prefect flow)."""
    from taskcodec.archive import list_images

    try:
        n = len(list_images(source))
    except TaskcodecError as exc:
        _fail(exc)
    from taskcodec.flows import run_archive

    with _progress(n, "archive"):
        try:
            items = run_archive(task, str(source), str(out), workers=workers, codec=codec, quality=quality,
                                grounding=grounding, delete_originals_after_verify=delete_originals)
        except TaskcodecError as exc:
            _fail(exc)
    t = Table("image", "status", "bytes", "original deleted", "bitstream / reason")
    for i in items:
        colour = {"archived": "green", "skipped": "cyan", "failed": "red"}[i.status]
        t.add_row(i.path, f"[{colour}]{i.status}[/]", f"{i.bytes:,}" if i.bytes else "", "yes" if i.deleted_original
                  else "", i.bitstream if i.status != "failed" else i.reason)
    console.print(t)
    counts = {s: sum(i.status == s for i in items) for s in ("archived", "skipped", "failed")}
    console.print(f"{counts['archived']} archived, {counts['skipped']} already archived, {counts['failed']} failed")
    raise typer.Exit(1 if counts["failed"] else 0)


@app.command()
def schedule(
    name: str = typer.Option(..., "--name", help="The job's name (an existing job is updated)."),
    cron: str = typer.Option(..., "--cron", help='Cron expression, e.g. "0 2 * * *" for 02:00 daily.'),
    task: str = typer.Option(..., "--task"),
    source: Path = typer.Option(..., "--source"),
    out: Path = typer.Option(..., "--out"),
    quality: int = typer.Option(60, "--quality", min=1, max=100),
    grounding: Optional[str] = typer.Option(None, "--grounding"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1),
    delete_originals: bool = typer.Option(False, "--delete-originals-after-verify"),
) -> None:
    """Store a standing archive job on a cron schedule; `taskcodec serve` runs it when due."""
    from taskcodec.agents.policy import normalise_task
    from taskcodec.flows.schedules import save_schedule

    params = {"task_text": task, "source": str(source.resolve()), "out_dir": str(out.resolve()), "quality": quality,
              "grounding": grounding, "workers": workers, "delete_originals_after_verify": delete_originals}
    try:
        normalise_task(task)
        row, registered = save_schedule(name, cron, params)
    except TaskcodecError as exc:
        _fail(exc)
    where = "registered with the Prefect server" if registered else "stored (set PREFECT_API_URL to register it)"
    console.print(f"schedule '{row.name}' ({row.cron}) {where}; run `taskcodec serve` to execute it when due")


@app.command()
def serve() -> None:
    """Serve every stored schedule with Prefect until interrupted (needs PREFECT_API_URL)."""
    from taskcodec.flows.schedules import serve_schedules

    try:
        serve_schedules()
    except TaskcodecError as exc:
        _fail(exc, 1)


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


# codec work (bench, train-codec) lives in its own module; importing it registers the commands
from taskcodec import cli_codec  # noqa: E402,F401


def main() -> None:
    app()


if __name__ == "__main__":
    main()
