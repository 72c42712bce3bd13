import numpy as np
import pytest

from taskcodec.tools.embeddings import TextEmbedder, default_model_dir, similarity

TEXTS = ["a person crossing the street", "automobile", "count vehicles and people at this crossing", "x"]


def test_numpy_minilm_matches_transformers_on_the_same_weights():
    torch = pytest.importorskip("torch")
    from transformers import AutoModel, AutoTokenizer

    d = default_model_dir()
    tok = AutoTokenizer.from_pretrained(str(d), local_files_only=True)
    model = AutoModel.from_pretrained(str(d), local_files_only=True).eval()
    with torch.inference_mode():
        b = tok(TEXTS, padding=True, return_tensors="pt")
        h = model(**b).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).float()
        ref = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy()
    ours = TextEmbedder.from_pretrained(d).encode(TEXTS)
    assert np.abs(ours - ref).max() < 1e-4


def test_similarity_orders_meanings():
    assert similarity("automobile", "car") > similarity("automobile", "banana") + 0.3
    assert abs(similarity("dog", "dog") - 1.0) < 1e-5
