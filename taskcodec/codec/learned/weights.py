"""Loading the learned codec's weights: safetensors only, identified by their hash.

A weights file holds the model's parameters (no entropy-coder tables: those are
rebuilt by ``update()``) and metadata ``{"N", "M", "levels", "lambdas"}``. Its model
id, ``<name>@<first 12 hex of sha256>``, goes into every bitstream header; a decoder
refuses a stream made by other weights.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load, load_file, save_file

from taskcodec.codec.learned import floatpath
from taskcodec.codec.learned.model import LAMBDAS, GainedMeanScaleHyperprior, one_thread
from taskcodec.errors import TaskcodecError

SHIPPED = Path(__file__).parent / "weights" / "gmsh-n64-m192.safetensors"
# Buffers that update() recomputes from the parameters; never stored.
DERIVED = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")


def default_path() -> Path:
    from taskcodec.codec.learned.config import current

    return Path(current().weights or SHIPPED)


def save_weights(model: GainedMeanScaleHyperprior, path: str | Path, extra: dict | None = None) -> Path:
    """Write the parameters a decoder needs as safetensors (temp name, then rename)."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
               if not k.split(".")[-1] in DERIVED}
    meta = {"N": model.N, "M": model.M, "levels": model.levels, "lambdas": list(LAMBDAS[: model.levels]),
            **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"taskcodec": json.dumps(meta)})
    tmp.replace(path)
    return path


class LoadedModel:
    def __init__(self, model: GainedMeanScaleHyperprior, model_id: str, meta: dict, path: Path):
        self.model, self.model_id, self.meta, self.path = model, model_id, meta, path


def read_weights(p: Path, data: bytes | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of a weights file (or of its bytes ``data``), with a clear error for a
    damaged or foreign file."""
    try:
        data = p.read_bytes() if data is None else data
        tensors = load(data)
        # safetensors layout: 8-byte little-endian header length, then the JSON header
        header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
        meta = json.loads((header.get("__metadata__") or {}).get("taskcodec", "{}"))
    except Exception as exc:  # safetensors raises its own error type on a damaged file
        raise TaskcodecError(f"learned codec weights {p}: cannot be read as safetensors ({exc})") from None
    if not {"N", "M", "levels"} <= meta.keys():
        raise TaskcodecError(f"learned codec weights {p}: metadata lacks N, M and levels")
    return tensors, meta


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> LoadedModel:
    p = Path(path)
    data = p.read_bytes()  # read once: the tensors and the hash come from the same bytes
    tensors, meta = read_weights(p, data)
    model = GainedMeanScaleHyperprior(int(meta["N"]), int(meta["M"]), int(meta["levels"]))
    own = {k for k in model.state_dict() if k.split(".")[-1] not in DERIVED}
    if set(tensors) != own:
        missing, extra = sorted(own - set(tensors)), sorted(set(tensors) - own)
        raise TaskcodecError(f"learned codec weights {p}: tensors do not match the model "
                             f"(missing {missing[:3]}, unexpected {extra[:3]})")
    model.load_state_dict(tensors, strict=False)
    floatpath.check()  # the coder's tables below must come out the same on every machine
    with one_thread():
        model.update(force=True)
    model.eval()
    # g_a/g_s run channels-last (oneDNN's layout on CPU: ~13 % less time, measured on a 640x448
    # image); h_a/h_s keep the default layout, so h_s's float results, which both ends must
    # share, do not change
    model.g_a.to(memory_format=torch.channels_last)
    model.g_s.to(memory_format=torch.channels_last)
    digest = hashlib.sha256(data).hexdigest()[:12]
    return LoadedModel(model, f"{p.stem}@{digest}", meta, p)


def load_model(path: str | Path | None = None) -> LoadedModel:
    """The model from ``path`` (default: ``config.current().weights``, else the shipped weights), cached per
    file version."""
    p = Path(path) if path else default_path()
    if not p.is_file():
        raise TaskcodecError(f"learned codec weights {p} do not exist (set TASKCODEC_LEARNED_WEIGHTS, "
                             "or train them with `taskcodec train-codec`)")
    return _load(str(p.resolve()), p.stat().st_mtime)


def export_checkpoint(checkpoint: str | Path, path: str | Path, extra: dict | None = None) -> Path:
    """Weights from a training checkpoint (``train.py``'s format) for shipping."""
    tensors = load_file(str(checkpoint))
    with safe_open(str(checkpoint), "pt") as f:
        cfg = json.loads(f.metadata()["meta"])["config"]
    model = GainedMeanScaleHyperprior(cfg["N"], cfg["M"])
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    with torch.no_grad():
        return save_weights(model, path, extra)
