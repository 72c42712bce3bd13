"""Encode/decode one raster (a layer's pixels): raw AV1 (SVT-AV1 / dav1d through PyAV, no container),
or Pillow's AVIF, WebP or JPEG (v1 streams)."""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from taskcodec.codec.av1 import decode_av1, encode_av1
from taskcodec.errors import BitstreamError

FORMATS = {"avif": "AVIF", "webp": "WEBP", "jpeg": "JPEG", "av1": "AV1"}


def encode_raster(pixels: np.ndarray, fmt: str, quality: int, bare: bool = False) -> bytes:
    """``bare``: AV1 payloads leave out the sequence headers a decoder rebuilds (``av1_obu``)."""
    if fmt == "av1":
        return encode_av1(pixels, quality, bare)
    buf = io.BytesIO()
    img = Image.fromarray(np.ascontiguousarray(pixels))
    q = int(min(100, max(1, quality)))
    if fmt == "avif":
        img.save(buf, "AVIF", quality=q, speed=6)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=q, method=4)
    elif fmt == "jpeg":
        img.save(buf, "JPEG", quality=q, optimize=True)
    else:
        raise ValueError(f"unknown raster format {fmt!r}")
    return buf.getvalue()


def decode_raster(data: bytes, fmt: str, size: tuple[int, int], what: str, bare: bool = False) -> np.ndarray:
    """Decode a layer raster, refusing anything but the declared format and size (checked before decoding)."""
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise BitstreamError(f"{what}: unknown raster format {fmt!r}")
    if fmt == "av1":
        return decode_av1(data, size, what, bare)
    w, h = size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[FORMATS[fmt]])
            if img.size != (w, h):
                raise BitstreamError(f"{what}: payload is {img.size[0]}x{img.size[1]}, the layer table says {w}x{h}")
            img.load()
    except BitstreamError:
        raise
    except UnidentifiedImageError:
        raise BitstreamError(f"{what}: payload is not a {FORMATS[fmt]} image, as the layer table says") from None
    except Exception as exc:  # Pillow raises many types on damaged data
        raise BitstreamError(f"{what}: payload does not decode ({exc})") from None
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


ENLARGE = {"cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


def _shrink_lanczos(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pillow's antialiased Lanczos-3: 8-bit RGB directly, anything else plane by plane in 32-bit float."""
    if pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3:
        return np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).resize((width, height), Image.LANCZOS))
    planes = pixels.reshape(*pixels.shape[:2], -1).astype(np.float32)
    out = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c]), "F")
                               .resize((width, height), Image.LANCZOS)) for c in range(planes.shape[2])], -1)
    if pixels.dtype == np.uint8:
        out = np.clip(np.rint(out), 0, 255)
    return out.astype(pixels.dtype).reshape(height, width, *pixels.shape[2:])


def resize(pixels: np.ndarray, width: int, height: int, enlarge: str = "cubic", shrink: str = "area") -> np.ndarray:
    """``shrink`` (OpenCV's area filter, or ``lanczos``: Pillow's antialiased Lanczos-3) to shrink,
    ``enlarge`` (bicubic or Lanczos-4, OpenCV's) to enlarge; identity when the size already matches."""
    h, w = pixels.shape[:2]
    if (w, h) == (width, height):
        return pixels
    if width * height < w * h:
        if shrink == "lanczos":
            return _shrink_lanczos(pixels, width, height)
        return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.resize(pixels, (width, height), interpolation=ENLARGE[enlarge])
