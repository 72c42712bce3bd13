"""The core without its extras (issue 19): compress, decode and why run on the ONNX grounding with
every optional package unimportable, and each optional path names the extra to install.

The extras' modules are blocked in a fresh interpreter (a meta-path finder that refuses them and
notes every attempt), which is what a core-only install looks like to taskcodec's code.
`benchmarks/core_install.py` builds a real core-only venv and measures its size."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

EXTRAS_MODULES = ("torch", "torchvision", "compressai", "transformers", "diffusers", "accelerate", "langchain_openai",
                  "openai", "pycocotools", "matplotlib", "pytorch_msssim", "ai_edge_litert", "psycopg", "psycopg2",
                  "prefect_dask", "dask", "distributed", "xllamacpp", "sentence_transformers")

RUN = r"""
import importlib.abc, json, os, sys
BLOCKED, attempts = set(json.loads(os.environ["BLOCKED"])), []
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
import atexit
atexit.register(lambda: open(os.environ["ATTEMPTS"], "a").write("".join(a + "\n" for a in attempts)
                                                               + ("(prefect imported)\n" if "prefect" in sys.modules else "")))
sys.argv = ["taskcodec", *sys.argv[1:]]
from taskcodec.cli import main
main()
"""


@pytest.fixture
def core(tmp_path):
    env = {**os.environ, "TASKCODEC_HOME": str(tmp_path / "home"), "BLOCKED": json.dumps(EXTRAS_MODULES),
           "ATTEMPTS": str(tmp_path / "attempts.txt"), "TASKCODEC_FLOWS": "auto"}
    for k in ("PREFECT_API_URL", "TASKCODEC_LLM_BASE_URL", "TASKCODEC_LLM_GGUF", "TASKCODEC_DIFFUSION_MODEL"):
        env.pop(k, None)

    def run(*args: str) -> subprocess.CompletedProcess:
        (tmp_path / "attempts.txt").write_text("")
        r = subprocess.run([sys.executable, "-c", RUN, *args], env=env, capture_output=True, text=True, timeout=300)
        r.attempts = (tmp_path / "attempts.txt").read_text().split()
        return r

    return run


def test_core_runs_compress_decode_why_without_any_extra(core, astronaut, tmp_path):
    out = tmp_path / "out"
    r = core("compress", "--task", "privacy audit: keep people and faces sharp", "--out", str(out), str(astronaut))
    assert r.returncode == 0 and "1 encoded, 0 failed" in r.stdout, r.stdout + r.stderr
    assert r.attempts == [], r.attempts  # not even tried; and one image, no server: Prefect was not imported
    tcb = out / "astronaut.tcb"
    r = core("decode", str(tcb), "--for", "human", "--out", str(tmp_path / "a.png"))
    assert r.returncode == 0 and (tmp_path / "a.png").is_file() and r.attempts == [], r.stderr
    r = core("why", str(tcb))
    assert r.returncode == 0 and "person" in r.stdout and r.attempts == [], r.stderr
    r = core("decode", str(tcb), "--for", "machine:detect", "--out", str(tmp_path / "a.json"))
    assert r.returncode == 0 and r.attempts == [], r.stderr


@pytest.mark.parametrize("args, extra", [
    (["compress", "--codec", "learned", "--task", "count people"], "learned"),
    (["decode", "--for", "human", "--reconstruct", "diffusion", "--model", "some/model"], "diffusion"),
    (["bench", "--limit", "1"], "bench"),
])
def test_each_optional_path_names_its_extra(core, astronaut, tmp_path, args, extra):
    if args[0] == "compress":
        args = [*args, "--out", str(tmp_path / "o"), str(astronaut)]
    elif args[0] == "decode":
        first = core("compress", "--full", "--out", str(tmp_path / "f"), str(astronaut))
        assert first.returncode == 0, first.stderr
        args = ["decode", str(tmp_path / "f" / "astronaut.tcb"), *args[1:], "--out", str(tmp_path / "d.png")]
    r = core(*args)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert len(lines) == 1 and f"pip install 'taskcodec[{extra}]'" in lines[0], lines
