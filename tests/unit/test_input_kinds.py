"""Every kind of image a user brings either round-trips (decoded pixels compared with the source) or is
refused with one line naming the file and the reason."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from taskcodec import stages
from taskcodec.codec import bitstream
from taskcodec.errors import ImageInputError


@pytest.fixture(scope="module")
def rgb(sample_dir) -> np.ndarray:
    return np.asarray(Image.open(sample_dir / "astronaut.png").convert("RGB"))[:96, :128].copy()


def _round_trip(path) -> np.ndarray:
    enc = stages.encode_full(stages.load(path), "classical", quality=95)
    return stages.decode_bitstream(bitstream.unpack(enc.data)).pixels


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _kinds(rgb: np.ndarray, d) -> dict:
    """file -> the RGB pixels a correct reader must see."""
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    out = {}
    g16 = (np.linspace(0, 65535, rgb.shape[1])[None, :] * np.ones((rgb.shape[0], 1))).astype(np.uint16)
    Image.fromarray(g16).save(d / "grey16.png")
    out["grey16.png"] = np.repeat(np.round(g16 / 257.0).astype(np.uint8)[:, :, None], 3, axis=2)
    Image.fromarray(grey).save(d / "grey.png")
    out["grey.png"] = np.repeat(grey[:, :, None], 3, axis=2)
    pal = Image.fromarray(rgb).quantize(64, dither=Image.Dither.NONE)
    pal.save(d / "palette.png")
    out["palette.png"] = np.asarray(pal.convert("RGB"))
    Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg", quality=100)
    out["cmyk.jpg"] = rgb
    opaque = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    Image.fromarray(opaque).save(d / "opaque-rgba.png")
    out["opaque-rgba.png"] = rgb
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(d / "exif-rotated.jpg", exif=exif, quality=100)
    out["exif-rotated.jpg"] = np.rot90(rgb, k=-1)
    Image.fromarray(np.full((10, 20000, 3), 90, np.uint8)).save(d / "wide.png")
    out["wide.png"] = np.full((10, 20000, 3), 90, np.uint8)
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(d / "tiny.png")
    out["tiny.png"] = np.full((1, 1, 3), 200, np.uint8)
    return out


def test_each_kind_round_trips(rgb, tmp_path):
    for name, want in _kinds(rgb, tmp_path).items():
        loaded = stages.load(tmp_path / name).pixels
        assert loaded.shape == want.shape, name
        assert _psnr(loaded, want) > 30, (name, _psnr(loaded, want))  # the 16-bit PNG was all white before
        decoded = _round_trip(tmp_path / name)
        assert decoded.shape == want.shape and _psnr(decoded, want) > 28, (name, _psnr(decoded, want))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_images_are_refused_naming_file_and_reason(rgb, tmp_path, mode):
    im = Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]))
    im.putpixel((3, 3), (1, 2, 3, 0))
    path = tmp_path / f"see-through-{mode}.png"
    if mode == "P":  # a palette whose first entry is transparent
        pal = Image.fromarray(rgb).quantize(16)
        pal.save(path, transparency=int(np.asarray(pal)[0, 0]))
    else:
        (im if mode == "RGBA" else im.convert(mode)).save(path)
    with pytest.raises(ImageInputError) as err:
        stages.load(path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "transparent pixels" in msg and "\n" not in msg


def test_float_images_are_refused(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.random.default_rng(0).random((8, 8), dtype=np.float32)).save(path)
    with pytest.raises(ImageInputError, match="floating-point"):
        stages.load(path)


def test_a_20000x10_strip_goes_through_grounding(tmp_path):
    from taskcodec.domain.policy import policy_from_labels

    path = tmp_path / "strip.png"
    Image.fromarray(np.full((10, 20000, 3), 90, np.uint8)).save(path)
    img = stages.load(path)
    g = stages.ground_image(img, policy_from_labels(["person", "car"]), "yolox")  # was an OpenCV assertion
    enc = stages.encode_grounded(img, g, policy_from_labels(["person", "car"]), quality=40)
    assert stages.decode_bitstream(bitstream.unpack(enc.data)).pixels.shape == (10, 20000, 3)
