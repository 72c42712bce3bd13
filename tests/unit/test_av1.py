"""Rasters as raw AV1 (``codec/av1.py``, ``codec/av1_obu.py``): bare payloads, tiles, other encoders."""

import numpy as np
import pytest

from taskcodec.bench.metrics import psnr
from taskcodec.codec import av1, av1_obu
from taskcodec.errors import BitstreamError


def gradient(w, h):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // max(1, w - 1), yy * 255 // max(1, h - 1), (xx * 7 + yy * 3) % 256], -1).astype(np.uint8)


# level steps at 147456 and 278784 pixels, restoration at a side of 64, padding of small sides and strips
SIZES = [(5, 3), (16, 65), (63, 200), (64, 64), (161, 119), (512, 288), (530, 300), (640, 480)]


@pytest.mark.parametrize("size", SIZES)
def test_the_rebuilt_sequence_header_is_the_one_svt_av1_writes(size):
    whole = av1.encode_av1(gradient(*size), 40)
    seq_end = av1_obu.obus(whole)[0][2]
    assert whole[:seq_end] == av1_obu.sequence_header(*av1.coded_size(*size))


@pytest.mark.parametrize("size", SIZES)
def test_a_bare_payload_is_the_whole_one_less_its_headers_and_decodes_the_same(size):
    pixels = gradient(*size)
    whole, bare = av1.encode_av1(pixels, 40), av1.encode_av1(pixels, 40, bare=True)
    assert whole.endswith(bare) and len(whole) - len(bare) >= 13  # sequence header OBU, frame OBU header and size
    assert bare[:1] != b"\x0a"
    out = av1.decode_av1(bare, size, "raster", bare=True)
    assert (out == av1.decode_av1(whole, size, "raster")).all()
    assert (av1.decode_av1(whole, size, "raster", bare=True) == out).all()  # a payload may keep its header


def test_a_payload_whose_header_differs_is_kept_whole(monkeypatch):
    """Any other sequence header (here: libaom's) stays in the payload, so rebuilding never guesses."""
    pixels = gradient(48, 40)
    monkeypatch.setattr(av1, "ENCODER", "aom")
    data = av1.encode_av1(pixels, 60, bare=True)
    assert data[:1] == b"\x0a" and data == av1.encode_av1(pixels, 60)
    assert psnr(pixels, av1.decode_av1(data, (48, 40), "raster", bare=True)) > 25


def test_a_bare_payload_at_another_size_than_it_was_coded_is_refused():
    bare = av1.encode_av1(gradient(120, 90), 50, bare=True)
    with pytest.raises(BitstreamError, match="does not decode at the layer table's 40x30"):
        av1.decode_av1(bare, (40, 30), "layer 1 (object)", bare=True)


def test_a_raster_taller_than_svt_av1_allows_is_cut_into_tiles():
    """SVT-AV1 codes frames up to 16384 wide but only 8704 tall."""
    assert av1.tiles(16, 9000) == [(0, 0, 16, 4500), (0, 4500, 16, 9000)]
    pixels = gradient(16, 9000)
    data = av1.encode_av1(pixels, 30, bare=True)
    out = av1.decode_av1(data, (16, 9000), "raster", bare=True)
    assert out.shape == (9000, 16, 3) and psnr(pixels, out) > 25


@pytest.mark.parametrize("size", [(5, 3), (16, 65), (161, 119)])
def test_libaom_payloads_decode_with_the_unchanged_av1_decoder(monkeypatch, size):
    """``av1.ENCODER = "aom"`` (measured in benchmarks/tune_classical.py, not shipped) writes the OBUs out
    of Pillow's AVIF file; they must be a raster any taskcodec decodes, at odd and padded sizes alike."""
    w, h = size
    pixels = gradient(w, h)
    monkeypatch.setattr(av1, "ENCODER", "aom")
    data = av1.encode_av1(pixels, 60)
    assert data[:1] == b"\x0a"  # a sequence header OBU first; the temporal delimiter and the AVIF boxes are gone
    out = av1.decode_av1(data, size, "raster")
    assert out.shape == (h, w, 3) and psnr(pixels, out) > 18  # 4:2:0 chroma limits a 5x3 rainbow to ~19 dB
    assert av1.encode_av1(pixels, 60) == data  # one thread: the same bytes every time
