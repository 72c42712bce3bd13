"""The ``learned`` codec: a variable-rate mean-scale hyperprior (CompressAI) whose latent
is written as separable region streams; see ``model.py`` for the model, ``codec.py``
for the layers, ``train.py`` for training and ``weights.py`` for the shipped weights."""

from taskcodec.codec.learned.codec import (
    CODEC_ID, CODEC_VERSION, DecodeResult, LearnedParams, Params, decode, encode, level_for,
)
from taskcodec.codec.learned.weights import load_model

__all__ = ["CODEC_ID", "CODEC_VERSION", "DecodeResult", "LearnedParams", "Params", "decode", "encode",
           "level_for", "load_model"]
