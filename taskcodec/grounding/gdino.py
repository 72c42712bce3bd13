"""``grounding-dino[:MODEL]``: open-vocabulary grounding with transformers' Grounding DINO.

MODEL is a hub id (default ``IDEA-Research/grounding-dino-tiny``) or a local folder
saved with ``save_pretrained``. The policy's labels become prompts of the form
``"person . car . traffic light ."``, split into chunks that fit the text
encoder's ``max_text_len`` (256 tokens). For each chunk:

    1. tokenize the prompt, and locate each label's token span (offset mapping)
    2. run the model: per query a box (cx, cy, w, h in [0, 1]) and token logits
    3. score(query, label) = max sigmoid logit over the label's tokens;
       each query keeps its best label, and queries under ``box_threshold`` go
    4. boxes to pixels of the image given; results of all chunks are merged
       by same-label NMS in ``ground``

Runs on CUDA when available, else CPU.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from taskcodec.errors import GroundingSpecError
from taskcodec.grounding.base import RawDetection

DEFAULT_MODEL = "IDEA-Research/grounding-dino-tiny"


HUB_PROBE_S = 3.0  # how long to wait for the hub before saying it cannot be reached


def _hub_reachable(timeout: float = HUB_PROBE_S) -> bool:
    """One TCP connection to the hub's host (``HF_ENDPOINT``), instead of the hub client's minutes of retries."""
    import os
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        return True
    except OSError:
        return False


def _load(src: str, processor_cls, model_cls):
    """A local folder; else the hub cache; else the hub, if it answers within seconds (not with HF_HUB_OFFLINE)."""
    import os

    if Path(src).expanduser().is_dir():
        path = str(Path(src).expanduser())
        return processor_cls.from_pretrained(path, local_files_only=True), \
            model_cls.from_pretrained(path, local_files_only=True).eval()
    try:
        return processor_cls.from_pretrained(src, local_files_only=True), \
            model_cls.from_pretrained(src, local_files_only=True).eval()
    except Exception:  # not in the local hub cache
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline or not _hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else f"the hub did not answer within {HUB_PROBE_S:g} s"
        raise GroundingSpecError(
            f"Grounding DINO {src!r} is not in the local cache and {why}; download it where there is a network "
            "(save_pretrained) and give its folder: grounding-dino:/path/to/model (or TASKCODEC_GROUNDING)")
    return processor_cls.from_pretrained(src), model_cls.from_pretrained(src).eval()


class GroundingDinoBackend:
    open_vocabulary = True
    max_side = 1333  # the processor's longest edge: larger photos are shrunk first, boxes scaled back
    merge_iou = 0.5

    def __init__(self, model: str | None = None, box_threshold: float = 0.2, device: str | None = None):
        from taskcodec.errors import require_extra

        require_extra("gdino", "Grounding DINO", "torch", "transformers")
        import torch
        from transformers import AutoProcessor, GroundingDinoForObjectDetection

        src = model or DEFAULT_MODEL
        try:
            self.processor, self.model = _load(src, AutoProcessor, GroundingDinoForObjectDetection)
        except GroundingSpecError:
            raise
        except Exception as exc:
            raise GroundingSpecError(
                f"could not load Grounding DINO from {src!r} ({type(exc).__name__}: {str(exc)[:200]}); "
                "give a local folder saved with save_pretrained: grounding-dino:/path/to/model"
            ) from None
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        self.spec = f"grounding-dino:{src}"
        self.box_threshold = box_threshold
        self.max_tokens = int(getattr(self.model.config, "max_text_len", 256))
        self._lock = threading.Lock()  # one forward at a time per model

    def class_map(self) -> dict[str, str]:
        return {}  # open vocabulary: every policy label is its own class (see label_map)

    def chunks(self, labels: list[str]) -> list[list[str]]:
        """Split labels into prompts whose token count fits the text encoder."""
        tok = self.processor.tokenizer
        out: list[list[str]] = [[]]
        used = 2  # [CLS] and [SEP]
        for label in labels:
            cost = len(tok(label, add_special_tokens=False).input_ids) + 1  # the label and its " ."
            if cost + 2 > self.max_tokens:
                raise GroundingSpecError(f"label {label!r} alone is longer than the text encoder's {self.max_tokens} tokens")
            if used + cost > self.max_tokens and out[-1]:
                out.append([])
                used = 2
            out[-1].append(label)
            used += cost
        return [c for c in out if c]

    def _spans(self, prompt: str, labels: list[str], offsets: list[tuple[int, int]]) -> list[list[int]]:
        spans, pos = [], 0
        for label in labels:
            start = prompt.index(label, pos)
            end = start + len(label)
            spans.append([i for i, (a, b) in enumerate(offsets) if b > a and a >= start and b <= end])
            pos = end
        return spans

    def detect(self, pixels: np.ndarray, labels: list[str] | None = None,
               classes: set[str] | None = None) -> list[RawDetection]:
        import torch

        if not labels:
            return []
        h, w = pixels.shape[:2]
        out: list[RawDetection] = []
        for chunk in self.chunks(list(labels)):
            prompt = " . ".join(chunk) + " ."
            offsets = self.processor.tokenizer(prompt, return_offsets_mapping=True).offset_mapping
            spans = self._spans(prompt, chunk, offsets)
            inputs = self.processor(images=np.array(pixels), text=prompt, return_tensors="pt").to(self.device)
            with self._lock, torch.inference_mode():
                res = self.model(**inputs)
            probs = res.logits.sigmoid()[0].float().cpu().numpy()  # queries x tokens
            boxes = res.pred_boxes[0].float().cpu().numpy()
            per_label = np.stack([probs[:, s].max(1) if s else np.zeros(len(probs)) for s in spans], axis=1)
            best = per_label.argmax(1)
            score = per_label[np.arange(len(best)), best]
            for q in np.nonzero(score >= self.box_threshold)[0]:
                cx, cy, bw, bh = boxes[q]
                box = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
                out.append(RawDetection(class_name=chunk[best[q]], box=tuple(float(v) for v in box),
                                        score=float(score[q]), raw_score=float(score[q])))
        return out
