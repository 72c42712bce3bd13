"""Reads and writes of the audit store, one function per question or fact."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from taskcodec.domain.policy import TaskPolicy
from taskcodec.store import models as m
from taskcodec.store.models import utcnow


def latest_policy(s: Session, key: str, source: str, model: str, prompt_version: str) -> TaskPolicy | None:
    row = s.exec(
        select(m.Policy)
        .join(m.Task, m.Task.id == m.Policy.task_id)
        .where(m.Task.key == key, m.Policy.source == source, m.Policy.model == model,
               m.Policy.prompt_version == prompt_version)
        .order_by(m.Policy.version.desc())
    ).first()
    return None if row is None else _policy(row)


def _policy(row: m.Policy) -> TaskPolicy:
    return TaskPolicy.model_validate({**row.body, "policy_id": row.id, "version": row.version})


def get_policy(s: Session, policy_id: int) -> TaskPolicy | None:
    row = s.get(m.Policy, policy_id)
    return None if row is None else _policy(row)


def save_policy(s: Session, policy: TaskPolicy, only_if_absent: bool = False) -> TaskPolicy:
    """Store ``policy`` as the next version for its task; never overwrites an earlier version.

    With ``only_if_absent`` it stores version 1 or nothing: when another writer stored a
    policy for the same task, backend, model and prompt version first (the unique
    constraint on the version decides the race), that policy is returned instead.
    """
    prov = policy.provenance
    for _attempt in range(5):
        if only_if_absent:
            cached = latest_policy(s, policy.key, prov.source, prov.model, prov.prompt_version)
            if cached is not None:
                return cached
        try:
            task = s.exec(select(m.Task).where(m.Task.key == policy.key)).first()
            if task is None:
                task = m.Task(key=policy.key, text=policy.task)
                s.add(task)
                s.flush()
            version = 1 if only_if_absent else 1 + (s.exec(
                select(func.max(m.Policy.version)).where(
                    m.Policy.task_id == task.id, m.Policy.source == prov.source, m.Policy.model == prov.model,
                    m.Policy.prompt_version == prov.prompt_version)
            ).one() or 0)
            row = m.Policy(task_id=task.id, version=version, source=prov.source, model=prov.model,
                           prompt_version=prov.prompt_version, content_hash=policy.content_hash(),
                           body=policy.model_dump(mode="json", exclude={"policy_id", "version"}))
            s.add(row)
            s.commit()
            return _policy(row)
        except IntegrityError:  # a concurrent writer took this task key or version number
            s.rollback()
    raise RuntimeError(f"could not store a new policy version for task {policy.key!r}")


def record_agent_steps(s: Session, policy_id: int, task_key: str, steps: list[dict]) -> None:
    for i, step in enumerate(steps):
        outcome = {k: v for k, v in step.items() if k != "node"}
        s.add(m.AgentStep(policy_id=policy_id, task_key=task_key, seq=i, node=step["node"], outcome=outcome))
    s.commit()


def agent_steps(s: Session, policy_id: int) -> list[m.AgentStep]:
    return list(s.exec(select(m.AgentStep).where(m.AgentStep.policy_id == policy_id).order_by(m.AgentStep.seq)))


def record_image(s: Session, path: str, sha256: str, size_bytes: int, width: int, height: int) -> int:
    for _attempt in range(3):
        row = s.exec(select(m.Image).where(m.Image.sha256 == sha256, m.Image.path == path)).first()
        if row is not None:
            return row.id
        try:
            row = m.Image(path=path, sha256=sha256, size_bytes=size_bytes, width=width, height=height)
            s.add(row)
            s.commit()
            return row.id
        except IntegrityError:
            s.rollback()
    raise RuntimeError(f"could not record image {path}")


def start_run(s: Session, flow_name: str, flow_run_id: str | None, parameters: dict) -> int:
    """A new "running" row owned by this process; first, runs of this host whose process is gone are
    marked failed (a run killed with -9 never finishes its own row)."""
    import os
    import socket

    fail_dead_runs(s)
    row = m.Run(flow_name=flow_name, flow_run_id=flow_run_id, parameters=parameters, owner_pid=os.getpid(),
                owner_host=socket.gethostname())
    s.add(row)
    s.commit()
    return row.id


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def fail_dead_runs(s: Session) -> list[int]:
    """Mark failed every "running" row of this host whose owning process no longer exists."""
    import socket

    host = socket.gethostname()
    dead = [r for r in s.exec(select(m.Run).where(m.Run.status == "running", m.Run.owner_host == host))
            if r.owner_pid is not None and not _alive(r.owner_pid)]
    for r in dead:
        r.status, r.finished_at = "failed", utcnow()
        r.errors = [*r.errors, {"error": f"the process that ran it (pid {r.owner_pid} on {r.owner_host}) "
                                         "ended without finishing it (killed or crashed)"}]
        s.add(r)
    if dead:
        s.commit()
    return [r.id for r in dead]


def finish_run(s: Session, run_id: int, n_ok: int, errors: list[dict]) -> None:
    row = s.get(m.Run, run_id)
    row.n_ok, row.n_failed, row.errors = n_ok, len(errors), list(errors)
    row.status = "completed" if not errors else ("failed" if n_ok == 0 else "partial")
    row.finished_at = utcnow()
    s.add(row)
    s.commit()


def record_encoding(s: Session, encoding: m.Encoding, layers: list[m.Layer], decisions: list[m.Decision]) -> int:
    """One transaction: the encoding, its layers and every decision, or nothing."""
    try:
        s.add(encoding)
        s.flush()
        for row in (*layers, *decisions):
            row.encoding_id = encoding.id
            s.add(row)
        s.commit()
    except Exception:
        s.rollback()
        raise
    return encoding.id


@dataclass
class EncodingAudit:
    encoding: m.Encoding
    image: m.Image
    policy: TaskPolicy | None
    layers: list[m.Layer]
    decisions: list[m.Decision]


def audit(s: Session, enc: m.Encoding) -> EncodingAudit:
    layers = list(s.exec(select(m.Layer).where(m.Layer.encoding_id == enc.id).order_by(m.Layer.index)))
    decisions = list(s.exec(select(m.Decision).where(m.Decision.encoding_id == enc.id).order_by(m.Decision.id)))
    policy = get_policy(s, enc.policy_id) if enc.policy_id else None
    return EncodingAudit(enc, s.get(m.Image, enc.image_id), policy, layers, decisions)


def encoding_by_uid(s: Session, uid: str) -> m.Encoding | None:
    return s.exec(select(m.Encoding).where(m.Encoding.uid == uid)).first()


def encodings_of_image(s: Session, sha256: str) -> list[m.Encoding]:
    return list(s.exec(
        select(m.Encoding).join(m.Image, m.Image.id == m.Encoding.image_id)
        .where(m.Image.sha256 == sha256).order_by(m.Encoding.id)
    ))


def record_decode(s: Session, row: m.Decode) -> int:
    s.add(row)
    s.commit()
    return row.id


def decodes_of(s: Session, encoding_uid: str) -> list[m.Decode]:
    return list(s.exec(select(m.Decode).where(m.Decode.encoding_uid == encoding_uid).order_by(m.Decode.id)))
