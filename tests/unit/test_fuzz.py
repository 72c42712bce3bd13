"""Property-based tests (Hypothesis) over the header parser and the layer decoders: whatever the bytes,
the decoder answers with the project's own error or a decoded image, quickly and without a huge
allocation. Bounded to seconds; ``benchmarks/`` is the place for long fuzzing runs."""

from __future__ import annotations

import resource

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fuzz import _pack, _split, forge_v2
from taskcodec import stages
from taskcodec.codec import bitstream as bsm
from taskcodec.errors import TaskcodecError

FUZZ = settings(max_examples=150, deadline=3000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow], derandomize=True)
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
                           | st.text(max_size=8), lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


@pytest.fixture(scope="module")
def real_stream(tmp_path_factory, sample_dir):
    """A real classical stream with a base and object layers (no store needed)."""
    img = stages.load(sample_dir / "astronaut.png")
    small = type(img)(img.path, np.ascontiguousarray(img.pixels[::4, ::4]), img.sha256, img.size_bytes)
    policy = stages.plan_task("privacy audit: keep people and faces sharp")
    return stages.encode_grounded(small, stages.ground_image(small, policy, "yolox"), policy, quality=30).data


def _decode(data: bytes) -> None:
    try:
        bs = bsm.unpack(data)
        stages.decode_bitstream(bs)
    except TaskcodecError:
        pass


def _forge(header: dict, payloads: list[bytes]) -> bytes:
    """The stream as written, with the header's own CRC valid (layer CRCs as the caller left them)."""
    return _pack(header, payloads, fix_crcs=False)


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_after_the_magic_are_a_clean_error_or_a_stream(tail):
    _decode(bsm.MAGIC + tail)


@FUZZ
@given(data=st.data())
def test_mutated_real_streams_decode_or_fail_cleanly(real_stream, data):
    d = bytearray(real_stream)
    for _ in range(data.draw(st.integers(1, 6))):
        d[data.draw(st.integers(0, len(d) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(16, len(d)))
    _decode(bytes(d[:cut]))


@FUZZ
@given(data=st.data())
def test_forged_headers_with_recomputed_crcs_never_escape(real_stream, data):
    """Headers whose fields hold any JSON value (a list for meta.format, huge sides...), CRCs made valid."""
    body, payloads = _split(real_stream)
    layer = data.draw(st.integers(0, len(body["layers"]) - 1))
    target = data.draw(st.sampled_from(["width", "height", "codec", "meta", "settings", "layers"]))
    if target in ("width", "height"):
        body[target] = data.draw(st.integers(1, 65535) | json_values)
    elif target == "meta":
        key = data.draw(st.sampled_from(["format", "scale", "grid", "scale16", "rect", "level", "latent"]))
        body["layers"][layer]["meta"][key] = data.draw(json_values)
    elif target == "layers":
        body["layers"][layer][data.draw(st.sampled_from(["kind", "label", "box", "quality"]))] = data.draw(json_values)
    else:
        body[target] = data.draw(json_values)
    _decode(_forge(body, payloads))


@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_forged_v2_headers_with_recomputed_crcs_never_escape(real_stream, seed):
    import random

    _decode(forge_v2(real_stream, random.Random(seed)))


def test_a_1kb_stream_declaring_a_65535_side_is_refused_at_once_without_allocating(real_stream):
    header, offset = bsm.parse_header(real_stream)
    body = header.model_dump(mode="json")
    body.update(width=65535, height=65535)
    forged = _forge(body, [real_stream[offset:offset + 900]])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(TaskcodecError, match="implausible for a .*-byte stream"):
        stages.decode_bitstream(bsm.unpack(forged))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # kB: no canvas was made


def test_pixel_limit_setting_applies_to_decoding(real_stream, monkeypatch):
    from taskcodec.settings import get_settings

    monkeypatch.setenv("TASKCODEC_MAX_IMAGE_PIXELS", "100")
    get_settings.cache_clear()
    try:
        with pytest.raises(TaskcodecError, match="over the limit of 100"):
            stages.decode_bitstream(bsm.unpack(real_stream))
    finally:
        monkeypatch.delenv("TASKCODEC_MAX_IMAGE_PIXELS")
        get_settings.cache_clear()
