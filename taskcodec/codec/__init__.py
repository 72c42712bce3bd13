"""Codecs: a bitstream container (``bitstream``) and layered encoders/decoders.

Each codec module offers ``CODEC_ID``, ``CODEC_VERSION``, a params model ``Params``,
``encode(pixels, requests, params, **header_fields) -> EncodeResult`` and
``decode(bitstream, max_objects) -> DecodeResult``.
"""

from __future__ import annotations

from types import ModuleType

from taskcodec.errors import TaskcodecError


CODECS = ("classical", "learned")


def get_codec(name: str) -> ModuleType:
    if name == "classical":
        from taskcodec.codec import classical

        return classical
    if name == "learned":
        from taskcodec.errors import require_extra

        require_extra("learned", "the learned codec", "torch", "compressai")
        from taskcodec.codec import learned

        return learned
    raise TaskcodecError(f"unknown codec {name!r}; available: {', '.join(CODECS)}")
