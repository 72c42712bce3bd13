"""What a parsed ``.tcb`` is, whatever the version that wrote it: the header, its layer table and the
payloads. ``format_v1`` (JSON header) and ``format_v2`` (compact binary header) read into these types;
the codecs, routes and the audit use nothing else. Limits every parser enforces live here too."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

MAGIC = b"TCB\x1a"
MAX_HEADER_BYTES = 1 << 20
MAX_LAYERS = 4096
MAX_SIDE = 65535
MAX_FILE_BYTES = 1 << 31
# Decoding allocates a few bytes per pixel, so the pixel count a header may declare is bounded by the
# bytes actually present: a forged 1 kB header cannot ask for a 65535x65535 canvas. Real streams sit far
# below this (a 640x480 photo at the lowest quality is ~500 bytes: ~600 pixels per byte).
MAX_PIXELS_PER_BYTE = 16384
MIN_PIXEL_ALLOWANCE = 1 << 22
FLAG_MAC = 1  # flags bit 0: a 32-byte HMAC-SHA256 trailer ends the file
MAC_BYTES = 32


class LayerEntry(BaseModel):
    """One row of the layer table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)
    kind: str = Field(pattern=r"^(base|object|background)$")
    label: str | None = None
    label_index: int | None = Field(default=None, ge=0)  # v2: index into the policy's labels (then extras)
    box: tuple[float, float, float, float] | None = None  # the detection box, pixels (v2: on the coding grid)
    importance: float | None = None
    quality: int | None = Field(default=None, ge=0, le=100)
    length: int = Field(ge=0, le=MAX_FILE_BYTES)
    # the payload's checksum: CRC32 in v1, CRC-16/CCITT in v2 (``format_v*.layer_crc``); "crc32" in v1 JSON
    crc: int = Field(ge=0, le=0xFFFFFFFF, validation_alias=AliasChoices("crc", "crc32"), serialization_alias="crc32")
    meta: dict[str, Any] = Field(default_factory=dict)  # codec-specific geometry


class Header(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    width: int = Field(ge=1, le=MAX_SIDE)
    height: int = Field(ge=1, le=MAX_SIDE)
    codec: str
    codec_version: str
    settings: dict[str, Any] = Field(default_factory=dict)
    encoding_uid: str
    policy_id: int | None = None
    policy_hash: str | None = None  # v2: the first 8 hex digits
    task: str | None = None  # v1 always; v2 only with an annotation chunk (or filled from the store)
    # The policy's label list, which v2 label indexes point into: known to the encoder and, when
    # the store has the policy, to the reader; carried in a v2 file only by its annotation chunk.
    policy_labels: tuple[str, ...] | None = None
    layers: tuple[LayerEntry, ...] = Field(max_length=MAX_LAYERS)


@dataclass
class Bitstream:
    header: Header
    payloads: list[bytes]  # the complete, CRC-verified prefix of the layer table
    problems: list[str] = field(default_factory=list)  # what is missing or corrupt after the prefix
    corrupt: bool = False  # a layer failed its CRC (damage), as opposed to a file cut short
    signed: bool = False  # flags bit 0: an HMAC-SHA256 trailer (checked by ``verify``, with the key)
    version: tuple[int, int] = (2, 0)  # the container's major and minor version
    header_bytes: int = 0  # bytes before the first payload: preamble, header, layer table, CRCs

    @property
    def complete(self) -> bool:
        return len(self.payloads) == len(self.header.layers)

    @property
    def layers(self) -> tuple[LayerEntry, ...]:
        return self.header.layers[: len(self.payloads)]


def layer_name(entry: LayerEntry) -> str:
    if entry.kind == "base":
        return entry.kind
    if entry.label is not None:
        return f"{entry.kind} '{entry.label}'"
    return f"{entry.kind} #{entry.label_index}" if entry.label_index is not None else entry.kind
