import os

import numpy as np
import pytest
from PIL import Image

from taskcodec.errors import ImageInputError
from taskcodec.imageio import atomic_write_bytes, load_image


@pytest.mark.parametrize("name,msg", [
    ("empty", "file is empty"), ("notes", "not a recognised image format"),
    ("truncated", "cannot decode image"), ("bomb", "possible decompression bomb"),
])
def test_bad_files_raise_errors_naming_the_file(bad_images, name, msg):
    with pytest.raises(ImageInputError, match=msg) as exc:
        load_image(bad_images[name])
    assert str(bad_images[name]) in str(exc.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageInputError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageInputError, match="not a regular file"):
        load_image(tmp_path)


def test_exif_orientation_is_applied_and_modes_become_rgb(tmp_path):
    img = Image.fromarray(np.zeros((20, 40), np.uint8), "L")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    img.save(tmp_path / "r.jpg", exif=exif)
    loaded = load_image(tmp_path / "r.jpg")
    assert loaded.pixels.shape == (40, 20, 3) and loaded.pixels.dtype == np.uint8
    assert len(loaded.sha256) == 64 and loaded.size_bytes == os.path.getsize(tmp_path / "r.jpg")


def test_atomic_write_replaces_whole_files_only(tmp_path):
    target = tmp_path / "out" / "x.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert os.listdir(target.parent) == ["x.bin"]
