"""The audit: why every candidate object was or was not transmitted.

``explain_target`` answers ``taskcodec why FILE.tcb|IMAGE`` from the store;
``render_text`` / ``audit_json`` print it; ``write_html`` draws each image
with its decoded picture (from the bitstream), mask and original, boxes coloured by
decision and the reasons beside it (template ``templates/audit.html.j2``).
"""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

from PIL import Image

from taskcodec.codec import bitstream
from taskcodec.errors import TaskcodecError
from taskcodec.settings import Settings
from taskcodec.store import repo
from taskcodec.store.db import session
from taskcodec.store.repo import EncodingAudit

COLOURS = {"transmit": "#1a9850", "downgrade": "#f39c12", "drop": "#d73027"}


def explain_target(target: str | Path, settings: Settings | None = None) -> list[EncodingAudit]:
    """Audits for a bitstream (its encoding) or an image (every encoding of its content)."""
    p = Path(target)
    if not p.is_file():
        raise TaskcodecError(f"{p}: file does not exist")
    data = p.read_bytes()
    with session(settings) as s:
        if data[:4] == bitstream.MAGIC:
            header, _ = bitstream.parse_header(data, p)
            enc = repo.encoding_by_uid(s, header.encoding_uid)
            if enc is None:
                raise TaskcodecError(
                    f"{p}: encoding {header.encoding_uid} is not in this store ({s.get_bind().url.render_as_string()}); "
                    "point TASKCODEC_HOME or TASKCODEC_DATABASE_URL at the store that wrote it"
                )
            return [repo.audit(s, enc)]
        encs = repo.encodings_of_image(s, hashlib.sha256(data).hexdigest())
        if not encs:
            raise TaskcodecError(f"{p}: no encoding of this image (by content hash) is in the store")
        return [repo.audit(s, e) for e in encs]


def _policy_steps(policy_id: int | None) -> list[dict]:
    if policy_id is None:
        return []
    with session() as s:
        return [{"node": st.node, **{k: v for k, v in st.outcome.items() if k != "at"}}
                for st in repo.agent_steps(s, policy_id)]


def _decodes(uid: str) -> list[dict]:
    with session() as s:
        return [{"route": d.route, "output": d.output_path, "mask": d.mask_path, "created_at": d.created_at.isoformat(),
                 **{k: d.meta[k] for k in ("model", "controlnet", "steps", "seed", "strength", "layers_used",
                                           "transmitted_fraction") if k in d.meta}}
                for d in repo.decodes_of(s, uid)]


def audit_json(a: EncodingAudit) -> dict:
    e = a.encoding
    return {
        "encoding_uid": e.uid, "image": a.image.path, "image_sha256": a.image.sha256,
        "width": a.image.width, "height": a.image.height, "bitstream": e.bitstream_path, "bytes": e.bytes,
        "bpp": e.bpp, "codec": e.codec, "codec_version": e.codec_version, "settings": e.settings,
        "grounding": e.grounding, "created_at": e.created_at.isoformat(),
        "policy": None if a.policy is None else {
            "policy_id": a.policy.policy_id, "version": a.policy.version, "task": a.policy.task,
            "source": a.policy.provenance.source, "model": a.policy.provenance.model,
            "prompt_version": a.policy.provenance.prompt_version,
            "labels": [{"name": l.name, "importance": l.importance, "rank": l.rank} for l in a.policy.labels],
            "made_by": _policy_steps(a.policy.policy_id),
        },
        "layers": [{"index": l.index, "kind": l.kind, "label": l.label, "box": l.box, "importance": l.importance,
                    "quality": l.quality, "bytes": l.bytes} for l in a.layers],
        "decodes": _decodes(e.uid),
        "decisions": [{k: getattr(d, k) for k in (
            "object_index", "label", "class_name", "box", "action", "reason", "sentence", "score", "threshold",
            "rank", "importance", "budget", "layer_index", "quality", "bytes", "backend", "numbers")}
            for d in a.decisions],
    }


def render_text(a: EncodingAudit, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    e = a.encoding
    pol = a.policy
    console.print(f"[bold]{escape(a.image.path)}[/] -> {escape(e.bitstream_path)}")
    console.print(f"  {e.bytes:,} bytes, {e.bpp:.4f} bpp, codec {e.codec} v{e.codec_version}, "
                  f"quality {e.settings.get('quality')}, budget {e.settings.get('budget_bytes') or '-'}, "
                  f"grounding {escape(e.grounding)}")
    if pol is not None:
        console.print(escape(f"  policy #{pol.policy_id} v{pol.version} ({pol.provenance.source}, "
                             f"{pol.provenance.model}) for task: {pol.task!r}"))
    t = Table(show_lines=False)
    for col in ("action", "reason", "label", "score", "layer", "bytes", "why"):
        t.add_column(col, overflow="fold")
    for d in a.decisions:
        colour = {"transmit": "green", "downgrade": "yellow", "drop": "red"}[d.action]
        t.add_row(f"[{colour}]{d.action}[/]", d.reason, escape(d.label or d.class_name or ""),
                  "" if d.score is None else f"{d.score:.2f}", "" if d.layer_index is None else str(d.layer_index),
                  "" if d.bytes is None else f"{d.bytes:,}", escape(d.sentence))
    console.print(t)
    for d in _decodes(e.uid):
        extra = ", ".join(f"{k} {d[k]}" for k in ("model", "steps", "seed") if k in d)
        console.print(escape(f"  decoded as {d['route']}: {d['output']}" + (f" (mask {d['mask']})" if d["mask"] else "")
                             + (f"; {extra}" if extra else "")))


def _data_uri(pixels, scale: float, fmt: str = "JPEG") -> str:
    img = Image.fromarray(pixels)
    if scale < 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def _section(a: EncodingAudit, extra: str, max_side: int = 480) -> dict:
    """What the page shows for one encoding: the decoded picture and mask (from the bitstream), the
    original when it still exists, boxes coloured by decision, and every decision."""
    import numpy as np

    from taskcodec.stages import decode_bitstream
    from taskcodec.consumers.reconstruct.classical import reconstruct

    e = a.encoding
    s = min(1.0, max_side / max(a.image.width, a.image.height))
    sec = {"name": Path(a.image.path).name, "path": a.image.path, "bitstream": e.bitstream_path, "bytes": e.bytes,
           "bpp": e.bpp, "layers": len(a.layers), "grounding": str(e.grounding), "extra": extra, "problems": [],
           "decisions": a.decisions, "w": max(1, round(a.image.width * s)), "h": max(1, round(a.image.height * s)),
           "decoded": None, "mask": None, "original": None, "rects": []}
    try:
        bs = bitstream.read(e.bitstream_path)
        decoded = decode_bitstream(bs)
        pixels = reconstruct(decoded.pixels, decoded.base, decoded.mask)
        sec["decoded"] = _data_uri(pixels, s)
        sec["mask"] = _data_uri(decoded.mask.astype(np.uint8) * 255, s, "PNG")
        sec["problems"] = list(bs.problems)
    except (TaskcodecError, OSError) as exc:
        sec["problems"] = [str(exc)]
    try:
        sec["original"] = _data_uri(np.asarray(Image.open(a.image.path).convert("RGB")), s)
    except Exception:  # deleted or unreadable: the page says so
        pass
    for d in a.decisions:
        if d.box:
            x0, y0, x1, y1 = (v * s for v in d.box)
            sec["rects"].append({"x": round(x0, 1), "y": round(y0, 1), "w": round(x1 - x0, 1), "h": round(y1 - y0, 1),
                                 "colour": COLOURS[d.action], "tip": d.sentence, "label": d.label or d.class_name or ""})
    return sec


def write_html(audits: list[EncodingAudit], out_path: str | Path, title: str, intro: str = "",
               extras: dict[int, str] | None = None, overwrite: bool = False) -> Path:
    """The audit page (jinja2, everything escaped): per encoding the decoded picture with boxes coloured
    by decision, its transmitted-pixel mask and the original when it still exists, then every decision."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    from taskcodec.imageio import atomic_write_bytes

    env = Environment(loader=PackageLoader("taskcodec", "templates"), autoescape=select_autoescape(["j2", "html"]))
    doc = env.get_template("audit.html.j2").render(
        title=title, intro=intro, colours=COLOURS,
        sections=[_section(a, (extras or {}).get(a.encoding.id, "")) for a in audits])
    atomic_write_bytes(out_path, doc.encode(), overwrite)
    return Path(out_path)


__all__ = ["audit_json", "explain_target", "render_text", "write_html"]
