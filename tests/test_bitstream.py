import random
import struct
import zlib

import pytest

from taskcodec.codec import bitstream as bsm
from taskcodec.errors import BitstreamError


def make(n_layers=3):
    payloads = [bytes([i]) * (100 + 10 * i) for i in range(n_layers)]
    entries = [bsm.entry_for(p, index=i, kind="base" if i == 0 else "object", label=f"l{i}")
               for i, p in enumerate(payloads)]
    header = bsm.Header(width=64, height=48, codec="classical", codec_version="1", encoding_uid="u1",
                        layers=tuple(entries))
    return bsm.pack(header, payloads), payloads


def test_round_trip():
    data, payloads = make()
    bs = bsm.unpack(data)
    assert bs.complete and bs.payloads == payloads and bs.problems == []
    assert bs.header.width == 64 and [e.label for e in bs.layers] == ["l0", "l1", "l2"]


def test_truncation_keeps_every_complete_prefix_layer():
    data, payloads = make()
    hlen = struct.unpack_from("<I", data, 8)[0]
    start = 16 + hlen
    for cut, n_ok in [(start, 0), (start + 100, 1), (start + 150, 1), (start + 210, 2), (len(data) - 1, 2)]:
        bs = bsm.unpack(data[:cut])
        assert len(bs.payloads) == n_ok, cut
        assert not bs.complete and "truncated" in bs.problems[0] and f"layer {n_ok}" in bs.problems[0]


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: d[:10], "too short"),
    (lambda d: b"XXXX" + d[4:], "bad magic"),
    (lambda d: d[:4] + b"\x02" + d[5:], "version 2.0 is not supported"),
    (lambda d: d[:8] + struct.pack("<I", 0xFFFFFFFF) + d[12:], "exceeds the limit"),
    (lambda d: d[:30], "truncated inside the header"),
    (lambda d: d[:20] + bytes([d[20] ^ 0xFF]) + d[21:], "header is corrupt"),
])
def test_broken_preamble_or_header_is_a_clear_error(mutate, msg):
    data, _ = make()
    with pytest.raises(BitstreamError, match=msg):
        bsm.unpack(mutate(data))


def test_corrupt_layer_keeps_the_layers_before_it():
    data, _ = make()
    hlen = struct.unpack_from("<I", data, 8)[0]
    pos = 16 + hlen + 100 + 5  # inside layer 1
    bad = data[:pos] + bytes([data[pos] ^ 1]) + data[pos + 1:]
    bs = bsm.unpack(bad)
    assert len(bs.payloads) == 1 and "layer 1 ('l1') is corrupt" not in bs.problems[0]
    assert "layer 1 (object 'l1') is corrupt" in bs.problems[0]


def _forge(header_dict) -> bytes:
    import json

    hdr = json.dumps(header_dict).encode()
    return bsm.PREAMBLE.pack(bsm.MAGIC, 1, 0, 0, len(hdr), zlib.crc32(hdr)) + hdr


@pytest.mark.parametrize("field,value,msg", [
    ("width", 10**9, "width"),
    ("height", 0, "height"),
    ("layers", [{"index": 0, "kind": "base", "length": 2**40, "crc32": 0}], "layers.0.length"),
    ("layers", [{"index": 0, "kind": "evil", "length": 1, "crc32": 0}], "layers.0.kind"),
    ("layers", [{"index": 5, "kind": "base", "length": 1, "crc32": 0}], "has index 5"),
])
def test_forged_headers_are_refused_before_any_allocation(field, value, msg):
    h = {"width": 10, "height": 10, "codec": "classical", "codec_version": "1", "encoding_uid": "x", "layers": []}
    h[field] = value
    with pytest.raises(BitstreamError, match=msg):
        bsm.unpack(_forge(h))


def test_forged_layer_length_past_the_end_is_truncation_not_allocation():
    h = {"width": 10, "height": 10, "codec": "classical", "codec_version": "1", "encoding_uid": "x",
         "layers": [{"index": 0, "kind": "base", "length": 2**31, "crc32": 0}]}
    bs = bsm.unpack(_forge(h) + b"abc")
    assert bs.payloads == [] and "has 3 of 2147483648 bytes" in bs.problems[0]


def test_random_damage_never_escapes_as_anything_but_bitstream_error():
    data, _ = make()
    rng = random.Random(0)
    for _ in range(500):
        d = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            d[rng.randrange(len(d))] = rng.randrange(256)
        if rng.random() < 0.3:
            d = d[: rng.randrange(len(d))]
        try:
            bs = bsm.unpack(bytes(d))
        except BitstreamError:
            continue
        for e, p in zip(bs.layers, bs.payloads):
            assert zlib.crc32(p) == e.crc32
