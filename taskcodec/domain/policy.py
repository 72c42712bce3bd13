"""``TaskPolicy``: what a task needs transmitted, and how well.

A policy is immutable once stored; refreshing a task makes a new version and
every encoding keeps pointing at the exact version (``policy_id``) it used.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from taskcodec.errors import PlanningError

Tier = Literal["high", "medium", "low"]

MAX_TASK_CHARS = 2000
_LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9 \-']{0,62}$")


def normalise_task(text: str) -> str:
    """The cache key of a task: lower case, single spaces, no surrounding punctuation."""
    if text is None or not str(text).strip():
        raise PlanningError("task text is empty: describe what the images are for, e.g. 'count cars and people'")
    if len(text) > MAX_TASK_CHARS:
        raise PlanningError(f"task text is {len(text)} characters; the limit is {MAX_TASK_CHARS}")
    key = re.sub(r"\s+", " ", str(text).strip().lower())
    return key.strip(" .!?;:,")


MAX_LABELS = 128  # the most labels a policy keeps (the agent drops the rest, with a reason)


class LabelSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    importance: float = Field(ge=0.0, le=1.0, description="Higher = more important.")
    rank: int = Field(ge=1, description="1 = most important.")
    synonyms: tuple[str, ...] = ()
    groundable: bool = True

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        v = v.strip().lower()
        if not _LABEL_RE.match(v):
            raise ValueError(f"label {v!r} must be 1-63 characters of a-z, 0-9, space, - or '")
        return v


class Rules(BaseModel):
    model_config = ConfigDict(frozen=True)

    min_score: float = Field(default=0.4, ge=0.0, le=1.0, description="Detections below are dropped.")
    max_objects: int = Field(default=32, ge=0, le=1000)
    quality_offset: dict[str, int] = Field(
        default_factory=lambda: {"high": 0, "medium": -10, "low": -20},
        description="Added to the requested quality for objects of each importance tier.",
    )
    background: Literal["coarse", "none"] = "coarse"

    @staticmethod
    def tier(importance: float) -> Tier:
        if importance >= 0.75:
            return "high"
        if importance >= 0.4:
            return "medium"
        return "low"


class Provenance(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: Literal["offline", "llm", "labels"]
    model: str
    prompt_version: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))


class TaskPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    task: str
    key: str
    granularity: str = "object"
    labels: tuple[LabelSpec, ...]
    rules: Rules = Field(default_factory=Rules)
    provenance: Provenance
    policy_id: int | None = None
    version: int | None = None

    def content_hash(self) -> str:
        """Hash of what decides the encoding (not of ids or timestamps)."""
        body = {
            "key": self.key,
            "granularity": self.granularity,
            "labels": [l.model_dump(mode="json") for l in self.labels],
            "rules": self.rules.model_dump(mode="json"),
            "source": self.provenance.source,
            "model": self.provenance.model,
            "prompt_version": self.provenance.prompt_version,
        }
        blob = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def label(self, name: str) -> LabelSpec | None:
        """The policy label a detector class name stands for (its name or a synonym)."""
        n = name.strip().lower()
        for spec in self.labels:
            if n == spec.name or n in spec.synonyms:
                return spec
        return None

    @property
    def label_names(self) -> list[str]:
        return [l.name for l in self.labels]


def policy_from_labels(names: list[str], min_score: float | None = None) -> TaskPolicy:
    """An ad-hoc policy from an explicit label list (``--labels``), importance by order."""
    from taskcodec.domain.vocabulary import load_vocabulary

    vocab = load_vocabulary()
    cleaned: list[str] = []
    for raw in names:
        n = raw.strip().lower()
        if n and n not in cleaned:
            cleaned.append(vocab.canonical(n) or n)
    if not cleaned:
        raise PlanningError("--labels is empty: give at least one label, e.g. --labels person,car")
    n = len(cleaned)
    labels = tuple(
        LabelSpec(
            name=name,
            importance=round(1.0 - 0.5 * i / max(1, n - 1), 3) if n > 1 else 1.0,
            rank=i + 1,
            synonyms=vocab.synonyms(name),
            groundable=vocab.canonical(name) is not None or name in vocab.groups,
        )
        for i, name in enumerate(cleaned)
    )
    rules = Rules() if min_score is None else Rules(min_score=min_score)
    text = ", ".join(cleaned)
    return TaskPolicy(
        task=text,
        key="labels: " + text,
        labels=labels,
        rules=rules,
        provenance=Provenance(source="labels", model="explicit", prompt_version="-"),
    )
