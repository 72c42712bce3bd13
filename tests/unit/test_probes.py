"""The remaining probes of a hostile run: a pixel limit above Pillow's own, --out onto a file, and a
symlink that leaves --source."""

from __future__ import annotations

import pytest
from PIL import Image
from typer.testing import CliRunner

from taskcodec.archive import output_path
from taskcodec.cli import app
from taskcodec.errors import TaskcodecError
from taskcodec.imageio import load_image


def test_a_pixel_limit_above_pillows_own_takes_effect(tmp_path):
    big = tmp_path / "big.png"
    Image.new("1", (9500, 9500)).save(big)  # 90.25 M pixels: over Pillow's default 89.5 M
    assert load_image(big, max_pixels=100_000_000).pixels.shape == (9500, 9500, 3)


def test_out_onto_an_existing_file_is_a_one_line_usage_error(home, astronaut, tmp_path):
    target = tmp_path / "already-a-file"
    target.write_text("keep me")
    for cmd in (["compress", "--task", "people", "--out", str(target), str(astronaut)],
                ["archive", "--task", "people", "--source", str(tmp_path), "--out", str(target)]):
        r = CliRunner().invoke(app, cmd)
        assert r.exit_code == 2 and "is a file" in r.output and "Traceback" not in r.output, r.output
    assert target.read_text() == "keep me"


def test_a_link_leaving_source_is_refused_by_name(tmp_path, astronaut):
    src = tmp_path / "src"
    src.mkdir()
    (src / "escape.png").symlink_to(astronaut)
    with pytest.raises(TaskcodecError, match="escape.png: a link to .*outside --source"):
        output_path(tmp_path / "out", src, src / "escape.png")
