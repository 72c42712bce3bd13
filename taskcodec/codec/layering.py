"""What every layered codec shares: object rects, quality clamping, a budget-aware layer writer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from taskcodec.codec.bitstream import Header, LayerEntry, packed_size
from taskcodec.decisions import ObjectOutcome


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
