"""What every layered codec shares: header fields, object rects, quality clamping, a budget-aware
layer writer and the transmit / downgrade / drop rule for object layers."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from taskcodec.codec.bitstream import Header, LayerEntry, packed_size
from taskcodec.codec.api import ObjectOutcome, ObjectRequest, StreamRef
from taskcodec.errors import BitstreamError


def expand(box, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    m = max(4.0, 0.1 * max(x1 - x0, y1 - y0))
    return (max(0, math.floor(x0 - m)), max(0, math.floor(y0 - m)),
            min(width, math.ceil(x1 + m)), min(height, math.ceil(y1 + m)))


def clamp_quality(q: int) -> int:
    return int(min(100, max(1, q)))


@dataclass
class EncodeResult:
    data: bytes
    header: Header
    outcomes: list[ObjectOutcome]
    base: dict[str, Any] | None  # {"quality", "bytes", "scale"} of layer 0
    seconds: float


class Writer:
    """Accumulates layers and answers 'would this one still fit the budget?'."""

    def __init__(self, base_fields: dict[str, Any], budget: int | None):
        self.fields = base_fields
        self.budget = budget
        self.entries: list[LayerEntry] = []
        self.payloads: list[bytes] = []

    def header(self, entries) -> Header:
        return Header(layers=tuple(entries), **self.fields)

    def size_with(self, entry: LayerEntry, payload: bytes) -> int:
        return packed_size(self.header([*self.entries, entry]), [*self.payloads, payload])

    def needed(self, entry: LayerEntry, payload: bytes) -> int:
        """Bytes this layer would add to the file (payload and its layer-table row)."""
        return self.size_with(entry, payload) - packed_size(self.header(self.entries), self.payloads)

    def left(self) -> int:
        return (self.budget or 0) - packed_size(self.header(self.entries), self.payloads)

    def fits(self, entry: LayerEntry, payload: bytes) -> bool:
        return self.budget is None or self.size_with(entry, payload) <= self.budget

    def add(self, entry: LayerEntry, payload: bytes) -> None:
        self.entries.append(entry)
        self.payloads.append(payload)


DOWNGRADE = 25  # quality points a layer loses when it does not fit the budget


def header_fields(codec: str, version: str, width: int, height: int, settings: dict[str, Any],
                  ref: StreamRef | None) -> dict[str, Any]:
    """Header fields every codec writes (all but the layer table). The encoding reference is 16 hex
    digits (8 bytes in a v2 header); task and labels stay in the store unless the file is annotated."""
    ref = ref or StreamRef()
    return dict(width=width, height=height, codec=codec, codec_version=version, settings=settings,
                **{**ref.model_dump(), "encoding_uid": ref.encoding_uid or new_uid()})


def check_codec(header: Header, codec: str, reads: tuple[str, ...]) -> None:
    """Refuse a stream another codec, or a version of this one that this build cannot read, wrote."""
    if header.codec != codec:
        raise BitstreamError(f"bitstream was written by codec {header.codec!r}, not {codec!r}")
    if header.codec_version not in reads:
        raise BitstreamError(f"bitstream codec version {header.codec_version!r} is not supported (this build: "
                             f"{', '.join(reads)})")


def new_uid() -> str:
    return uuid.uuid4().hex[:16]


def covered(req: ObjectRequest, owners: np.ndarray, writer: Writer) -> ObjectOutcome:
    """The drop of an object whose region earlier layers already own (``owners``: their layer indexes)."""
    by = int(np.bincount(owners.ravel()).argmax())
    return ObjectOutcome(object_index=req.object_index, action="drop", reason="covered",
                         numbers={"covered_by": by, "covered_by_label": writer.entries[by].label})


def place(writer: Writer, req: ObjectRequest, quality: int,
          build: Callable[[int, bool], tuple[LayerEntry, bytes, dict[str, Any]]]) -> ObjectOutcome:
    """Add an object layer within the budget: as built at ``quality``; else downgraded by DOWNGRADE
    quality points (``build(q, True)``); else dropped. Each outcome carries the numbers behind it."""
    entry, payload, numbers = build(quality, False)
    action, reason = "transmit", "in_policy"
    if not writer.fits(entry, payload):
        needed, left = writer.needed(entry, payload), writer.left()
        q2 = clamp_quality(quality - DOWNGRADE)
        entry, payload, numbers2 = build(q2, True)
        numbers = {"wanted_quality": quality, "needed": needed, "left": left, **numbers2}
        if not writer.fits(entry, payload):
            numbers["needed"] = writer.needed(entry, payload)
            return ObjectOutcome(object_index=req.object_index, action="drop", reason="budget_exhausted",
                                 numbers=numbers)
        quality, action, reason = q2, "downgrade", "budget_downgrade"
    writer.add(entry, payload)
    return ObjectOutcome(object_index=req.object_index, action=action, reason=reason, layer_index=entry.index,
                         quality=quality, bytes=len(payload), numbers=numbers)
