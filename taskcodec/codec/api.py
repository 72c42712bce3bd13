"""The codec library's interface types: what a caller hands an encoder, and what it gets back.

The codec stands on nothing above it in taskcodec (``taskcodec.errors`` aside): a caller's own
types (the policy's decisions, detections) are translated into these at the boundary
(``taskcodec.decisions.requests_for`` / ``settle``).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Callable, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
Action = Literal["transmit", "drop", "downgrade"]
GREY = 128  # what a decoder shows where nothing was sent (and the classical codec's residual zero)


class LayeredParams(BaseModel):
    """The settings every layered codec shares; a codec's ``Params`` adds its own."""

    quality: int = Field(default=60, ge=1, le=100, description="1-100, higher = better.")
    budget_bytes: int | None = Field(default=None, ge=1)
    quality_offset: dict[str, int] = Field(default_factory=lambda: {"high": 0, "medium": -10, "low": -20},
                                           description="Added to the quality per importance tier.")
    background: Literal["coarse", "none"] = "coarse"


class ObjectRequest(BaseModel):
    """A provisionally transmitted object, handed to the encoder in importance order."""

    object_index: int
    label: str
    box: Box
    importance: float
    tier: str


class ObjectOutcome(BaseModel):
    """What the encoder did with an ``ObjectRequest``."""

    object_index: int
    action: Action
    reason: str
    layer_index: int | None = None
    quality: int | None = None
    bytes: int | None = None
    numbers: dict[str, Any] = Field(default_factory=dict)


class DecodeResult:
    """What every codec's ``decode`` returns.

    ``pixels`` (H x W x 3 uint8), ``mask`` (H x W bool: where an object layer's own data was sent),
    ``layers`` (the layer entries used, base included) and ``base`` (the picture the base layer alone
    gives: what reconstruction starts from), which a codec may hand over as a function, computed on first
    use; ``latent`` is a learned codec's latent when asked for."""

    def __init__(self, pixels, mask, layers: list, base: "Any | Callable[[], Any]", latent: Any = None):
        self.pixels, self.mask, self.layers, self.latent = pixels, mask, layers, latent
        self._base = base

    @cached_property
    def base(self):
        return self._base() if callable(self._base) else self._base


class StreamRef(BaseModel):
    """Where a stream comes from, written into its header by every codec: the encoding reference the
    audit store knows it by (16 hex digits; a fresh one when None) and the policy that chose its
    layers (id, content hash, label list that the layers' label indexes point into, task)."""

    model_config = ConfigDict(frozen=True)

    encoding_uid: str | None = None
    policy_id: int | None = None
    policy_hash: str | None = None
    policy_labels: tuple[str, ...] | None = None
    task: str | None = None


class Codec(Protocol):
    """What a layered codec offers (a module or an object): ``taskcodec.codec.get_codec(name)`` returns one."""

    CODEC_ID: str
    CODEC_VERSION: str
    Params: type[BaseModel]

    def encode(self, pixels: Any, requests: list[ObjectRequest], params: Any, ref: StreamRef | None = None) -> Any:
        """Base layer plus one layer per request, in order; returns the bytes, header and outcomes."""

    def decode(self, bs: Any, max_objects: int | None = None) -> Any:
        """The base and the first ``max_objects`` object layers present (all when None)."""
