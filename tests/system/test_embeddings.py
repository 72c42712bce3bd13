import json
import numpy as np
import pytest

from taskcodec.domain.embeddings import TextEmbedder, default_model_dir, similarity

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


def test_the_data_dirs_cache_spares_a_command_loading_minilm(home):
    import subprocess
    import sys

    import numpy as np

    from taskcodec.domain import embeddings

    code = ("import json, sys; from taskcodec.domain import embeddings as e; v = e.embed_all(['car', 'licence plate']); "
            "print(json.dumps({'loaded': e.default_embedder.cache_info().currsize, 'v': v['car'][:4].tolist()}))")
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                                      check=True).stdout) for _ in range(2)]
    assert [r["loaded"] for r in runs] == [1, 0]  # the second process read the cache, not the model
    assert np.allclose(runs[0]["v"], runs[1]["v"])
    (cache,) = (home / "cache").glob("embeddings-*.npz")
    assert cache.stat().st_mode & 0o777 == 0o666 & ~embeddings_umask()
    cache.write_bytes(b"not a cache")  # damaged: ignored and rewritten, same answer
    third = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                                      check=True).stdout)
    assert third["loaded"] == 1 and np.allclose(third["v"], runs[0]["v"])
    assert embeddings.similarities("car", ["truck", "banana"])["truck"] > 0.5


def embeddings_umask() -> int:
    from taskcodec.imageio import _current_umask

    return _current_umask()
