"""Learned streams decode the same on every processor (``taskcodec.codec.learned.floatpath``).

Each writer runs in its own process, with MKL told which of its kernels it may use
(``MKL_ENABLE_INSTRUCTIONS``), as a machine with or without AVX-512 would pick them. On a processor
without AVX-512 both writers run the same kernels and the first test checks less."""

import os
import subprocess
import sys

import numpy as np

from taskcodec.codec import bitstream, learned
from tests.pinned import streams

WRITE = """
import sys
from tests.pinned import streams
for i, s in enumerate(streams("learned")):
    open(f"{sys.argv[1]}-{i}.tcb", "wb").write(s)
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MKL_")}
    return {**env, **extra}


def _run(code, *args, **env):
    return subprocess.run([sys.executable, "-c", code, *args], env=_env(**env), capture_output=True, text=True,
                          timeout=300, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def test_streams_written_with_avx2_or_avx512_kernels_are_the_same_bytes_and_decode_here(tmp_path):
    for isa in ("AVX2", "AVX512"):
        done = _run(WRITE, str(tmp_path / isa), MKL_ENABLE_INSTRUCTIONS=isa)
        assert done.returncode == 0, done.stderr[-2000:]
    mine = streams("learned")
    for i, own in enumerate(mine):
        avx2, avx512 = ((tmp_path / f"{isa}-{i}.tcb").read_bytes() for isa in ("AVX2", "AVX512"))
        assert avx2 == avx512 == own
        here = learned.decode(bitstream.unpack(own)).pixels
        assert np.array_equal(learned.decode(bitstream.read(tmp_path / f"AVX2-{i}.tcb")).pixels, here)


def test_a_process_whose_mkl_started_before_taskcodec_is_told_how_to_fix_it():
    late = ("import torch; torch.ones(64, 64) @ torch.ones(64, 64)\n"
            "from taskcodec.codec import learned\n"
            "learned.load_model()\n")
    done = _run(late)
    assert done.returncode != 0
    assert "MKL started before taskcodec could set MKL_CBWR=COMPATIBLE" in done.stderr
    assert "export MKL_CBWR=COMPATIBLE" in done.stderr
    # the same script in a process started with the variable set loads and writes the pinned bytes
    done = _run(late + "from tests.pinned import PINNED, digests\nassert digests('learned') == PINNED['learned']\n",
                MKL_CBWR="COMPATIBLE")
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_branch_the_environment_names_is_kept():
    done = _run("import os, taskcodec; print(os.environ['MKL_CBWR'])", MKL_CBWR="AVX2")
    assert done.stdout.strip() == "AVX2"
    done = _run("import os, taskcodec; print(os.environ['MKL_CBWR'])")
    assert done.stdout.strip() == "COMPATIBLE"
