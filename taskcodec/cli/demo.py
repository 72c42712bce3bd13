"""``taskcodec demo``: the whole pipeline, offline, on photos that ship inside scikit-image.

1. plan the task and show the policy;
2. compress the photos (Prefect flow): ground, decide, encode, persist;
3. decode them for people (Prefect flow): PNG + mask of transmitted pixels;
4. compare bytes with a whole-image JPEG and AVIF at the same quality setting,
   and PSNR inside the transmitted regions and over the whole image;
5. print every decision and write an HTML audit page.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from taskcodec.cli.common import _fail, _progress, app, console, print_reports, rule
from taskcodec.errors import TaskcodecError

DEMO_IMAGES = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")


def demo_images() -> list[str]:
    import skimage.data

    root = Path(os.path.dirname(skimage.data.__file__))
    return [str(root / n) for n in DEMO_IMAGES if (root / n).is_file()]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def run_demo(out: Path, task: str, quality: int, console) -> int:
    import numpy as np
    from PIL import Image

    from taskcodec.bench.metrics import psnr
    from taskcodec.bench.run import whole_image
    from taskcodec import stages
    from taskcodec.audit import explain_target, write_html

    out = Path(out)
    images = demo_images()
    policy = stages.plan_task(task)
    rule(f"[bold]task[/]: {task}")
    console.print("policy: " + ", ".join(f"{l.name} ({l.importance:.2f})" for l in policy.labels)
                  + f"  [{policy.provenance.source}, policy #{policy.policy_id}]")

    rule("compress (Prefect flow)")
    from taskcodec.flows import run_compress, run_decode

    with _progress(len(images), "compress"):
        reports = run_compress(task, images, str(out / "bitstreams"), "classical", quality, overwrite=True)
    failed = print_reports(reports)
    ok = [r for r in reports if r.ok]
    with _progress(len(ok), "decode"):
        run_decode([r.bitstream for r in ok], str(out / "decoded"), overwrite=True)  # the demo owns its folder

    rule(f"bytes and PSNR against whole-image codecs at quality {quality}")
    t = Table("image", "sent", "taskcodec B", "JPEG B", "AVIF B", "vs AVIF",
              "PSNR objects tc/jpeg/avif dB", "PSNR whole tc/jpeg/avif dB")
    audits, extras = [], {}
    for r in ok:
        original = stages.load(r.path).pixels
        decoded = np.asarray(Image.open(out / "decoded" / (Path(r.bitstream).stem + ".png")).convert("RGB"))
        mask = np.asarray(Image.open(out / "decoded" / (Path(r.bitstream).stem + ".png.mask.png"))) > 127
        jb, jpx = whole_image(original, "JPEG", quality)
        ab, apx = whole_image(original, "AVIF", quality)
        obj = [psnr(x, original, mask) for x in (decoded, jpx, apx)]
        whole = [psnr(x, original) for x in (decoded, jpx, apx)]
        t.add_row(escape(Path(r.path).name), str(r.transmitted), f"{r.bytes:,}", f"{jb:,}", f"{ab:,}",
                  f"{100 * (r.bytes / ab - 1):+.0f}%", "/".join(map(_fmt, obj)), "/".join(map(_fmt, whole)))
        a = explain_target(r.bitstream)[0]
        audits.append(a)
        extras[a.encoding.id] = (f"Whole-image JPEG q{quality}: {jb:,} B, AVIF q{quality}: {ab:,} B. "
                                 f"PSNR in transmitted regions (taskcodec/JPEG/AVIF): {'/'.join(map(_fmt, obj))} dB.")
    console.print(t)

    rule("what was sent, and why")
    for a in audits:
        console.print(f"[bold]{escape(Path(a.image.path).name)}[/] ({a.encoding.bytes:,} bytes)")
        for d in a.decisions:
            colour = {"transmit": "green", "downgrade": "yellow", "drop": "red"}[d.action]
            console.print(f"  [{colour}]{d.action:9}[/] {escape(d.sentence)}")

    page = write_html(audits, out / "audit.html", f"taskcodec demo: {task}",
                      intro=f"Policy #{policy.policy_id}: " + ", ".join(f"{l.name} ({l.importance:.2f})"
                                                                        for l in policy.labels), extras=extras,
                      overwrite=True)
    rule("outputs")
    console.print(f"bitstreams: {out / 'bitstreams'}\ndecoded images + masks: {out / 'decoded'}\naudit page: {page}\n"
                  f"explain one: taskcodec why {ok[0].bitstream if ok else '<file.tcb>'}")
    return failed


@app.command()
def demo(
    out: Path = typer.Option(Path("taskcodec-demo"), "--out", help="Where the demo writes its outputs."),
    task: str = typer.Option("privacy audit: keep people and faces sharp", "--task"),
    quality: int = typer.Option(60, "--quality", min=1, max=100),
) -> None:
    """Offline end-to-end run on photos shipped with scikit-image: compress, explain, decode, compare."""
    try:
        failed = run_demo(out, task, quality, console)
    except TaskcodecError as exc:
        _fail(exc, 1)
    raise typer.Exit(1 if failed else 0)
