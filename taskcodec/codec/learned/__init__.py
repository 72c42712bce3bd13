"""The ``learned`` codec: a variable-rate mean-scale hyperprior (CompressAI) whose latent
is written as separable region streams; see ``model.py`` for the model (its region coding included), ``streams.py``
for the layers, ``train.py`` for training and ``weights.py`` for the shipped weights.

The codec's names are loaded on first use (PEP 562), so that training (``train.py``) needs
only torch, CompressAI and safetensors, not the bitstream and policy layers. Importing the package
pins MKL's float path (``floatpath``), so streams decode on any processor."""

from __future__ import annotations

import importlib

from taskcodec.codec.learned import floatpath

floatpath.pin()  # before MKL's first call in this process: see floatpath.py

_CODEC = {"CODEC_ID", "CODEC_VERSION", "DecodeResult", "LearnedParams", "Params", "decode", "encode", "level_for"}
__all__ = sorted(_CODEC | {"load_model"})


def __getattr__(name: str):
    if name in _CODEC:
        return getattr(importlib.import_module("taskcodec.codec.learned.streams"), name)
    if name == "load_model":
        return importlib.import_module("taskcodec.codec.learned.weights").load_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
