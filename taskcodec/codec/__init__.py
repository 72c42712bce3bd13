"""Codecs: a bitstream container (``bitstream``) and layered encoders/decoders.

Each codec module offers ``CODEC_ID``, ``CODEC_VERSION``, a params model,
``encode(pixels, requests, params, **header_fields) -> EncodeResult`` and
``decode(bitstream, max_objects) -> DecodeResult``.
"""

from __future__ import annotations

from types import ModuleType

from taskcodec.errors import TaskcodecError


def get_codec(name: str) -> ModuleType:
    if name == "classical":
        from taskcodec.codec import classical

        return classical
    raise TaskcodecError(f"unknown codec {name!r}; available: classical")
