"""The Python API: ``plan``, ``compress``, ``decode``, ``explain`` (also importable from ``taskcodec``).

The same stage functions as the CLI and the flows (``taskcodec.stages``), with no Prefect server:

    >>> import numpy as np, taskcodec
    >>> enc = taskcodec.compress(np.zeros((64, 96, 3), np.uint8), task="count cars and people", quality=40)
    >>> taskcodec.decode(enc.data).image.shape
    (64, 96, 3)

Images may be a path, the bytes of an image file, a PIL image or a NumPy array (H x W x 3 uint8 RGB,
or H x W grey). Every encoding is recorded in the store (``TASKCODEC_HOME``), so ``explain`` and
``taskcodec why`` can answer for it later.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np

from taskcodec import stages
from taskcodec.domain.policy import TaskPolicy
from taskcodec.errors import TaskcodecError
from taskcodec.imageio import LoadedImage, load_image, open_bounded, to_rgb8
from taskcodec.settings import get_settings

ImageLike = Union[str, os.PathLike, bytes, np.ndarray, Any]  # Any: a PIL.Image.Image
Encoded = stages.Encoded


@dataclass
class Decoded:
    """A decoded stream: the image, which pixels were transmitted, and the objects it carries."""

    image: np.ndarray  # H x W x 3 uint8 RGB
    mask: np.ndarray  # H x W bool, True where pixels were transmitted (not reconstructed)
    objects: list[dict] = field(default_factory=list)  # label, box [x0, y0, x1, y1], layer
    layers_used: int = 0
    problems: list[str] = field(default_factory=list)  # a truncated stream says what is missing


def _image(image: ImageLike) -> LoadedImage:
    import hashlib

    from PIL import Image

    limit = get_settings().max_image_pixels
    if isinstance(image, (str, os.PathLike)):
        return load_image(image, max_pixels=limit)
    if isinstance(image, bytes):
        pixels = to_rgb8(open_bounded(io.BytesIO(image), limit, "<bytes>"), "<bytes>")
        return LoadedImage("<bytes>", pixels, hashlib.sha256(image).hexdigest(), len(image))
    if isinstance(image, Image.Image):
        pixels = to_rgb8(image, "<PIL image>")
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
            raise TaskcodecError(f"<array>: expected an H x W x 3 (RGB) or H x W uint8 array, not "
                                 f"{image.dtype} {image.shape}")
        pixels = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image
    else:
        raise TaskcodecError(f"cannot read an image from a {type(image).__name__}: give a path, bytes, a PIL image "
                             "or a NumPy array")
    pixels = np.ascontiguousarray(pixels)
    return LoadedImage(f"<{type(image).__name__}>", pixels, hashlib.sha256(pixels.tobytes()).hexdigest(),
                       int(pixels.nbytes))


def plan(task: str, refresh: bool = False) -> TaskPolicy:
    """The task policy for ``task`` (labels and their importance): stored, or planned now."""
    return stages.plan_task(task, refresh=refresh)


def compress(image: ImageLike, task: str | None = None, *, quality: int = 60, budget_bytes: int | None = None,
             codec: str = "classical", grounding: str | None = None, uncovered: str | None = None,
             out: str | os.PathLike | None = None, overwrite: bool = False, annotate: bool | None = None) -> Encoded:
    """Compress ``image`` for ``task`` (``None``: the whole image, no task) into ``Encoded.data`` (the .tcb
    bytes) with every decision; with ``out``, also write the file (never replacing one unless ``overwrite``).
    ``annotate`` also writes the task text and labels into the file (default: ``TASKCODEC_ANNOTATE``).
    The encoding is recorded in the store either way."""
    img = _image(image)
    if task is None:
        enc = stages.encode_full(img, codec, quality, budget_bytes)
        backend, policy = "none", None
    else:
        policy = plan(task)
        warning = stages.check_coverage(policy, grounding, uncovered)  # raises with uncovered="fail"
        if warning:
            import warnings

            warnings.warn(warning, stacklevel=2)
        g = stages.ground_image(img, policy, grounding, uncovered)
        enc = stages.encode_grounded(img, g, policy, codec, quality, budget_bytes, uncovered=uncovered,
                                       annotate=annotate)
        backend = g.backend
    if out is not None:
        stages.persist(img, policy, enc, out, backend, overwrite=overwrite)
    else:
        stages.record(img, policy, enc, "(not written: returned to the caller)", backend)
    return enc


def decode(data: bytes | str | os.PathLike, *, layers: str = "all", reconstruct: bool = True) -> Decoded:
    """Decode a stream (its bytes or its path): ``layers`` is ``all``, ``base`` or a number of object
    layers; ``reconstruct`` fills the untransmitted area from the coarse base (the human route),
    otherwise it stays as the raw composite."""
    from taskcodec.codec import bitstream
    from taskcodec.decode_routes import decoded_objects

    bs = stages.with_names(bitstream.unpack(data)) if isinstance(data, bytes) else stages.read_bitstream(data)
    decoded = stages.decode_bitstream(bs, layers)
    pixels = decoded.pixels
    if reconstruct:
        from taskcodec.consumers.reconstruct.classical import reconstruct as classical

        pixels = classical(decoded.pixels, decoded.base, decoded.mask)
    return Decoded(pixels, decoded.mask, decoded_objects(decoded), len(decoded.layers), list(bs.problems))


def explain(data: bytes | str | os.PathLike) -> dict:
    """The audit of a stream (its bytes or its path) from the store: every candidate object, transmitted
    or not, why, and the bytes spent (what ``taskcodec why --json`` prints)."""
    from taskcodec.audit import audit_json, explain_target
    from taskcodec.codec import bitstream
    from taskcodec.store import repo
    from taskcodec.store.db import session

    if isinstance(data, bytes):
        header, _ = bitstream.parse_header(data)
        with session() as s:
            enc = repo.encoding_by_uid(s, header.encoding_uid)
            if enc is None:
                raise TaskcodecError(f"encoding {header.encoding_uid} is not in this store")
            return audit_json(repo.audit(s, enc))
    return audit_json(explain_target(Path(data))[0])


__all__ = ["Decoded", "Encoded", "compress", "decode", "explain", "plan"]
