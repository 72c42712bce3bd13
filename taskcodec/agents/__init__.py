"""Task agent: task text -> ``TaskPolicy`` (offline planner now; LLM agent plugs in here)."""

from taskcodec.agents.planner import plan_offline
from taskcodec.domain.policy import LabelSpec, Provenance, Rules, TaskPolicy, normalise_task, policy_from_labels

__all__ = ["LabelSpec", "Provenance", "Rules", "TaskPolicy", "normalise_task", "plan_offline", "policy_from_labels"]
