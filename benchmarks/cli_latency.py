"""Wall time of the interactive CLI commands, each a fresh process as a user runs it.

    .venv/bin/python benchmarks/cli_latency.py [--repeat 3]

A temporary store and output folder; the image is the first 640x480 photo of the shared COCO subset
(``--image`` to choose another). The plan is made once before timing (so `plan` measures a stored
policy, as a user's second call would), and the store already holds the encoding that `why`, `info`
and `decode` read. No Prefect server is configured: `compress` of one image runs the stages directly;
the `TASKCODEC_FLOWS=always` row runs it as a flow, which starts Prefect's temporary server. Median
of N runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taskcodec.bench.report import write_section  # noqa: E402

TASK = "privacy audit: keep people and faces sharp"


def first_vga_photo() -> Path:
    from PIL import Image

    from taskcodec.settings import get_settings

    folder = get_settings().shared_path / "data" / "coco-val158" / "images"
    for p in sorted(folder.glob("*.jpg")):
        if Image.open(p).size == (640, 480):
            return p
    raise SystemExit(f"no 640x480 photo in {folder}; give --image")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--image", type=Path, default=None, help="default: the first 640x480 COCO photo in shared data")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    image = args.image or first_vga_photo()
    work = Path(tempfile.mkdtemp(prefix="taskcodec-cli-"))
    env = {**os.environ, "TASKCODEC_HOME": str(work / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    for k in ("PREFECT_API_URL", "PREFECT_PROFILE", "TASKCODEC_FLOWS"):
        env.pop(k, None)
    exe = [sys.executable, "-m", "taskcodec"]

    def run(*a: str, flows: str = "auto") -> float:
        t0 = time.perf_counter()
        subprocess.run([*exe, *a], env={**env, "TASKCODEC_FLOWS": flows}, check=True, capture_output=True, cwd=work)
        return time.perf_counter() - t0

    run("plan", TASK)
    run("compress", "--task", TASK, "--out", str(work / "out"), str(image))
    tcb = str(work / "out" / (image.stem + ".tcb"))
    cases = {
        "plan (stored policy)": lambda i: run("plan", TASK),
        "ground (1 image)": lambda i: run("ground", "--task", TASK, str(image)),
        "info": lambda i: run("info", tcb),
        "why": lambda i: run("why", tcb),
        "decode --for human": lambda i: run("decode", tcb, "--for", "human", "--out", str(work / f"d{i}.png")),
        "compress (1 image)": lambda i: run("compress", "--task", TASK, "--out", str(work / f"c{i}"), str(image)),
        "compress (1 image, TASKCODEC_FLOWS=always: a flow on a temporary Prefect server)": lambda i: run(
            "compress", "--task", TASK, "--out", str(work / f"f{i}"), str(image), flows="always"),
    }
    from PIL import Image

    w, h = Image.open(image).size
    rows = []
    for name, fn in cases.items():
        times = [fn(i) for i in range(args.repeat)]
        rows.append((name, statistics.median(times), min(times), max(times)))
        print(f"{name}: median {rows[-1][1]:.2f} s")
    if not args.no_docs:
        cmd = ("python benchmarks/cli_latency.py " + " ".join(sys.argv[1:])).strip()
        lines = [f"Command: `{cmd}` on {platform.machine()} with {os.cpu_count()} CPU cores; each command a "
                 f"fresh process, {args.repeat} runs, `{image.name}` ({w}x{h}), default grounding, no Prefect server "
                 "configured.", "",
                 "| command | median s | min s | max s |", "|---|---|---|---|",
                 *[f"| `{n}` | {m:.2f} | {lo:.2f} | {hi:.2f} |" for n, m, lo, hi in rows]]
        write_section("cli", "Interactive command latency", "\n".join(lines))


if __name__ == "__main__":
    main()
