"""Safe image loading: every failure becomes an ``ImageInputError`` naming the file."""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from taskcodec.errors import ImageInputError


@dataclass(frozen=True)
class LoadedImage:
    """An RGB image and the facts the store keeps about its file."""

    path: str
    pixels: np.ndarray  # H x W x 3, uint8, RGB
    sha256: str
    size_bytes: int

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def check_pixel_count(width: int, height: int, max_pixels: int, what: object) -> None:
    if width <= 0 or height <= 0:
        raise ImageInputError(what, f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageInputError(
            what,
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (possible decompression bomb; raise TASKCODEC_MAX_IMAGE_PIXELS to allow)",
        )


def open_bounded(data_or_path, max_pixels: int, what: object) -> Image.Image:
    """Open an image, refusing it before decoding if its header declares too many pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(data_or_path)
            check_pixel_count(img.width, img.height, max_pixels, what)
            img.load()
    except ImageInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError(what, f"refused as a possible decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageInputError(what, "not a recognised image format") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageInputError(what, f"cannot decode image ({exc})") from None
    return img


def load_image(path: str | os.PathLike, max_pixels: int = 100_000_000) -> LoadedImage:
    """Read an image file as RGB uint8, with EXIF orientation applied."""
    p = Path(path)
    if not p.exists():
        raise ImageInputError(p, "file does not exist")
    if not p.is_file():
        raise ImageInputError(p, "not a regular file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ImageInputError(p, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ImageInputError(p, "file is empty (0 bytes)")
    import io

    img = open_bounded(io.BytesIO(data), max_pixels, p)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not lose an otherwise good image
        pass
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return LoadedImage(str(p), rgb, hashlib.sha256(data).hexdigest(), len(data))


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary name in the same folder, fsync, then rename over ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def png_bytes(pixels: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()
