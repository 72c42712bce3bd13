"""The Python API: the README's example runs as written, and each input kind is accepted."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO


def test_the_readme_example_runs(tmp_path):
    readme = (REPO / "README.md").read_text()
    code = re.search(r"## Python API.*?```python\n(.*?)```", readme, re.S).group(1)
    env = {**os.environ, "TASKCODEC_HOME": str(tmp_path / "home")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "bytes;" in r.stdout and "background" in r.stdout


def test_every_input_kind_round_trips_and_is_explained(home, astronaut):
    import taskcodec

    rgb = np.asarray(Image.open(astronaut).convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    for image in (astronaut, str(astronaut), buf.getvalue(), Image.fromarray(rgb), rgb):
        enc = taskcodec.compress(image, task="privacy audit: keep people and faces sharp", quality=30)
        dec = taskcodec.decode(enc.data)
        assert dec.image.shape == (512, 512, 3) and "person" in {o["label"] for o in dec.objects}
        assert taskcodec.explain(enc.data)["encoding_uid"] == enc.header.encoding_uid
    with pytest.raises(taskcodec.api.TaskcodecError, match="H x W x 3"):
        taskcodec.compress(rgb.astype(np.float32))


def test_label_names_come_from_the_store_unless_the_file_is_annotated(home, astronaut, tmp_path, monkeypatch):
    import taskcodec
    from taskcodec.codec import bitstream

    task = "privacy audit: keep people and faces sharp"
    plain = taskcodec.compress(astronaut, task=task, quality=30)
    named = taskcodec.compress(astronaut, task=task, quality=30, annotate=True)
    bare, self_explaining = bitstream.unpack(plain.data).header, bitstream.unpack(named.data).header
    assert bare.task is None and all(e.label is None for e in bare.layers if e.kind == "object")
    assert self_explaining.task == task and "person" in {e.label for e in self_explaining.layers}
    assert len(named.data) > len(plain.data)
    monkeypatch.setenv("TASKCODEC_HOME", str(tmp_path / "empty"))  # a store without this policy
    from taskcodec.settings import get_settings

    get_settings.cache_clear()
    try:
        assert "person" in {o["label"] for o in taskcodec.decode(named.data).objects}
        assert {o["label"] for o in taskcodec.decode(plain.data).objects} == {None}  # known by index only
    finally:
        get_settings.cache_clear()
