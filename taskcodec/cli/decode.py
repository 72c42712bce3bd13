"""``taskcodec decode``, ``info`` and ``why``: the commands that read bitstreams."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from taskcodec.cli.common import _each, _emit, _fail, app, console, err, expand_inputs
from taskcodec.errors import TaskcodecError

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
                                           "(default yolox; opencv, onnx:PATH, tflite:PATH, grounding-dino[:MODEL])."),
    threshold: float = typer.Option(0.25, "--threshold", help="machine:detect: minimum score."),
    labels: Optional[str] = typer.Option(None, "--labels", help="machine:detect with an open-vocabulary detector."),
    image_id: Optional[int] = typer.Option(None, "--image-id", help="machine:detect: the COCO image id of every "
                                           "detection (default: the file name's digits, else 0)."),
    best_effort: bool = typer.Option(False, "--best-effort", help="Decode the intact layers of a damaged stream "
                                     "(CRC mismatch) instead of failing."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as one JSON object."),
) -> None:
    """Decode one bitstream for a person or a machine tool.

    Exit 0 when every asked-for layer decoded; 1 when the stream is damaged (a layer failed its CRC;
    --best-effort decodes the layers before it), when no layer could be used, or when a file cut short
    is decoded with --strict (without it, its complete layers are used, with a warning)."""
    from taskcodec import decode_routes, stages
    from taskcodec.imageio import sha256_file

    if for_ not in ROUTES:
        _fail(TaskcodecError(f"--for must be one of {', '.join(ROUTES)}, not {for_!r}"))
    try:  # usage errors (exit 2) before anything is read
        wanted = stages.parse_layers(layers)
        decode_routes.check_output("human" if for_ == "human" else "machine", out)
    except TaskcodecError as exc:
        _fail(exc)
    try:
        bs = stages.read_bitstream(file)  # with TASKCODEC_MAC_KEY_FILE set, its signature is checked
        if bs.signed and stages.mac_key() is None:
            err.print(f"[yellow]warning:[/] {escape(str(file))} is signed (HMAC); set TASKCODEC_MAC_KEY_FILE to "
                      "prove it unchanged")
        fatal = (bs.corrupt and not best_effort) or (strict and bool(bs.problems))
        for p in bs.problems:
            err.print(f"[red]error:[/] {escape(f'{file}: {p}')}" if fatal else f"[yellow]warning:[/] {escape(f'{file}: {p}')}")
        if fatal:
            hint = "; --best-effort decodes the layers before the damage" if bs.corrupt and not best_effort else ""
            _fail(TaskcodecError(f"{file}: not decoded{hint}"), 1)
        if not bs.payloads:
            _fail(TaskcodecError(f"{file}: no layer is intact, nothing to decode"), 1)
        objects_in_file = sum(e.kind == "object" for e in bs.header.layers)
        if wanted is not None and wanted > objects_in_file:
            err.print(f"[yellow]warning:[/] --layers {wanted} asks for more object layers than {escape(str(file))} "
                      f"has ({objects_in_file}): decoding all of them")
        decoded = stages.decode_bitstream(bs, layers)
        sha = sha256_file(file)
        used = f"({len(decoded.layers)} of {len(bs.header.layers)} layers)"
        if for_ == "human":
            img, mask, meta = decode_routes.human(bs, decoded, out, sha, reconstruct, model, controlnet, steps, seed, strength,
                                           tile, overwrite=overwrite)
            written = {"image": str(img), "mask": str(mask), "meta": str(meta)}
        else:
            tool = for_.partition(":")[2] or None
            digits = "".join(ch for ch in file.stem if ch.isdigit())
            options = {"detector": detector, "threshold": threshold, "model": model,
                       "image_id": image_id if image_id is not None else int(digits or 0),
                       "labels": [l.strip() for l in labels.split(",") if l.strip()] if labels else None}
            js, img = decode_routes.machine(bs, decoded, out, sha, tool, options, overwrite=overwrite)
            written = {"json": str(js), "image": str(img)}
    except TaskcodecError as exc:
        _fail(exc, 1)
    if as_json:
        print(json.dumps({"file": str(file), "route": for_, "layers_used": len(decoded.layers),
                          "layers_in_file": len(bs.header.layers), "problems": bs.problems, **written}, indent=2))
    else:
        console.print(escape(f"wrote {', '.join(written.values())} {used}"))


@app.command()
def info(
    files: list[Path] = typer.Argument(..., help=".tcb bitstreams."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file."),
) -> None:
    """Look inside .tcb files without the store: version, header and, per layer, kind, label and bytes.
    Label names and the task come from the store when one exists and holds the file's policy."""
    from taskcodec.codec import bitstream
    from taskcodec.stages import with_names
    from taskcodec.store.db import store_exists

    named = store_exists()

    def describe(f: Path) -> dict:
        if not f.is_file():
            raise TaskcodecError(f"{f}: not a file")
        data = f.read_bytes()
        bs = bitstream.unpack(data, f)
        if named:
            bs = with_names(bs)
        major, minor = bs.version
        h = bs.header
        payload = sum(len(p) for p in bs.payloads)
        return {"file": str(f), "version": f"{major}.{minor}", "bytes": len(data), "header_bytes": bs.header_bytes,
                "non_payload_share": round(1 - payload / len(data), 4) if bs.complete else None, "width": h.width,
                "height": h.height, "codec": h.codec, "codec_version": h.codec_version, "settings": h.settings,
                "encoding_uid": h.encoding_uid, "policy_id": h.policy_id, "policy_hash": h.policy_hash,
                "task": h.task, "complete": bs.complete, "signed": bs.signed, "problems": bs.problems,
                "layers": [{"index": e.index, "kind": e.kind, "label": e.label, "label_index": e.label_index,
                            "quality": e.quality,
                            "length": e.length, "box": list(e.box) if e.box else None,
                            "intact": e.index < len(bs.payloads)} for e in h.layers]}

    def render(item: dict) -> None:
        console.print(escape(f"{item['file']}: taskcodec bitstream v{item['version']}, {item['bytes']:,} bytes, "
                             f"{item['width']}x{item['height']}, codec {item['codec']} v{item['codec_version']}, "
                             f"encoding {item['encoding_uid']}, policy #{item['policy_id']}, "
                             f"header {item['header_bytes']:,} bytes"
                             + (", signed (HMAC-SHA256)" if item["signed"] else "")))
        if item["task"]:
            console.print(escape(f"  task: {item['task']!r}"))
        qualities = any(e["quality"] is not None for e in item["layers"])  # v1 headers carry them, v2 the store
        t = Table("layer", "kind", "label", *(["quality"] if qualities else []), "bytes", "intact")
        for e in item["layers"]:
            label = e["label"] or (f"#{e['label_index']} of the policy's labels" if e["label_index"] is not None else "")
            t.add_row(str(e["index"]), e["kind"], escape(label),
                      *([str(e["quality"]) if e["quality"] is not None else ""] if qualities else []),
                      f"{e['length']:,}", "yes" if e["intact"] else "[red]no[/]")
        console.print(t)
        for p in item["problems"]:
            err.print(f"[yellow]warning:[/] {escape(p)}")

    out, failed = _each(expand_inputs(files, (".tcb",)), describe, "file")
    _emit(out, as_json, render)
    raise typer.Exit(1 if failed else 0)


@app.command()
def why(
    target: Path = typer.Argument(..., help="A .tcb bitstream, or an image that was compressed."),
    as_json: bool = typer.Option(False, "--json"),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Also write an HTML audit page here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --html page."),
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
        try:
            write_html(audits, html_out, f"taskcodec audit: {target.name}", overwrite=overwrite)
        except TaskcodecError as exc:
            _fail(exc, 1)
        err.print(escape(f"wrote {html_out}"))
