"""``taskcodec bench`` and ``taskcodec train-codec``: the commands that measure and train codecs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

import typer

from taskcodec.cli.common import _fail, app, console, err
from taskcodec.errors import TaskcodecError


@app.command()
def bench(
    images: Optional[Path] = typer.Option(None, "--images", help="COCO images folder (default: shared coco-val158)."),
    annotations: Optional[Path] = typer.Option(None, "--annotations", help="COCO instances JSON."),
    kodak: Optional[Path] = typer.Option(None, "--kodak", help="Image folder for human viewing (default: Kodak)."),
    out: Path = typer.Option(Path("bench-out"), "--out"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N images of each set."),
    grounding: Optional[str] = typer.Option(None, "--grounding", help="Grounding backend at the encoder "
                                            "(default: the configured one, TASKCODEC_GROUNDING)."),
    judge: str = typer.Option("tflite:yolov8n_int8.tflite", "--judge", help="A different detector that judges."),
    codecs: str = typer.Option("classical,learned", "--codecs", help="taskcodec codecs to measure, comma-separated."),
    docs: Optional[Path] = typer.Option(None, "--docs", help="Also write the summary as a section of this Markdown "
                                        "file (developers: docs/benchmarks.md). Otherwise only --out is written."),
    workers: int = typer.Option(2, "--workers", min=1, help="Operating points measured at a time (threads); "
                                "1 gives the cleanest seconds per image."),
    qualities: Optional[List[str]] = typer.Option(None, "--qualities", metavar="NAME=Q,Q,...",
                                                  help="One curve's settings (NAME: jpeg, webp, avif or a codec of "
                                                  "--codecs), e.g. avif=10,15,20,30; repeat for more curves. "
                                                  "Default: 4 per curve (jpeg 10..75, webp 10..80, avif 15..70, "
                                                  "taskcodec 20..70)."),
    docs_section: str = typer.Option("bench", "--docs-section", help="The --docs section to write (its marker "
                                     "key): another key keeps the default run's section."),
) -> None:
    """Rate-accuracy curves and BD-rates of taskcodec against JPEG, WebP and AVIF (a Prefect flow)."""
    from taskcodec.errors import require_extra
    from taskcodec.settings import get_settings

    try:
        require_extra("bench", "taskcodec bench", "pycocotools", "matplotlib", "pytorch_msssim", "torch")
    except TaskcodecError as exc:
        _fail(exc, 1)
    shared = get_settings().shared_path / "data"
    images = images or shared / "coco-val158" / "images"
    annotations = annotations or shared / "coco-val158" / "instances.json"
    kodak = kodak or shared / "kodak"
    for p, what in ((images, "--images"), (annotations, "--annotations")):
        if not p.exists():
            _fail(TaskcodecError(f"{what} {p} does not exist (set TASKCODEC_SHARED_DIR or pass it)"))
    grounding = grounding or get_settings().grounding
    if grounding == judge:
        err.print("[yellow]warning:[/] the judge is the grounding detector: the result flatters taskcodec")
    names = tuple(c.strip() for c in codecs.split(",") if c.strip())
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", docs_section):
        _fail(TaskcodecError(f"--docs-section {docs_section!r}: a marker key is lower-case letters, digits, - and _"))
    try:
        from taskcodec.bench.run import operating_points
        from taskcodec.codec import get_codec

        points = operating_points(list(qualities or []), names)

        for c in names:
            if get_codec(c).CODEC_ID == "learned":
                from taskcodec.codec.learned import load_model

                load_model()
    except TaskcodecError as exc:
        _fail(exc)
    from taskcodec.bench.report import summary_markdown
    from taskcodec.flows.bench import bench_flow

    from taskcodec.cli.common import _progress

    try:
        with _progress(None, "bench: operating points"):
            result = bench_flow(str(images), str(annotations), str(kodak), str(out), grounding, judge, limit,
                                codecs=names, workers=workers, qualities=points)
    except TaskcodecError as exc:
        _fail(exc, 1)
    import sys as _sys

    command = "taskcodec " + " ".join(_sys.argv[1:])
    md = summary_markdown(result, command)
    (out / "summary.md").write_text(md + "\n")
    if docs is not None:
        from taskcodec.bench.report import write_section

        title = "Rate-accuracy benchmark" + ("" if docs_section == "bench" else f" ({docs_section})")
        write_section(docs_section, title, md + f"\n\nPlots and every point: `{out}/`.", docs)
    console.print(md)


@app.command("train-codec")
def train_codec(
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoint.safetensors (resumed if present), log.jsonl."),
    data: Optional[Path] = typer.Option(None, "--data", help="Training images (default: shared data/train; "
                                        "never an evaluation set)."),
    steps: int = typer.Option(14000, "--steps", min=1),
    batch: int = typer.Option(8, "--batch", min=1),
    crop: int = typer.Option(128, "--crop", min=64, help="Random crop side, a multiple of 64."),
    lr: float = typer.Option(5e-4, "--lr"),
    n: int = typer.Option(64, "--N", help="Channels of g_a/g_s/h_a/h_s."),
    m: int = typer.Option(192, "--M", help="Channels of the latent y."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start a new run from these weights (same --N; the "
                                        "same --M fine-tunes, a larger --M widens the latent)."),
    mask_prob: float = typer.Option(0.3, "--mask-prob", min=0, max=1, help="Share of samples with random region masking."),
    seed: int = typer.Option(0, "--seed"),
    export: Optional[Path] = typer.Option(None, "--export", help="Also write decoder weights (safetensors) here."),
) -> None:
    """Train the learned codec (rate-distortion + aux loss, random region masking); resumable."""
    import json as _json

    from taskcodec.codec.learned.train import TrainConfig, train
    from taskcodec.settings import get_settings

    if crop % 64:
        _fail(TaskcodecError(f"--crop must be a multiple of 64, not {crop}"))
    cfg = TrainConfig(data=str(data or get_settings().shared_path / "data" / "train"), out=str(out), steps=steps,
                      batch=batch, crop=crop, lr=lr, N=n, M=m, mask_prob=mask_prob, seed=seed,
                      init=str(init or ""))
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.jsonl"

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("train-codec"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                   transient=True)
    tid = bar.add_task("train", total=steps)

    def progress(row: dict) -> None:
        with log_path.open("a") as f:
            f.write(_json.dumps(row) + "\n")
        bar.update(tid, completed=row["step"])
        console.print(f"step {row['step']:>6}/{steps}  loss {row['loss']:.3f}  bpp {row['bpp']:.3f}  "
                      f"PSNR {row['psnr']:.2f} dB  aux {row['aux']:.1f}  {row['elapsed_s']:.0f} s")

    try:
        with bar:
            ckpt = train(cfg, progress)
        if export is not None:
            from taskcodec.codec.learned.weights import export_checkpoint

            export_checkpoint(ckpt, export)
            console.print(f"wrote {export}")
    except TaskcodecError as exc:
        _fail(exc, 1)
    console.print(f"checkpoint {ckpt}")
