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

from taskcodec.errors import ImageInputError, OutputExistsError, OutputFormatError


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
    # Pillow's own bomb check (89 M pixels by default) would overrule a larger TASKCODEC_MAX_IMAGE_PIXELS;
    # the header's size is checked against the setting below, before anything is decoded.
    Image.MAX_IMAGE_PIXELS = max_pixels
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
    return LoadedImage(str(p), to_rgb8(img, p), hashlib.sha256(data).hexdigest(), len(data))


_HIGH_BIT_DEPTH = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}


def to_rgb8(img: Image.Image, what: object) -> np.ndarray:
    """RGB uint8 pixels of any Pillow image that can be shown as such; the rest is refused.

    * 16-bit greyscale (``I;16*``, and ``I`` holding 16-bit values) is scaled to 8 bits
      (v / 257), not clipped;
    * palette, greyscale, CMYK (Adobe-inverted JPEGs included: Pillow undoes that) convert;
    * an alpha channel that is fully opaque is dropped; one with any transparent pixel is
      refused, since the codecs carry RGB only and flattening would invent a background;
    * floating-point images are refused (no defined 0-255 range).
    """
    mode = img.mode
    if mode == "F":
        raise ImageInputError(what, "32-bit floating-point image: convert it to 8 or 16 bits per channel first")
    if mode in _HIGH_BIT_DEPTH:
        arr = np.asarray(img)
        if arr.min() < 0 or arr.max() > 65535:
            raise ImageInputError(what, f"{mode} image with values outside 0-65535: cannot be shown as 8-bit RGB")
        grey = np.round(arr.astype(np.float64) / 257.0).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if "A" in mode or "a" in mode or (mode == "P" and "transparency" in img.info):
        alpha = np.asarray(img.convert("RGBA"))[:, :, 3]
        if alpha.min() < 255:
            raise ImageInputError(what, f"{mode} image has transparent pixels ({int((alpha < 255).sum()):,} of "
                                        f"{alpha.size:,}); taskcodec codes RGB only: flatten it onto a background first")
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _current_umask() -> int:
    """The process umask, read without changing it where the OS tells (Linux), else set and restored."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> None:
    """Write to a temporary name in the same folder, fsync, then rename over ``path``.

    The file gets the permissions a plain ``open`` would give (0666 less the umask), not the
    temporary file's 0600. With ``overwrite=False`` an existing ``path`` is an ``OutputExistsError``
    and is left untouched (the check and the rename are one step: a hard link).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and target.exists():
        raise OutputExistsError(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), 0o666 & ~_current_umask())
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise OutputExistsError(target) from None
            os.unlink(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


IMAGE_FORMATS = {".png": "PNG", ".webp": "WEBP", ".jpg": "JPEG", ".jpeg": "JPEG", ".npy": "NPY"}


def image_format(path: str | os.PathLike) -> str:
    """The format an output path's extension asks for; any other extension is an ``OutputFormatError``."""
    fmt = IMAGE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise OutputFormatError(path, f"unknown image extension {Path(path).suffix or '(none)'!r}: use one of "
                                      + ", ".join(IMAGE_FORMATS))
    return fmt


def image_bytes(pixels: np.ndarray, path: str | os.PathLike) -> bytes:
    """``pixels`` encoded as the extension of ``path`` asks: PNG and WebP lossless, JPEG at quality 95,
    ``.npy`` as the raw uint8 array."""
    import io

    fmt = image_format(path)
    buf = io.BytesIO()
    if fmt == "NPY":
        np.save(buf, np.ascontiguousarray(pixels), allow_pickle=False)
    elif fmt == "WEBP":
        Image.fromarray(pixels).save(buf, "WEBP", lossless=True)
    elif fmt == "JPEG":
        Image.fromarray(pixels).save(buf, "JPEG", quality=95)
    else:
        Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def png_bytes(pixels: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()
