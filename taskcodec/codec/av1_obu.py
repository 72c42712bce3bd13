"""AV1 OBUs of a single key frame, and the sequence header a bare payload leaves out.

SVT-AV1 writes each raster as two OBUs, a sequence header (12-13 bytes) and a frame::

    0A <size> <sequence header: profile, level, frame size, coding tools>   12-13 bytes
    32 <size> <frame header + tile group>                                  the picture

With the shipped encoder settings the sequence header is a function of the coded frame size alone
(``sequence_header``: the AV1 spec's syntax, section 5.5, with SVT-AV1's choices written out), so a
*bare* payload (classical codec version 3) stores only the frame OBU's content and the decoder rebuilds
the rest: 13-17 bytes a layer that were bookkeeping. ``bare`` keeps a payload whole whenever SVT-AV1's
header is not exactly the rebuilt one, so rebuilding never changes what decodes.
"""

from __future__ import annotations

from taskcodec.codec import varint

OBU_SEQUENCE_HEADER = 1
OBU_FRAME = 6
SEQUENCE_HEADER_BYTE = 0x0A  # obu_type 1, no extension, obu_has_size_field 1
FRAME_BYTE = 0x32  # obu_type 6, no extension, obu_has_size_field 1

# AV1 spec, annex A.3: (seq_level_idx, MaxPicSize, MaxHSize, MaxVSize), levels 2.0 .. 6.0 as SVT-AV1 picks
# them for a still frame (the display rate at 25 frames a second never binds before the picture size).
LEVELS = ((0, 147456, 2048, 1152), (1, 278784, 2816, 1584), (4, 665856, 4352, 2448), (5, 1065024, 5504, 3096),
          (8, 2359296, 6144, 3456), (12, 8912896, 8192, 4352), (16, 35651584, 16384, 8704))
# The sequence header's bits after the frame size, SVT-AV1 4.x at preset 6: no frame ids, 64x64
# superblocks, intra edge filter, inter-intra, warped motion, order hints (7 bits, ref frame mvs),
# screen content tools and integer mv chosen per frame, CDEF; then enable_restoration (``restoration``),
# then 8-bit 4:2:0 BT.601-unspecified limited range colour and no film grain.
TOOLS = "000110101011111001"
COLOUR = "00000000"


def level(width: int, height: int) -> int:
    """The smallest AV1 level whose picture-size limits hold a ``width`` x ``height`` frame."""
    for idx, pic, hmax, vmax in LEVELS:
        if width * height <= pic and width <= hmax and height <= vmax:
            return idx
    return 31  # level "max parameters"


def restoration(width: int, height: int) -> bool:
    """SVT-AV1 turns loop restoration off for frames with a side under 64 (measured on every size 8-200)."""
    return min(width, height) >= 64


def sequence_header(width: int, height: int) -> bytes:
    """The sequence header OBU (header byte, size, payload) SVT-AV1 writes for a ``width`` x ``height`` key frame."""
    lvl = level(width, height)
    wb, hb = max(1, (width - 1).bit_length()), max(1, (height - 1).bit_length())
    # profile 0, not still_picture, no reduced header, no timing / display delay info, one operating point
    bits = "000" "0" "0" "0" "0" "00000" + f"{0:012b}" + f"{lvl:05b}" + ("0" if lvl > 7 else "")  # idc, level, tier
    bits += f"{wb - 1:04b}{hb - 1:04b}" + f"{width - 1:0{wb}b}{height - 1:0{hb}b}"
    bits += TOOLS + ("1" if restoration(width, height) else "0") + COLOUR
    bits += "1" + "0" * (-(len(bits) + 1) % 8)  # trailing_bits
    payload = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return bytes([SEQUENCE_HEADER_BYTE]) + varint.encode(len(payload)) + payload


def obus(data: bytes) -> list[tuple[int, int, int]] | None:
    """(obu_type, start of the OBU, end of it) for each OBU of a low-overhead stream; None if it does not parse."""
    out, i = [], 0
    while i < len(data):
        head = data[i]
        if head & 0x80 or not head & 0x02:  # forbidden bit set, or no size field
            return None
        try:
            size, j = varint.decode(data, i + 1 + (head >> 2 & 1))
        except ValueError:
            return None
        if j + size > len(data):
            return None
        out.append((head >> 3 & 0x0F, i, j + size))
        i = j + size
    return out


def bare(data: bytes, width: int, height: int) -> bytes:
    """The frame OBU's content alone when ``data`` (a sequence header and a frame OBU) has exactly the
    rebuilt sequence header for its coded size; otherwise ``data`` unchanged (it starts with 0x0A)."""
    parts = obus(data)
    if not parts or [t for t, _, _ in parts] != [OBU_SEQUENCE_HEADER, OBU_FRAME]:
        return data
    seq_end = parts[0][2]
    if data[:seq_end] != sequence_header(width, height) or data[seq_end] != FRAME_BYTE:
        return data
    _, content = varint.decode(data, seq_end + 1)
    if content >= len(data) or data[content] == SEQUENCE_HEADER_BYTE:
        return data
    return data[content:]


def dress(data: bytes, width: int, height: int) -> bytes:
    """The OBU stream of a payload of a bare-capable layer: as is when it carries its sequence header
    (first byte 0x0A), else the rebuilt sequence header and a frame OBU around it."""
    if data[:1] == bytes([SEQUENCE_HEADER_BYTE]):
        return data
    return sequence_header(width, height) + bytes([FRAME_BYTE]) + varint.encode(len(data)) + data
