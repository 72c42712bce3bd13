"""Streams pinned byte for byte (issue 15: a refactoring must not change what the codecs write).

The inputs are fixed: a 320×256 crop of skimage's astronaut, a face and a person, and a fixed policy,
task and encoding reference. ``python -m tests.pinned`` prints the current digests, to paste here
after a change that is *meant* to alter the streams (say why in the commit).
"""

from __future__ import annotations

import hashlib

from taskcodec.codec.api import ObjectRequest, StreamRef

REQUESTS = [
    ObjectRequest(object_index=0, label="face", box=(177, 66, 272, 161), importance=1.0, tier="high"),
    ObjectRequest(object_index=1, label="person", box=(20, 30, 250, 256), importance=0.6, tier="normal"),
]
CASES = [dict(quality=30), dict(quality=60, background="none")]
# codec -> one (length, sha256 prefix) per case, with the shipped weights for ``learned``
PINNED = {
    "classical": [(1559, "13d7d198b679be38"), (4468, "198ef40ca6912372")],
    "learned": [(3770, "5d5f9002f99dd5da"), (6436, "5e3a7d3e64082725")],
}


def image():
    import skimage.data

    return skimage.data.astronaut()[:256, :320].copy()


def streams(codec_name: str) -> list[bytes]:
    from taskcodec.codec import get_codec

    codec = get_codec(codec_name)
    ref = StreamRef(policy_id=3, policy_hash="ab" * 32, policy_labels=("face", "person"), task="keep faces",
                    encoding_uid="0" * 32)
    return [codec.encode(image(), REQUESTS, codec.Params(**kw), ref).data for kw in CASES]


def digests(codec_name: str) -> list[tuple[int, str]]:
    return [(len(s), hashlib.sha256(s).hexdigest()[:16]) for s in streams(codec_name)]


if __name__ == "__main__":
    for name in PINNED:
        print(f'    "{name}": {digests(name)},')
