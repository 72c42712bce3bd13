"""One float path for the learned codec on every x86 processor.

A decoder must recompute, bit for bit, the floats from which the encoder chose its entropy coder's
tables: the entropy bottleneck's CDFs (``update()``: softplus and matmul), the per-level gains
(``exp``) and σ, μ from ``h_s``. PyTorch's CPU wheels compute matmul and ``exp`` with Intel MKL, which
picks its kernels by processor (AVX2, AVX-512, ...), and those kernels round differently. Measured on
the pinned streams (``tests/pinned.py``): written with MKL's AVX-512 kernels and decoded with its
AVX2 ones, 98 % of the pixels came out wrong, by up to 255; the side stream's bytes differ too.

MKL's Conditional Numerical Reproducibility mode, ``MKL_CBWR=COMPATIBLE``, runs the same kernels on
every processor; encode + decode of a 640×480 photo took the same time with it (0.22 s) as without.
MKL reads the variable at its first call in the process, so ``pin()`` runs when this package is
imported (``import taskcodec`` imports it), and ``check()``, when the model loads, tells a process
whose MKL had already started on another path (torch used before taskcodec was imported) to set the
variable itself. A branch the environment names explicitly is respected (say, ``MKL_CBWR=AVX512`` to
read streams written on such a machine before this pin); streams written then are portable only
between machines on that branch.
"""

from __future__ import annotations

import hashlib
import os
import re

ENV = "MKL_CBWR"
BRANCH = "COMPATIBLE"
# The probe's digest on MKL's COMPATIBLE branch, per MKL build linked into torch (its
# ``torch.__config__.show()`` line). CNR promises equal results only within one MKL build.
PROBE_DIGESTS = {"2024.2-Product Build 20240605": "b295a708520c"}


def pin() -> None:
    """Ask MKL for its processor-independent branch, unless the environment already names one."""
    os.environ.setdefault(ENV, BRANCH)


def mkl_build() -> str | None:
    """The MKL build that torch links, or None (no MKL: another platform's wheel)."""
    import torch

    m = re.search(r"Math Kernel Library Version (\S+ Build \d+)", torch.__config__.show())
    return m.group(1) if m else None


def probe() -> str:
    """Digest of a matrix product whose rounding depends on MKL's kernels. Its inputs are exact
    divisions, the same on every processor; it runs on one thread, like ``h_s``."""
    import torch

    from taskcodec.codec.learned.model import one_thread

    n = torch.arange(64 * 96, dtype=torch.float32)
    a = ((n % 97) / 7.0 - 6.5).reshape(64, 96)
    b = ((n % 89) / 13.0 - 3.25).reshape(96, 64)
    with one_thread():
        return hashlib.sha256((a @ b).numpy().tobytes()).hexdigest()[:12]


def check() -> None:
    """Raise if the environment asks for the COMPATIBLE branch but MKL computes on another one."""
    from taskcodec.errors import TaskcodecError

    if not os.environ.get(ENV, "").upper().startswith(BRANCH):
        return  # the user named another branch: their choice (see the module docstring)
    expected = PROBE_DIGESTS.get(mkl_build() or "")
    if expected is not None and probe() != expected:
        raise TaskcodecError(
            f"learned codec: MKL started before taskcodec could set {ENV}={BRANCH}, so its streams would "
            f"decode only on this kind of processor; import taskcodec before using torch, or export "
            f"{ENV}={BRANCH} before starting Python")
