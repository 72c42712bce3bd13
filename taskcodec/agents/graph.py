"""The task agent: a LangGraph ``StateGraph`` from task text to a stored ``TaskPolicy``.

    START -> normalise -> lookup --hit--> END
                            |
                          miss -> propose -> validate -> rank -> persist -> END

* normalise  the cache key, and the backend: ``llm`` when an endpoint is configured, else ``offline``
* lookup     the newest stored policy for (key, backend, model, prompt version), unless refreshing
* propose    the LLM's ``LabelProposal``; on any failure the offline planner, recorded as a fallback
* validate   lower case, singular, canonical names; drop duplicates, malformed, abstract and
             surplus labels, each with its reason
* rank       importance as proposed (clamped to [0, 1]); ties by MiniLM relevance to the task
* persist    the policy as a new immutable version, and every node's outcome as ``agent_steps`` rows
"""

from __future__ import annotations

import operator
import re
import time
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from taskcodec.agents.planner import PLANNER_NAME, plan_offline, planner_version
from taskcodec.domain.policy import _LABEL_RE, MAX_LABELS, LabelSpec, Provenance, Rules, TaskPolicy, normalise_task
from taskcodec.domain.vocabulary import load_vocabulary
from taskcodec.errors import PlanningError
from taskcodec.settings import Settings, get_settings

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

# Scene regions, stuff and abstractions a detector cannot box (DISCOVER leaves these out too).
ABSTRACT = frozenset({
    "sky", "road", "street", "grass", "river", "water", "sea", "ocean", "lake", "wall", "floor", "ceiling",
    "ground", "field", "sand", "snow", "cloud", "clouds", "fog", "background", "foreground", "scene", "area",
    "region", "environment", "landscape", "weather", "light", "lighting", "shadow", "safety", "security",
    "traffic", "traffic flow", "congestion", "activity", "behaviour", "behavior", "motion", "movement",
    "speed", "density", "object", "objects", "thing", "item", "stuff", "everything", "anything",
})


class PlanState(TypedDict, total=False):
    task: str
    refresh: bool
    key: str
    source: str
    model: str
    prompt_version: str
    cached: bool
    policy: dict | None
    granularity: str
    proposed: list[dict]
    labels: list[dict]
    steps: Annotated[list[dict], operator.add]


def _step(node: str, **outcome: Any) -> dict:
    return {"node": node, "at": time.time(), **outcome}


def validate_labels(proposed: list[dict], limit: int = MAX_LABELS) -> tuple[list[dict], list[dict]]:
    """Clean a proposal: (kept labels, dropped labels with reasons). Pure and deterministic."""
    vocab = load_vocabulary()
    kept: dict[str, dict] = {}
    dropped: list[dict] = []
    for item in proposed:
        raw = str(item.get("name", ""))
        name = re.sub(r"\s+", " ", raw.strip().lower()).strip(" .,;:!?\"")
        if not _LABEL_RE.match(name):
            dropped.append({"name": raw[:80], "reason": "malformed"})
            continue
        name = vocab.canonical(name) or name
        if name in ABSTRACT:
            dropped.append({"name": name, "reason": "abstract"})
            continue
        try:
            imp = min(1.0, max(0.0, float(item.get("importance", 0.5))))
        except (TypeError, ValueError):
            imp = 0.5
        if imp != imp:  # NaN
            imp = 0.5
        syns = [s for s in (re.sub(r"\s+", " ", str(x).strip().lower()) for x in item.get("synonyms", []))
                if _LABEL_RE.match(s) and s != name][:8]
        if name in kept:
            dropped.append({"name": raw[:80], "reason": f"duplicate of '{name}'"})
            kept[name]["importance"] = max(kept[name]["importance"], imp)
            continue
        kept[name] = {"name": name, "importance": imp, "synonyms": list(dict.fromkeys([*syns, *vocab.synonyms(name)]))[:12],
                      "groundable": vocab.canonical(name) is not None or name in vocab.groups}
    labels = list(kept.values())
    if len(labels) > limit:
        labels.sort(key=lambda l: -l["importance"])
        dropped += [{"name": l["name"], "reason": f"over the limit of {limit} labels"} for l in labels[limit:]]
        labels = labels[:limit]
    return labels, dropped


def rank_labels(task_key: str, labels: list[dict]) -> list[LabelSpec]:
    from taskcodec.domain.embeddings import similarities

    rel = similarities(task_key, [l["name"] for l in labels])
    ordered = sorted(labels, key=lambda l: (-round(l["importance"], 6), -round(rel[l["name"]], 6), l["name"]))
    return [LabelSpec(name=l["name"], importance=round(l["importance"], 3), rank=i + 1, synonyms=tuple(l["synonyms"]),
                      groundable=l["groundable"]) for i, l in enumerate(ordered)]


def backend_identity(settings: Settings) -> dict:
    """Which planner answers with these settings: the policy cache is keyed by it."""
    from taskcodec.agents.llm import llm_configured, llm_identity

    if llm_configured(settings):
        model, version = llm_identity(settings)
        return {"source": "llm", "model": model, "prompt_version": version}
    return {"source": "offline", "model": PLANNER_NAME, "prompt_version": planner_version()}


def cached_policy(key: str, backend: dict, settings: Settings) -> TaskPolicy | None:
    from taskcodec.store import repo
    from taskcodec.store.db import session

    with session(settings) as s:
        return repo.latest_policy(s, key, backend["source"], backend["model"], backend["prompt_version"])


def cached_fallback(key: str, backend: dict, settings: Settings) -> TaskPolicy | None:
    """With an LLM configured: the offline policy made when the LLM last failed on this task, while it
    is younger than ``llm_fallback_ttl_s`` (so an unreachable endpoint is not paid for on every call)."""
    from datetime import datetime, timezone

    from taskcodec.store import repo
    from taskcodec.store.db import session

    if backend["source"] != "llm":
        return None
    with session(settings) as s:
        hit = repo.latest_policy(s, key, "offline", PLANNER_NAME, planner_version())
        if hit is None:
            return None
        failed = any(st.node == "propose" and st.outcome.get("backend") == "llm" and st.outcome.get("outcome") == "failed"
                     for st in repo.agent_steps(s, hit.policy_id))
    made = hit.provenance.created_at
    age = (datetime.now(timezone.utc) - (made if made.tzinfo else made.replace(tzinfo=timezone.utc))).total_seconds()
    return hit if failed and age < settings.llm_fallback_ttl_s else None


def _hit_step(hit: TaskPolicy, backend: dict) -> dict:
    if hit.provenance.source == backend["source"]:
        return _step("lookup", outcome="hit", policy_id=hit.policy_id, version=hit.version)
    return _step("lookup", outcome="hit (offline fallback: the LLM failed on this task recently and is asked again "
                                   "once TASKCODEC_LLM_FALLBACK_TTL_S has passed)",
                 policy_id=hit.policy_id, version=hit.version)


# ---- the nodes: module-level functions of (state, config); the run's Settings ride in the config ----

def _settings(config: RunnableConfig | None) -> Settings:
    return ((config or {}).get("configurable") or {}).get("settings") or get_settings()


def normalise(state: PlanState, config: RunnableConfig) -> PlanState:
    key = normalise_task(state["task"])
    backend = backend_identity(_settings(config))
    return {"key": key, **backend, "steps": [_step("normalise", key=key, **backend)]}


def lookup(state: PlanState, config: RunnableConfig) -> PlanState:
    if state.get("refresh"):
        return {"cached": False, "steps": [_step("lookup", outcome="skipped (--refresh)")]}
    settings = _settings(config)
    hit = cached_policy(state["key"], state, settings) or cached_fallback(state["key"], state, settings)
    if hit is None:
        return {"cached": False, "steps": [_step("lookup", outcome="miss")]}
    return {"cached": True, "policy": hit.model_dump(mode="json"), "steps": [_hit_step(hit, state)]}


def propose(state: PlanState, config: RunnableConfig) -> PlanState:
    if state["source"] == "llm":
        from taskcodec.agents.llm import LLMFailure, propose_llm

        try:
            res = propose_llm(state["task"], _settings(config))
        except LLMFailure as exc:
            offline = plan_offline(state["task"])
            return {"source": "offline", "model": PLANNER_NAME, "prompt_version": planner_version(),
                    "granularity": offline.granularity,
                    "proposed": [l.model_dump() for l in offline.labels],
                    "steps": [_step("propose", backend="llm", outcome="failed", reason=exc.reason,
                                    requests=exc.attempts),
                              _step("propose", backend="offline", outcome="fallback",
                                    proposed=len(offline.labels))]}
        p = res.proposal
        if p.refusal and not p.labels:
            raise PlanningError(f"the LLM declined to plan this task: {p.refusal[:300]}")
        return {"granularity": p.granularity, "proposed": [l.model_dump() for l in p.labels],
                "steps": [_step("propose", backend="llm", outcome="repaired" if res.repaired else "answered",
                                proposed=len(p.labels), requests=res.attempts)]}
    offline = plan_offline(state["task"])
    return {"granularity": offline.granularity, "proposed": [l.model_dump() for l in offline.labels],
            "steps": [_step("propose", backend="offline", outcome="answered", proposed=len(offline.labels))]}


def validate(state: PlanState, config: RunnableConfig) -> PlanState:
    labels, dropped = validate_labels(state["proposed"])
    if not labels:
        raise PlanningError(f"no usable object label was proposed for the task {state['task']!r} "
                            f"({len(dropped)} dropped: {', '.join(d['name'] + ': ' + d['reason'] for d in dropped[:5])})")
    return {"labels": labels, "steps": [_step("validate", proposed=len(state["proposed"]), kept=len(labels),
                                              dropped=dropped)]}


def rank(state: PlanState, config: RunnableConfig) -> PlanState:
    specs = rank_labels(state["key"], state["labels"])
    policy = TaskPolicy(task=state["task"].strip(), key=state["key"], granularity=state.get("granularity", "object"),
                        labels=tuple(specs), rules=Rules(),
                        provenance=Provenance(source=state["source"], model=state["model"],
                                              prompt_version=state["prompt_version"]))
    return {"policy": policy.model_dump(mode="json"),
            "steps": [_step("rank", top=[(s.name, s.importance) for s in specs[:5]])]}


def persist(state: PlanState, config: RunnableConfig) -> PlanState:
    from taskcodec.store import repo
    from taskcodec.store.db import session

    policy = TaskPolicy.model_validate(state["policy"])
    with session(_settings(config)) as s:
        stored = repo.save_policy(s, policy, only_if_absent=not state.get("refresh"))
        steps = state["steps"] + [_step("persist", policy_id=stored.policy_id, version=stored.version)]
        if stored.content_hash() == policy.content_hash():
            repo.record_agent_steps(s, stored.policy_id, state["key"], steps)
    return {"policy": stored.model_dump(mode="json"), "steps": steps[-1:]}


NODES = (normalise, lookup, propose, validate, rank, persist)


def build_graph():
    """The graph of ``NODES`` (see the module docstring); run it with ``config={"configurable":
    {"settings": settings}}``."""
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(PlanState)
    for fn in NODES:
        g.add_node(fn.__name__, fn)
    g.add_edge(START, "normalise")
    g.add_edge("normalise", "lookup")
    g.add_conditional_edges("lookup", lambda s: "hit" if s.get("cached") else "miss", {"hit": END, "miss": "propose"})
    g.add_edge("propose", "validate")
    g.add_edge("validate", "rank")
    g.add_edge("rank", "persist")
    g.add_edge("persist", END)
    return g.compile()


def run_agent(task: str, refresh: bool = False, settings: Settings | None = None) -> tuple[TaskPolicy, PlanState]:
    """Plan ``task``: the cached policy, or a new one made and stored by the graph."""
    s = settings or get_settings()
    key = normalise_task(task)  # a clear error before anything runs
    if not refresh:  # a stored policy answers without building the graph (saves the LangGraph import)
        backend = backend_identity(s)
        hit = cached_policy(key, backend, s) or cached_fallback(key, backend, s)
        if hit is not None:
            return hit, {"task": task, "key": key, **backend, "cached": True, "policy": hit.model_dump(mode="json"),
                         "steps": [_hit_step(hit, backend)]}
    state = build_graph().invoke({"task": task, "refresh": refresh, "steps": []}, config={"configurable": {"settings": s}})
    return TaskPolicy.model_validate(state["policy"]), state
