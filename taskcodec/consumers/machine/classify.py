"""``machine:classify``: an image classifier on the decoded image and on each transmitted object.

``--model`` is a TFLite classifier file (e.g. ../shared/models/mobilenet_v2_1.0_224_quant.tflite,
labels read from ``imagenet_labels.txt`` or ``<model>.labels.txt`` beside it) or a
transformers image-classification model (hub id or local folder).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from taskcodec.errors import TaskcodecError

TOP_K = 5


class TFLiteClassifier:
    def __init__(self, path: Path):
        from taskcodec.errors import require_extra

        require_extra("tflite", "machine:classify with a .tflite model", "ai_edge_litert")
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=str(path), num_threads=2)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        _, self.h, self.w, _ = self.inp["shape"]
        labels = next((p for p in (path.with_suffix(".labels.txt"), path.parent / "imagenet_labels.txt") if p.is_file()),
                      None)
        self.labels = labels.read_text().splitlines() if labels else None
        self.name = f"tflite:{path}"
        self._lock = threading.Lock()

    def __call__(self, rgb: np.ndarray) -> list[dict]:
        x = cv2.resize(rgb, (int(self.w), int(self.h)), interpolation=cv2.INTER_AREA)[None]
        if self.inp["dtype"] != np.uint8:
            x = x.astype(np.float32) / 127.5 - 1.0
        with self._lock:
            self.interp.set_tensor(self.inp["index"], x.astype(self.inp["dtype"]))
            self.interp.invoke()
            y = self.interp.get_tensor(self.out["index"])[0].astype(np.float32)
        scale, zero = self.out.get("quantization", (0.0, 0))
        if scale:
            y = (y - zero) * scale
        top = np.argsort(-y)[:TOP_K]
        return [{"index": int(i), "label": self.labels[i] if self.labels and i < len(self.labels) else str(int(i)),
                 "score": round(float(y[i]), 5)} for i in top]


class HFClassifier:
    def __init__(self, src: str):
        from taskcodec.errors import require_extra

        require_extra("gdino", "machine:classify with a transformers model", "torch", "transformers")
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        local = Path(src).expanduser().is_dir()
        self.processor = AutoImageProcessor.from_pretrained(src, local_files_only=local)
        self.model = AutoModelForImageClassification.from_pretrained(src, local_files_only=local).eval()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device)
        self.name = f"transformers:{src}"

    def __call__(self, rgb: np.ndarray) -> list[dict]:
        import torch

        with torch.inference_mode():
            inputs = self.processor(images=np.array(rgb), return_tensors="pt").to(self.device)
            probs = self.model(**inputs).logits.softmax(-1)[0].float().cpu().numpy()
        top = np.argsort(-probs)[:TOP_K]
        names = self.model.config.id2label
        return [{"index": int(i), "label": names.get(int(i), str(int(i))), "score": round(float(probs[i]), 5)}
                for i in top]


@lru_cache(maxsize=4)
def load_classifier(model: str):
    p = Path(model).expanduser()
    if p.suffix == ".tflite":
        if not p.is_file():
            raise TaskcodecError(f"classifier model {p} does not exist")
        return TFLiteClassifier(p)
    try:
        return HFClassifier(model)
    except Exception as exc:
        raise TaskcodecError(f"could not load an image classifier from {model!r} "
                             f"({type(exc).__name__}: {str(exc)[:200]})") from None


def run(decoded, bs, options: dict) -> dict:
    model = options.get("model")
    if not model:
        from taskcodec.settings import get_settings

        default = get_settings().shared_path / "models" / "mobilenet_v2_1.0_224_quant.tflite"
        if not default.is_file():
            raise TaskcodecError("--model is required: a .tflite classifier or a transformers model id/folder")
        model = str(default)
    clf = load_classifier(model)
    objects = []
    for e in decoded.layers:
        if e.kind != "object" or not e.box:
            continue
        x0, y0, x1, y1 = (int(round(v)) for v in e.box)
        crop = decoded.pixels[max(0, y0):max(y0 + 1, y1), max(0, x0):max(x0 + 1, x1)]
        objects.append({"layer": e.index, "label": e.label, "box": list(e.box), "top": clf(crop)})
    return {"tool": "classify", "model": clf.name, "image": clf(decoded.pixels), "objects": objects}
