"""The stages, as plain functions with typed inputs and outputs.

    plan_task -> load -> ground_image -> encode_grounded (decide_objects -> encode_image) -> persist  (compress)
    read_bitstream -> decode_bitstream -> write_human / write_machine               (decode)

``taskcodec.flows`` composes them as Prefect tasks; the quick CLI commands
(plan, ground, why, a single decode) call them directly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


from taskcodec.domain.policy import TaskPolicy
from sqlalchemy.exc import OperationalError

from taskcodec.codec import bitstream, get_codec
from taskcodec.codec.api import StreamRef
from taskcodec.codec.layering import new_uid
from taskcodec.decisions import Decision, decide, requests_for, settle
from taskcodec.errors import BitstreamError, TaskcodecError
from taskcodec.imageio import LoadedImage, atomic_write_bytes, load_image
from taskcodec.settings import Settings, get_settings
from taskcodec.store import models as m
from taskcodec.store import repo
from taskcodec.store.db import session
from taskcodec.grounding import GroundingResult, get_backend, ground
from taskcodec.grounding.coverage import describe, likely_areas, require


# ---- compress --------------------------------------------------------------------------------

def plan_task(task: str, refresh: bool = False, settings: Settings | None = None) -> TaskPolicy:
    """The stored policy for ``task``: made by the task agent on a miss (or with ``refresh``), else cached."""
    from taskcodec.agents.graph import run_agent

    return run_agent(task, refresh=refresh, settings=settings)[0]


def load(path: str | Path, settings: Settings | None = None) -> LoadedImage:
    return load_image(path, max_pixels=(settings or get_settings()).max_image_pixels)


def _mode(uncovered: str | None) -> str:
    """What happens to labels the backend cannot detect: the argument, else ``TASKCODEC_UNCOVERED``."""
    return uncovered or get_settings().uncovered


def ground_image(image: LoadedImage, policy: TaskPolicy, spec: str | None = None,
                 uncovered: str | None = None) -> GroundingResult:
    """Find the policy's objects. Labels the backend cannot detect follow ``uncovered`` (default the
    setting): ``area`` adds detections of their likely area, ``fail`` raises, ``whole`` leaves them
    for ``encode_grounded`` (see ``grounding.coverage``)."""
    backend, mode = get_backend(spec or get_settings().grounding), _mode(uncovered)
    require(backend, policy, mode)
    g = ground(image.pixels, policy, backend)
    return likely_areas(g, policy, image.pixels) if mode == "area" else g


def check_coverage(policy: TaskPolicy, spec: str | None = None, uncovered: str | None = None) -> str | None:
    """Before any image: the warning for policy labels the backend cannot detect (None when it covers
    them all); raises ``CoverageError`` when there are some and ``uncovered`` is ``fail``."""
    backend, mode = get_backend(spec or get_settings().grounding), _mode(uncovered)
    labels = require(backend, policy, mode)
    return describe(backend.spec, labels, mode) if labels else None


def ground_report(path: str | Path, policy: TaskPolicy, spec: str | None, threshold: float) -> dict:
    """What ``taskcodec ground --json`` prints for one image: detections of policy labels >= threshold."""
    g = ground(load(path).pixels, policy, get_backend(spec or get_settings().grounding))  # the backend alone
    return {
        "image": str(path), "backend": g.backend, "threshold": threshold, "seconds": g.seconds,
        "ungroundable": list(g.ungroundable),
        "detections": [{"label": d.label, "class_name": d.class_name, "box": list(d.box), "score": d.score,
                        "match": d.match} for d in g.detections if d.label is not None and d.score >= threshold],
    }


def decide_objects(grounding: GroundingResult, policy: TaskPolicy, threshold: float | None = None) -> list[Decision]:
    return decide(grounding, policy, threshold, get_settings().recall_floor)


@dataclass
class Encoded:
    data: bytes
    header: bitstream.Header
    decisions: list[Decision]  # settled: every sentence written
    seconds: float


def encode_image(
    image: LoadedImage, decisions: list[Decision], policy: TaskPolicy, codec: str = "classical",
    quality: int = 60, budget_bytes: int | None = None, annotate: bool | None = None,
) -> Encoded:
    mod = get_codec(codec)
    params = mod.Params(quality=quality, budget_bytes=budget_bytes, quality_offset=dict(policy.rules.quality_offset),
                        background=policy.rules.background)
    ref = StreamRef(encoding_uid=new_uid(), policy_id=policy.policy_id, policy_hash=policy.content_hash(),
                    policy_labels=tuple(policy.label_names), task=policy.task)
    result = mod.encode(image.pixels, requests_for(decisions, policy.rules), params, ref)
    settled = settle(decisions, result.outcomes, result.base, budget_bytes)
    data = result.data
    if get_settings().annotate if annotate is None else annotate:
        data = bitstream.annotate(data, policy.task, policy.label_names)
    return _signed(Encoded(data, result.header, settled, result.seconds))


def encode_full(image: LoadedImage, codec: str = "classical", quality: int = 60,
                budget_bytes: int | None = None, why: list[Decision] | None = None) -> Encoded:
    """Whole-image mode: no task, no grounding; one decision records it (after ``why``, if given)."""
    mod = get_codec(codec)
    result = mod.encode(image.pixels, [], mod.Params(quality=quality, budget_bytes=budget_bytes, full=True),
                        StreamRef(encoding_uid=new_uid()))
    decisions = settle([*(why or []), Decision(action="transmit", reason="full_image", label="whole image")], [],
                       result.base, budget_bytes)
    return _signed(Encoded(result.data, result.header, decisions, result.seconds))


def encode_grounded(
    image: LoadedImage, grounding: GroundingResult, policy: TaskPolicy, codec: str = "classical", quality: int = 60,
    budget_bytes: int | None = None, threshold: float | None = None, uncovered: str | None = None,
    annotate: bool | None = None,
) -> Encoded:
    """Decide and encode; with ``uncovered='whole'`` and labels the backend cannot detect, the whole image.
    ``annotate`` (default: the setting) writes the task text and labels into the file as well."""
    decisions = decide_objects(grounding, policy, threshold)
    if grounding.ungroundable and _mode(uncovered) == "whole":
        why = [d.model_copy(update={"numbers": {**d.numbers, "uncovered": "whole"}})
               for d in decisions if d.reason == "ungroundable"]
        return encode_full(image, codec, quality, budget_bytes, why)
    return encode_image(image, decisions, policy, codec, quality, budget_bytes, annotate)


def write_bitstream(out_path: str | Path, data: bytes, overwrite: bool = False) -> Path:
    """Write a bitstream under a temporary name, then rename: a file appears only whole, and an existing
    file is replaced only with ``overwrite``."""
    atomic_write_bytes(out_path, data, overwrite)
    return Path(out_path)


def record(
    image: LoadedImage, policy: TaskPolicy | None, encoded: Encoded, out_path: str | Path, grounding: str,
    run_id: int | None = None, timings: dict | None = None, settings: Settings | None = None,
    archive_key: str | None = None,
) -> int:
    """Store an encoding with its layers and every decision, in one transaction."""
    out = Path(out_path)
    hd = encoded.header
    with session(settings) as s:
        image_id = repo.record_image(s, image.path, image.sha256, image.size_bytes, image.width, image.height)
        enc = m.Encoding(
            uid=hd.encoding_uid, image_id=image_id, policy_id=policy.policy_id if policy else None, run_id=run_id,
            codec=hd.codec, codec_version=hd.codec_version, settings=hd.settings, grounding=grounding,
            bitstream_path=str(out.resolve()), bitstream_sha256=hashlib.sha256(encoded.data).hexdigest(),
            bytes=len(encoded.data), bpp=round(8 * len(encoded.data) / (hd.width * hd.height), 5),
            timings=timings or {}, archive_key=archive_key,
        )
        layers = [m.Layer.from_entry(e) for e in hd.layers]
        decisions = [m.Decision(encoding_id=0, **{**d.model_dump(), "box": list(d.box) if d.box else None})
                     for d in encoded.decisions]
        return repo.record_encoding(s, enc, layers, decisions)


def persist(
    image: LoadedImage, policy: TaskPolicy | None, encoded: Encoded, out_path: str | Path, grounding: str,
    run_id: int | None = None, timings: dict | None = None, settings: Settings | None = None,
    overwrite: bool = False,
) -> int:
    """Write the bitstream, then record it: a row never points at a file that is not there."""
    write_bitstream(out_path, encoded.data, overwrite)
    return record(image, policy, encoded, out_path, grounding, run_id, timings, settings)


def output_names(paths: list[str], out_dir: str | Path) -> list[Path]:
    """``DIR/<stem>.tcb`` per input; repeated stems get ``-2``, ``-3``... in input order."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        stem = Path(p).stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(Path(out_dir) / (f"{stem}.tcb" if seen[stem] == 1 else f"{stem}-{seen[stem]}.tcb"))
    return names


# ---- decode ----------------------------------------------------------------------------------

def mac_key(settings: Settings | None = None) -> bytes | None:
    """The signing key (``TASKCODEC_MAC_KEY_FILE``), if one is set; at least 16 bytes."""
    path = (settings or get_settings()).mac_key_file
    if path is None:
        return None
    try:
        key = Path(path).expanduser().read_bytes().strip()
    except OSError as exc:
        raise TaskcodecError(f"TASKCODEC_MAC_KEY_FILE {path}: cannot read ({exc.strerror or exc})") from None
    if len(key) < 16:
        raise TaskcodecError(f"TASKCODEC_MAC_KEY_FILE {path}: a key needs at least 16 bytes")
    return key


def _signed(encoded: "Encoded") -> "Encoded":
    key = mac_key()
    if key is not None:
        encoded.data = bitstream.sign(encoded.data, key)
    return encoded


def read_bitstream(path: str | Path) -> bitstream.Bitstream:
    """Read a bitstream; with a MAC key set it must be signed with that key (tamper evidence). Label
    names and task text a v2 header leaves to the store are filled in from it (``with_names``)."""
    return with_names(bitstream.read(path, mac_key()))


def with_names(bs: bitstream.Bitstream, settings: Settings | None = None) -> bitstream.Bitstream:
    """``bs`` with its policy's label names and task text from the store, when the header names a policy
    the store holds (same id, same hash prefix) and does not carry them itself. A stream decodes
    without them: layers are then known by label index."""
    hd = bs.header
    if hd.policy_id is None or (hd.policy_labels is not None and hd.task is not None):
        return bs
    try:
        with session(settings) as s:
            policy = repo.get_policy(s, hd.policy_id)
    except (TaskcodecError, OperationalError):
        return bs
    if policy is None or not hd.policy_hash or not policy.content_hash().startswith(hd.policy_hash):
        return bs
    bs.header = bitstream.resolve(hd, policy.task, policy.label_names)
    return bs


def parse_layers(spec: str) -> int | None:
    """``all`` -> every layer, ``base`` -> base only, ``N`` -> base + first N object layers."""
    s = str(spec).strip().lower()
    if s == "all":
        return None
    if s == "base":
        return 0
    if s.isdigit():
        return int(s)
    raise TaskcodecError(f"--layers must be 'all', 'base' or a number of object layers, not {spec!r}")


def decode_bitstream(bs: bitstream.Bitstream, layers: str = "all"):
    """Decode, refusing first a header that declares more pixels than input images may have
    (``TASKCODEC_MAX_IMAGE_PIXELS``): nothing is allocated for it."""
    w, h = bs.header.width, bs.header.height
    limit = get_settings().max_image_pixels
    if w * h > limit:
        raise BitstreamError(f"header declares {w}x{h} = {w * h:,} pixels, over the limit of {limit:,} "
                             "(raise TASKCODEC_MAX_IMAGE_PIXELS to allow)")
    try:
        return get_codec(bs.header.codec).decode(bs, parse_layers(layers))
    except MemoryError:
        raise BitstreamError(f"{w}x{h} image does not fit in memory") from None


__all__ = [
    "Encoded", "check_coverage", "decode_bitstream", "decide_objects", "encode_grounded", "encode_image", "ground_image", "load",
    "output_names",
    "parse_layers", "persist", "plan_task", "read_bitstream", "record", "write_bitstream",
]
