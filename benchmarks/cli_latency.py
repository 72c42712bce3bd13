"""Wall time of the interactive CLI commands, each a fresh process as a user runs it.

    .venv/bin/python benchmarks/cli_latency.py [--repeat 3]

A temporary store and output folder; the image is scikit-image's astronaut (512x512). The plan is
made once before timing (so `plan` measures a stored policy, as a user's second call would), and
the store already holds the encoding that `why`, `info` and `decode` read. `compress` of one image
includes starting Prefect's temporary server (no PREFECT_API_URL). Median of N runs.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    import skimage.data

    image = Path(skimage.data.__file__).parent / "astronaut.png"
    work = Path(tempfile.mkdtemp(prefix="taskcodec-cli-"))
    env = {**os.environ, "TASKCODEC_HOME": str(work / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    exe = [sys.executable, "-m", "taskcodec"]

    def run(*a: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([*exe, *a], env=env, check=True, capture_output=True, cwd=work)
        return time.perf_counter() - t0

    run("plan", TASK)
    run("compress", "--task", TASK, "--out", str(work / "out"), str(image))
    tcb = str(work / "out" / "astronaut.tcb")
    cases = {
        "plan (stored policy)": lambda i: run("plan", TASK),
        "ground (1 image)": lambda i: run("ground", "--task", TASK, str(image)),
        "info": lambda i: run("info", tcb),
        "why": lambda i: run("why", tcb),
        "decode --for human": lambda i: run("decode", tcb, "--for", "human", "--out", str(work / f"d{i}.png")),
        "compress (1 image, temporary Prefect server)": lambda i: run(
            "compress", "--task", TASK, "--out", str(work / f"c{i}"), str(image)),
    }
    rows = []
    for name, fn in cases.items():
        times = [fn(i) for i in range(args.repeat)]
        rows.append((name, statistics.median(times), min(times), max(times)))
        print(f"{name}: median {rows[-1][1]:.2f} s")
    if not args.no_docs:
        cmd = ("python benchmarks/cli_latency.py " + " ".join(sys.argv[1:])).strip()
        lines = [f"Command: `{cmd}` on {platform.machine()} with {os.cpu_count()} CPU cores; each command a "
                 f"fresh process, {args.repeat} runs, 512x512 image, default grounding.", "",
                 "| command | median s | min s | max s |", "|---|---|---|---|",
                 *[f"| `{n}` | {m:.2f} | {lo:.2f} | {hi:.2f} |" for n, m, lo, hi in rows]]
        write_section("cli", "Interactive command latency", "\n".join(lines))


if __name__ == "__main__":
    main()
