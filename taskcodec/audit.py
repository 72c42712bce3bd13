"""The audit: why every candidate object was or was not transmitted.

``explain_target`` answers ``taskcodec why FILE.tcb|IMAGE`` from the store;
``render_text`` / ``audit_json`` print it; ``write_html`` draws each image
with its boxes coloured by decision and the reasons beside it.
"""

from __future__ import annotations

import base64
import hashlib
import html
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
    from rich.table import Table

    e = a.encoding
    pol = a.policy
    console.print(f"[bold]{a.image.path}[/] -> {e.bitstream_path}")
    console.print(f"  {e.bytes:,} bytes, {e.bpp:.4f} bpp, codec {e.codec} v{e.codec_version}, "
                  f"quality {e.settings.get('quality')}, budget {e.settings.get('budget_bytes') or '-'}, "
                  f"grounding {e.grounding}")
    if pol is not None:
        console.print(f"  policy #{pol.policy_id} v{pol.version} ({pol.provenance.source}, {pol.provenance.model}) "
                      f"for task: {pol.task!r}")
    t = Table(show_lines=False)
    for col in ("action", "reason", "label", "score", "layer", "bytes", "why"):
        t.add_column(col, overflow="fold")
    for d in a.decisions:
        colour = {"transmit": "green", "downgrade": "yellow", "drop": "red"}[d.action]
        t.add_row(f"[{colour}]{d.action}[/]", d.reason, d.label or d.class_name or "",
                  "" if d.score is None else f"{d.score:.2f}", "" if d.layer_index is None else str(d.layer_index),
                  "" if d.bytes is None else f"{d.bytes:,}", d.sentence)
    console.print(t)
    for d in _decodes(e.uid):
        extra = ", ".join(f"{k} {d[k]}" for k in ("model", "steps", "seed") if k in d)
        console.print(f"  decoded as {d['route']}: {d['output']}" + (f" (mask {d['mask']})" if d["mask"] else "")
                      + (f"; {extra}" if extra else ""))


def _thumbnail_uri(path: str, max_side: int = 640) -> tuple[str, float] | None:
    try:
        img = Image.open(path).convert("RGB")
    except Exception:
        return None
    s = min(1.0, max_side / max(img.size))
    if s < 1.0:
        img = img.resize((round(img.width * s), round(img.height * s)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode(), s


def html_section(a: EncodingAudit, extra: str = "") -> str:
    thumb = _thumbnail_uri(a.image.path)
    e = a.encoding
    parts = [f"<section><h2>{html.escape(Path(a.image.path).name)}</h2>",
             f"<p>{e.bytes:,} bytes ({e.bpp:.4f} bpp), {len(a.layers)} layers; grounding <code>"
             f"{html.escape(str(e.grounding))}</code>. {extra}</p>"]
    if thumb is not None:
        uri, s = thumb
        w, h = round(a.image.width * s), round(a.image.height * s)
        rects = []
        for d in a.decisions:
            if not d.box:
                continue
            x0, y0, x1, y1 = (v * s for v in d.box)
            c = COLOURS[d.action]
            tip = html.escape(d.sentence)
            rects.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" '
                         f'fill="none" stroke="{c}" stroke-width="3"><title>{tip}</title></rect>'
                         f'<text x="{x0 + 3:.1f}" y="{y0 + 15:.1f}" fill="{c}" font-size="14" font-weight="bold" '
                         f'font-family="sans-serif" stroke="white" stroke-width="3" paint-order="stroke">'
                         f'{html.escape(d.label or d.class_name or "")}</text>')
        parts.append(f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}"><image href="{uri}" width="{w}" '
                     f'height="{h}"/>{"".join(rects)}</svg>')
    parts.append("<table><tr><th>action</th><th>reason</th><th>label</th><th>score</th><th>layer</th>"
                 "<th>bytes</th><th>why</th></tr>")
    for d in a.decisions:
        parts.append(
            f'<tr><td style="color:{COLOURS[d.action]}"><b>{d.action}</b></td><td>{d.reason}</td>'
            f"<td>{html.escape(d.label or d.class_name or '')}</td>"
            f"<td>{'' if d.score is None else f'{d.score:.2f}'}</td>"
            f"<td>{'' if d.layer_index is None else d.layer_index}</td>"
            f"<td>{'' if d.bytes is None else f'{d.bytes:,}'}</td><td>{html.escape(d.sentence)}</td></tr>")
    parts.append("</table></section>")
    return "\n".join(parts)


def write_html(audits: list[EncodingAudit], out_path: str | Path, title: str, intro: str = "",
               extras: dict[int, str] | None = None) -> Path:
    from taskcodec.imageio import atomic_write_bytes

    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
             "vertical-align:top;font-size:14px}section{margin-bottom:3em}")
    legend = " ".join(f'<span style="color:{c}"><b>{k}</b></span>' for k, c in COLOURS.items())
    body = "\n".join(html_section(a, (extras or {}).get(a.encoding.id, "")) for a in audits)
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1><p>{intro}</p>"
           f"<p>Boxes: {legend} (hover a box for its reason).</p>{body}</body></html>")
    atomic_write_bytes(out_path, doc.encode())
    return Path(out_path)


__all__ = ["audit_json", "explain_target", "render_text", "write_html"]
