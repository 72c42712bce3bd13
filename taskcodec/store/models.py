"""The audit store's tables. Rows are appended, never rewritten: a policy is a new
version, an encoding is a new row, and every decision the pipeline takes is a row."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from taskcodec.domain.decision import DecisionFields


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def json_column(empty: type = dict) -> Any:
    """A JSON column that is never NULL (an empty ``dict``/``list`` by default): settings, timings,
    numbers. A function, since each table needs its own ``Column``."""
    return Field(default_factory=empty, sa_column=Column(JSON, nullable=False))


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, unique=True, description="normalised task text")
    text: str
    created_at: datetime = Field(default_factory=utcnow)


class Policy(SQLModel, table=True):
    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("task_id", "source", "model", "prompt_version", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="tasks.id", index=True)
    version: int
    source: str
    model: str
    prompt_version: str
    content_hash: str = Field(index=True)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Image(SQLModel, table=True):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("sha256", "path"),)
    id: int | None = Field(default=None, primary_key=True)
    path: str
    sha256: str = Field(index=True)
    size_bytes: int
    width: int
    height: int
    created_at: datetime = Field(default_factory=utcnow)


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    id: int | None = Field(default=None, primary_key=True)
    flow_name: str
    flow_run_id: str | None = Field(default=None, index=True)
    parameters: dict[str, Any] = json_column()
    status: str = "running"
    n_ok: int = 0
    n_failed: int = 0
    errors: list[Any] = json_column(list)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    owner_pid: int | None = None  # the process that runs it: a "running" row whose process is gone died
    owner_host: str | None = None


class Encoding(SQLModel, table=True):
    __tablename__ = "encodings"
    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(index=True, unique=True, description="also written into the bitstream header")
    archive_key: str | None = Field(default=None, unique=True,
                                    description="archive flow: hash of image content, policy version and codec settings")
    image_id: int = Field(foreign_key="images.id", index=True)
    policy_id: int | None = Field(default=None, foreign_key="policies.id", index=True)
    run_id: int | None = Field(default=None, foreign_key="runs.id", index=True)
    codec: str
    codec_version: str
    settings: dict[str, Any] = json_column()
    grounding: str | None = None
    bitstream_path: str
    bitstream_sha256: str = Field(index=True)
    bytes: int
    bpp: float
    timings: dict[str, Any] = json_column()
    created_at: datetime = Field(default_factory=utcnow)


class Layer(SQLModel, table=True):
    """A layer of a stored encoding: the audit's copy of the header's layer-table row
    (``codec.header.LayerEntry``), made by ``from_entry`` and nowhere else."""

    __tablename__ = "layers"
    id: int | None = Field(default=None, primary_key=True)
    encoding_id: int = Field(foreign_key="encodings.id", index=True)
    index: int
    kind: str
    label: str | None = None
    box: list[float] | None = Field(default=None, sa_column=Column(JSON))
    importance: float | None = None
    quality: int | None = None
    bytes: int

    @classmethod
    def from_entry(cls, entry: Any, encoding_id: int = 0) -> "Layer":
        """The row of a ``LayerEntry`` (its payload ``length`` is the row's ``bytes``)."""
        return cls(encoding_id=encoding_id, index=entry.index, kind=entry.kind, label=entry.label,
                   box=list(entry.box) if entry.box else None, importance=entry.importance,
                   quality=entry.quality, bytes=entry.length)


class Decision(DecisionFields, table=True):
    """A decision as the audit keeps it: the pipeline's fields (``DecisionFields``) and its encoding."""

    __tablename__ = "decisions"
    id: int | None = Field(default=None, primary_key=True)
    encoding_id: int = Field(foreign_key="encodings.id", index=True)


class AgentStep(SQLModel, table=True):
    """One node of the task agent's run that made a policy: what it did and why."""

    __tablename__ = "agent_steps"
    id: int | None = Field(default=None, primary_key=True)
    policy_id: int = Field(foreign_key="policies.id", index=True)
    task_key: str = Field(index=True)
    seq: int
    node: str
    outcome: dict[str, Any] = json_column()
    created_at: datetime = Field(default_factory=utcnow)


class Decode(SQLModel, table=True):
    """An output made from a bitstream: which route, which model, where, and its mask."""

    __tablename__ = "decodes"
    id: int | None = Field(default=None, primary_key=True)
    encoding_uid: str = Field(index=True)
    bitstream_sha256: str
    route: str  # human:classical, human:diffusion, human:none, machine:detect, machine:classify
    output_path: str
    mask_path: str | None = None
    meta: dict[str, Any] = json_column()
    created_at: datetime = Field(default_factory=utcnow)


class Schedule(SQLModel, table=True):
    """A standing archival job: served on its schedule (a cron or an interval, in a timezone) by
    ``taskcodec serve``; a paused one is kept but not run."""

    __tablename__ = "schedules"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    cron: str | None = None
    interval_s: float | None = None
    timezone: str | None = None
    paused: bool = False
    parameters: dict[str, Any] = json_column()
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
