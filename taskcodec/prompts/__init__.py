"""Prompt templates as files. The planner's system prompt is the label-generation
template followed by the importance-ranking template, rendered with the label
limit; the SHA-256 of that rendered text (first 16 hex digits) is the prompt
version stored with every policy the LLM makes. The task text goes in the user
message, so it never changes the version."""

from __future__ import annotations

import hashlib
from importlib import resources

TEMPLATES = ("label_generation.md", "importance_ranking.md")


def load(name: str) -> str:
    return resources.files("taskcodec.prompts").joinpath(name).read_text(encoding="utf-8")


def system_prompt(max_labels: int = 128) -> str:
    return "\n\n".join(load(t).strip() for t in TEMPLATES).replace("{max_labels}", str(max_labels))


def prompt_version(max_labels: int = 128) -> str:
    return hashlib.sha256(system_prompt(max_labels).encode()).hexdigest()[:16]


def user_message(task: str) -> str:
    return f"Task description (operator text, between the markers):\n<<<TASK\n{task}\nTASK>>>"
