"""Shared fixtures. The data dir (DB, Prefect home) is a temp folder set before
taskcodec or prefect is imported, so tests never touch ~/.taskcodec."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="taskcodec-tests-"))
os.environ["TASKCODEC_HOME"] = str(_SESSION_HOME)
os.environ["TASKCODEC_TESTS_HOME"] = str(_SESSION_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.pop("TASKCODEC_DATABASE_URL", None)
os.environ["COLUMNS"] = "250"  # rich tables: no truncated cells in assertions
os.environ.pop("TASKCODEC_CONFIG", None)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from taskcodec.settings import get_settings  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TASKCODEC_SHARED_DIR", REPO.parent / "shared")).resolve()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh data dir (and so a fresh SQLite store) for one test."""
    d = tmp_path / "home"
    monkeypatch.setenv("TASKCODEC_HOME", str(d))
    get_settings.cache_clear()
    yield d
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


@pytest.fixture(scope="session")
def astronaut(sample_dir) -> Path:
    return sample_dir / "astronaut.png"


@pytest.fixture(scope="session")
def astronaut_pixels(astronaut) -> np.ndarray:
    from taskcodec.imageio import load_image

    return load_image(astronaut).pixels


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server for every flow test of the session."""
    from taskcodec.flows.runtime import configure_prefect

    configure_prefect()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def bad_images(tmp_path) -> dict[str, Path]:
    """Files a batch must survive: zero-byte, not an image, truncated PNG, decompression bomb."""
    from PIL import Image

    d = tmp_path / "bad"
    d.mkdir()
    (d / "empty.png").write_bytes(b"")
    (d / "notes.jpg").write_text("this is not an image\n")
    import io

    buf = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buf, "PNG")
    (d / "truncated.png").write_bytes(buf.getvalue()[:60])
    # A tiny PNG whose header declares 40000 x 40000 pixels: refused before decoding.
    buf = io.BytesIO()
    Image.new("1", (40000, 40000)).save(buf, "PNG")
    (d / "bomb.png").write_bytes(buf.getvalue())
    return {p.stem: p for p in d.iterdir()}


def make_tcb(image: Path, task: str, out: Path, grounding: str = "opencv", quality: int = 50) -> Path:
    """Compress one image through the stage functions (no Prefect): a real, stored bitstream."""
    from taskcodec import stages

    policy = stages.plan_task(task)
    img = stages.load(image)
    g = stages.ground_image(img, policy, grounding)
    enc = stages.encode_image(img, stages.decide_objects(g, policy), policy, quality=quality)
    stages.persist(img, policy, enc, out, g.backend)
    return out
