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
