"""The .tcb container: v2 (written now) and v1 (still read), truncation, damage and forgery."""

import json
import random
import struct
import zlib

import pytest

from taskcodec.codec import bitstream as bsm
from taskcodec.codec import format_v1, format_v2
from taskcodec.errors import BitstreamError

LABELS = ("person", "car")


def _header(version="2", n_layers=3, labels=LABELS):
    payloads = [bytes([i]) * (100 + 10 * i) for i in range(n_layers)]
    entries = [bsm.entry_for(p, index=i, kind="base" if i == 0 else "object",
                             label="background" if i == 0 else labels[i % len(labels)],
                             meta={"scale": 4} if i == 0 else {"grid": [i, 1, i + 2, 4], "scale16": 16})
               for i, p in enumerate(payloads)]
    header = bsm.Header(width=64, height=48, codec="classical", codec_version=version,
                        settings={"quality": 30, "format": "auto", "background": "coarse", "predict": True},
                        encoding_uid="0123456789abcdef", policy_id=7, policy_hash="abcdef01" + "0" * 56,
                        task="count cars", policy_labels=labels, layers=tuple(entries))
    return header, payloads


def make(n_layers=3):
    header, payloads = _header(n_layers=n_layers)
    return bsm.pack(header, payloads), payloads


# ---- v2 -------------------------------------------------------------------------------------

def test_v2_round_trip_keeps_what_decoding_needs_and_leaves_names_to_the_store():
    data, payloads = make()
    bs = bsm.unpack(data)
    assert bs.version == (2, 0) and bs.complete and bs.payloads == payloads and bs.problems == []
    h = bs.header
    assert (h.width, h.height, h.codec, h.codec_version, h.policy_id, h.policy_hash, h.encoding_uid) == \
        (64, 48, "classical", "2", 7, "abcdef01", "0123456789abcdef")
    assert h.settings == {"quality": 30, "full": False, "background": "coarse", "format": "auto", "predict": True}
    assert h.task is None and h.policy_labels is None  # in the store, not the file
    assert [(e.kind, e.label, e.label_index) for e in bs.layers] == \
        [("base", "background", None), ("object", None, 1), ("object", None, 0)]
    assert bs.layers[1].meta == {"grid": [1, 1, 3, 4], "scale16": 16}
    assert bs.layers[1].box == (8.0, 8.0, 24.0, 32.0)
    named = bsm.resolve(h, "count cars", LABELS)
    assert [e.label for e in named.layers] == ["background", "car", "person"] and named.task == "count cars"


def test_v2_bookkeeping_is_small():
    data, payloads = make(6)
    bs = bsm.unpack(data)
    assert bs.header_bytes == len(data) - sum(map(len, payloads))
    assert bs.header_bytes <= 85, bs.header_bytes  # 6 layers: 6 to 11 bytes a layer, about 35 fixed


def test_annotation_makes_the_file_explain_itself():
    data, payloads = make()
    note = bsm.annotate(data, "count cars", LABELS)
    bs = bsm.unpack(note)
    assert bs.header.task == "count cars" and [e.label for e in bs.layers] == ["background", "car", "person"]
    assert bs.payloads == payloads and len(note) > len(data)


def test_labels_outside_the_policy_travel_by_name():
    header, payloads = _header(labels=("main subject", "car"))
    header = header.model_copy(update={"policy_labels": ("car",)})
    bs = bsm.unpack(bsm.pack(header, payloads))
    assert [(e.label, e.label_index) for e in bs.layers[1:]] == [(None, 0), ("main subject", None)]


def test_v2_truncation_at_every_layer_boundary_keeps_each_complete_layer():
    data, payloads = make(4)
    start = bsm.unpack(data).header_bytes
    bounds = [start]
    for p in payloads:
        bounds.append(bounds[-1] + len(p))
    for n_ok, cut in enumerate(bounds[:-1]):
        for c in (cut, cut + 1, bounds[n_ok + 1] - 1):
            bs = bsm.unpack(data[:c])
            assert len(bs.payloads) == n_ok and not bs.complete and f"layer {n_ok}" in bs.problems[0], c
            assert "truncated" in bs.problems[0]
    assert bsm.unpack(data[: bounds[-1]]).complete


def test_every_damaged_header_byte_is_a_clear_error():
    data, _ = make()
    start = bsm.unpack(data).header_bytes
    for i in range(4, start):  # past the magic: version, flags, length, body, CRC
        for flip in (1, 0x80):
            d = bytearray(data)
            d[i] ^= flip
            try:
                bs = bsm.unpack(bytes(d))
            except BitstreamError:
                continue
            # only the minor version (ignorable additions) and flags bit 0 (signed: the trailer is then
            # missing) may change without an error
            assert i == 5 or (i == 6 and flip == 1 and bs.signed), (i, flip)


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: d[:5], "too short"),
    (lambda d: b"XXXX" + d[4:], "bad magic"),
    (lambda d: d[:4] + b"\x09" + d[5:], "version 9.0 is not supported"),
    (lambda d: d[:12], "truncated inside the header"),
])
def test_broken_v2_preamble_is_a_clear_error(mutate, msg):
    data, _ = make()
    with pytest.raises(BitstreamError, match=msg):
        bsm.unpack(mutate(data))


def _v2_body(body: bytes) -> bytes:
    return format_v2.PREAMBLE.pack(bsm.MAGIC, 2, 0, 0) + format_v2._varint(len(body)) + body + \
        struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize("body,msg", [
    (b"\x09", "codec id 9"),
    (b"\x00\x02\xff\xff\x7f\x01", "width"),
    (b"\x00\x02\x00\x01", "width"),
    (b"\x00\x02\x40\x40" + b"\0" * 8 + b"\x00\x1e\xff", "settings.flags"),
    (b"\x00\x02\x40\x40" + b"\0" * 8 + b"\x00\x1e\x00\xff\xff\x03", "layers"),
])
def test_forged_v2_bodies_are_refused(body, msg):
    with pytest.raises(BitstreamError, match=msg):
        bsm.unpack(_v2_body(body))


def test_corrupt_layer_keeps_the_layers_before_it():
    data, payloads = make()
    pos = bsm.unpack(data).header_bytes + len(payloads[0]) + 5  # inside layer 1
    bad = data[:pos] + bytes([data[pos] ^ 1]) + data[pos + 1:]
    bs = bsm.unpack(bad)
    assert len(bs.payloads) == 1 and bs.corrupt and "layer 1 (object #1) is corrupt" in bs.problems[0]


def test_random_damage_never_escapes_as_anything_but_bitstream_error():
    data, _ = make()
    rng = random.Random(0)
    decoded = 0
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
        decoded += 1
        for e, p in zip(bs.layers, bs.payloads):
            assert format_v2.layer_crc(p) == e.crc
    assert 0 < decoded < 500  # damage in payloads parses (and CRCs catch it); damage in the header never does


def test_signature_covers_a_v2_file():
    data, _ = make()
    signed = bsm.sign(data, b"k" * 16)
    bsm.verify(signed, b"k" * 16)
    bs = bsm.unpack(signed)
    assert bs.signed and bs.complete
    with pytest.raises(BitstreamError, match="MAC mismatch"):
        bsm.verify(signed[:-40] + bytes([signed[-40] ^ 1]) + signed[-39:], b"k" * 16)


# ---- v1 (still read) ------------------------------------------------------------------------

def make_v1(n_layers=3):
    header, payloads = _header(version="1", n_layers=n_layers)
    return format_v1.pack(header, payloads), payloads


def test_v1_round_trip():
    data, payloads = make_v1()
    bs = bsm.unpack(data)
    assert bs.version == (1, 0) and bs.complete and bs.payloads == payloads and bs.problems == []
    assert bs.header.width == 64 and [e.label for e in bs.layers] == ["background", "car", "person"]
    assert bs.header.task == "count cars"


def test_v1_truncation_keeps_every_complete_prefix_layer():
    data, payloads = make_v1()
    hlen = struct.unpack_from("<I", data, 8)[0]
    start = 16 + hlen
    for cut, n_ok in [(start, 0), (start + 100, 1), (start + 150, 1), (start + 210, 2), (len(data) - 1, 2)]:
        bs = bsm.unpack(data[:cut])
        assert len(bs.payloads) == n_ok, cut
        assert not bs.complete and "truncated" in bs.problems[0] and f"layer {n_ok}" in bs.problems[0]


@pytest.mark.parametrize("mutate,msg", [
    (lambda d: d[:8] + struct.pack("<I", 0xFFFFFFFF) + d[12:], "exceeds the limit"),
    (lambda d: d[:30], "truncated inside the header"),
    (lambda d: d[:20] + bytes([d[20] ^ 0xFF]) + d[21:], "header is corrupt"),
])
def test_broken_v1_header_is_a_clear_error(mutate, msg):
    data, _ = make_v1()
    with pytest.raises(BitstreamError, match=msg):
        bsm.unpack(mutate(data))


def _forge(header_dict) -> bytes:
    hdr = json.dumps(header_dict).encode()
    return format_v1.PREAMBLE.pack(bsm.MAGIC, 1, 0, 0, len(hdr), zlib.crc32(hdr)) + hdr


@pytest.mark.parametrize("field,value,msg", [
    ("width", 10**9, "width"),
    ("height", 0, "height"),
    ("layers", [{"index": 0, "kind": "base", "length": 2**40, "crc32": 0}], "layers.0.length"),
    ("layers", [{"index": 0, "kind": "evil", "length": 1, "crc32": 0}], "layers.0.kind"),
    ("layers", [{"index": 5, "kind": "base", "length": 1, "crc32": 0}], "has index 5"),
])
def test_forged_v1_headers_are_refused_before_any_allocation(field, value, msg):
    h = {"width": 10, "height": 10, "codec": "classical", "codec_version": "1", "encoding_uid": "x", "layers": []}
    h[field] = value
    with pytest.raises(BitstreamError, match=msg):
        bsm.unpack(_forge(h))


def test_forged_layer_length_past_the_end_is_truncation_not_allocation():
    h = {"width": 10, "height": 10, "codec": "classical", "codec_version": "1", "encoding_uid": "x",
         "layers": [{"index": 0, "kind": "base", "length": 2**31, "crc32": 0}]}
    bs = bsm.unpack(_forge(h) + b"abc")
    assert bs.payloads == [] and "has 3 of 2147483648 bytes" in bs.problems[0]
