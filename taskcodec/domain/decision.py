"""What one decision about one candidate object records, declared once (SQLModel's base/table
pattern): ``taskcodec.decisions.Decision`` is the pipeline's model and ``taskcodec.store.models.Decision``
the audit store's table, both built on ``DecisionFields``."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import JSON, Column
from sqlmodel import AutoString, Field, SQLModel

from taskcodec.domain.geometry import Box

Action = Literal["transmit", "drop", "downgrade"]


class DecisionFields(SQLModel):
    object_index: int | None = None  # index into the grounding detections; None for label-level rows
    label: str | None = None
    class_name: str | None = None
    box: Box | None = Field(default=None, sa_column=Column(JSON))
    action: Action = Field(sa_type=AutoString)
    reason: str = Field(index=True)
    sentence: str = ""
    score: float | None = None
    threshold: float | None = None
    rank: int | None = None
    importance: float | None = None
    budget: int | None = None
    layer_index: int | None = None
    quality: int | None = None
    bytes: int | None = None
    backend: str | None = None
    numbers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # anything else
