"""``onnx:PATH``: closed-vocabulary COCO-80 detectors through onnxruntime on the CPU.

Three output formats are recognised from the model's outputs (I/O facts in
../shared/README.md):

| format  | input                                                  | output                                              |
|---------|--------------------------------------------------------|-----------------------------------------------------|
| YOLOX   | BGR 0-255, letterbox top-left, pad 114                 | 1 x A x 85: dx, dy, log w, log h, objectness, 80 cls |
| NanoDet | BGR, (x - mean) / std, letterbox centred, pad 0        | per stride: 80 class scores; 4 x 8 DFL bins         |
| YOLOv8  | RGB 0-1, letterbox centred, pad 114                    | 1 x 84 x A: cx, cy, w, h, 80 class scores           |

Each anchor keeps its best class (score = objectness x class score for YOLOX),
candidates under ``min_score`` are discarded, then class-aware NMS (IoU 0.65)
keeps at most ``max_det`` boxes — the evaluation protocol of the YOLOX repository.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from taskcodec.errors import GroundingSpecError
from taskcodec.grounding.base import RawDetection

COCO80 = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)
NANODET_MEAN = np.array([103.53, 116.28, 123.675], np.float32)
NANODET_STD = np.array([57.375, 57.12, 58.395], np.float32)


def _grid(size: int, stride: int) -> np.ndarray:
    n = size // stride
    ys, xs = np.mgrid[0:n, 0:n]
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


def letterbox(rgb: np.ndarray, size: int, centred: bool, pad: int = 114) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Fit ``rgb`` into a size x size canvas keeping its aspect ratio; returns (canvas, scale, offset)."""
    h, w = rgb.shape[:2]
    r = min(size / h, size / w)
    nw, nh = max(1, int(round(w * r))), max(1, int(round(h * r)))  # a 20000x10 strip keeps one row
    canvas = np.full((size, size, 3), pad, np.uint8)
    dx, dy = ((size - nw) // 2, (size - nh) // 2) if centred else (0, 0)
    canvas[dy:dy + nh, dx:dx + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas, r, (dx, dy)


def decode_yolov8(out: np.ndarray, size: int, r: float, offset: tuple[int, int]):
    """A x 84 rows of (cx, cy, w, h, 80 class scores) -> boxes in original pixels, scores, classes."""
    xywh = out[:, :4] * (size if out[:, :4].max() <= 2.0 else 1.0)  # some exports give 0-1 coordinates
    cls = out[:, 4:].argmax(1)
    scores = out[np.arange(len(out)), 4 + cls]
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    dx, dy = offset
    return (boxes - np.array([dx, dy, dx, dy], np.float32)) / r, scores, cls


def finish(boxes, scores, cls, w: int, h: int, min_score: float, iou: float, max_det: int) -> list[RawDetection]:
    """Score floor, clip to the image, class-aware NMS, best first."""
    keep_mask = scores >= min_score
    boxes, scores, cls = boxes[keep_mask], scores[keep_mask], cls[keep_mask]
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    keep = _nms(boxes, scores, cls, iou, max_det)
    return [RawDetection(class_name=COCO80[int(cls[i])], box=tuple(float(v) for v in boxes[i]),
                         score=float(scores[i]), raw_score=float(scores[i])) for i in keep]


def _nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float, max_det: int) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0, dtype=int)
    offset = classes[:, None].astype(np.float32) * 8192.0  # class-aware: shift each class apart
    b = boxes + offset
    keep = cv2.dnn.NMSBoxes([[float(x0), float(y0), float(x1 - x0), float(y1 - y0)] for x0, y0, x1, y1 in b],
                            scores.astype(float).tolist(), 0.0, iou, top_k=max_det)
    keep = np.asarray(keep, dtype=int).ravel()
    return keep[np.argsort(-scores[keep], kind="stable")][:max_det]


def onnx_session(path: Path, threads: int | None = None):
    """A CPU onnxruntime session for ``path``, or a ``GroundingSpecError`` naming the file."""
    if not path.is_file():
        raise GroundingSpecError(f"onnx model file {path} does not exist")
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a dependency
        raise GroundingSpecError(f"onnxruntime is not installed ({exc})") from None
    ort.set_default_logger_severity(3)  # the shipped models trigger hundreds of harmless warnings
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise GroundingSpecError(f"{path}: not a loadable ONNX model ({exc})") from None


class OnnxDetector:
    """A COCO-80 ONNX detector; thread-safe (onnxruntime sessions are)."""

    max_side = None  # the model's own letterbox shrinks any image; boxes return in original pixels
    open_vocabulary = False
    merge_iou = 0.65  # same-label NMS after mapping (classes mapped to one label are merged)

    def __init__(self, path: str, min_score: float = 0.01, iou: float = 0.65, max_det: int = 100,
                 threads: int | None = None, spec: str | None = None):
        p = Path(path).expanduser()
        self.session = onnx_session(p, threads)
        self.spec = spec or f"onnx:{p}"
        self.min_score, self.iou, self.max_det = min_score, iou, max_det
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        self.nchw = shape[1] == 3
        self.size = int(shape[2] if self.nchw else shape[1])
        outs = self.session.get_outputs()
        if len(outs) == 6:
            self.format = "nanodet"
        elif outs[0].shape[-1] == 85:
            self.format = "yolox"
        elif outs[0].shape[1] == 84:
            self.format = "yolov8"
        else:
            raise GroundingSpecError(f"{p}: output shapes {[o.shape for o in outs]} match no known detector format")

    def class_map(self) -> dict[str, str]:
        return {c: c for c in COCO80}

    # -- preprocessing ------------------------------------------------------------------------

    def detect(self, pixels: np.ndarray, labels: list[str] | None = None,
               classes: set[str] | None = None) -> list[RawDetection]:
        h, w = pixels.shape[:2]
        if self.format == "yolox":
            img, r, _ = letterbox(pixels, self.size, centred=False)
            x = img[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)
            out = self.session.run(None, {self.input_name: x})[0][0]
            grids = np.concatenate([_grid(self.size, s) for s in (8, 16, 32)])
            strides = np.concatenate([np.full(len(_grid(self.size, s)), s, np.float32) for s in (8, 16, 32)])[:, None]
            xy = (out[:, :2] + grids) * strides
            wh = np.exp(out[:, 2:4]) * strides
            boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1) / r
            cls = out[:, 5:].argmax(1)
            scores = out[:, 4] * out[np.arange(len(out)), 5 + cls]
        elif self.format == "yolov8":
            img, r, offset = letterbox(pixels, self.size, centred=True)
            x = img.astype(np.float32)[None] / 255.0
            if self.nchw:
                x = x.transpose(0, 3, 1, 2)
            boxes, scores, cls = decode_yolov8(self.session.run(None, {self.input_name: x})[0][0].T, self.size, r, offset)
        else:
            boxes, scores, cls = self._nanodet(pixels)
        return finish(boxes, scores, cls, w, h, self.min_score, self.iou, self.max_det)

    def _nanodet(self, pixels: np.ndarray):
        img, r, (dx, dy) = letterbox(pixels, self.size, centred=True, pad=0)
        x = ((img[:, :, ::-1].astype(np.float32) - NANODET_MEAN) / NANODET_STD).transpose(2, 0, 1)[None]
        outs = self.session.run(None, {self.input_name: x})
        all_boxes, all_scores, all_cls = [], [], []
        for k, stride in enumerate((8, 16, 32)):
            cls_scores = outs[k][0]
            reg = outs[3 + k][0].reshape(-1, 4, 8)  # distances l, t, r, b as 8-bin distributions (DFL)
            reg = np.exp(reg - reg.max(-1, keepdims=True))
            dist = (reg / reg.sum(-1, keepdims=True) * np.arange(8, dtype=np.float32)).sum(-1) * stride
            centres = (_grid(self.size, stride) + 0.5) * stride  # the GFL head's priors sit mid-cell
            c = cls_scores.argmax(1)
            all_boxes.append(np.concatenate([centres - dist[:, :2], centres + dist[:, 2:]], axis=1))
            all_scores.append(cls_scores[np.arange(len(c)), c])
            all_cls.append(c)
        boxes = (np.concatenate(all_boxes) - np.array([dx, dy, dx, dy], np.float32)) / r
        return boxes, np.concatenate(all_scores), np.concatenate(all_cls)
