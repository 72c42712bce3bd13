"""Codecs: a bitstream container (``bitstream``) and layered encoders/decoders.

Each codec (``api.Codec``) offers ``CODEC_ID``, ``CODEC_VERSION``, a params model ``Params``,
``encode(pixels, requests, params, ref: StreamRef) -> EncodeResult`` and
``decode(bitstream, max_objects) -> DecodeResult``. ``REGISTRY`` maps a codec's name to the module
that implements it (and the optional packages it needs); ``register`` adds one.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from taskcodec.errors import TaskcodecError, require_extra

if TYPE_CHECKING:  # the package itself stays light: a training host imports only the learned model
    from taskcodec.codec.api import Codec


@dataclass(frozen=True)
class Registration:
    module: str
    extra: str | None = None  # the taskcodec extra that installs ``needs``
    needs: tuple[str, ...] = ()


REGISTRY: dict[str, Registration] = {
    "classical": Registration("taskcodec.codec.classical"),
    "learned": Registration("taskcodec.codec.learned", "learned", ("torch", "compressai")),
}
CODECS = tuple(REGISTRY)


def register(name: str, module: str, extra: str | None = None, needs: tuple[str, ...] = ()) -> None:
    """Make ``get_codec(name)`` return ``module`` (imported on first use)."""
    global CODECS
    REGISTRY[name] = Registration(module, extra, needs)
    CODECS = tuple(REGISTRY)


def get_codec(name: str) -> Codec:
    reg = REGISTRY.get(name)
    if reg is None:
        raise TaskcodecError(f"unknown codec {name!r}; available: {', '.join(REGISTRY)}")
    if reg.needs:
        require_extra(reg.extra or name, f"the {name} codec", *reg.needs)
    return importlib.import_module(reg.module)
