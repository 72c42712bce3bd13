"""The offline planner: task text -> ``TaskPolicy`` with no network. Deterministic.

    1. lexical: every vocabulary label the text names (name, synonym, plural) is a
       *direct* match (relevance 1.0); words that describe the capture or the job
       ("camera", "watch", "count") never are
    2. groups: a task word that names a group ("traffic", "privacy", "pets")
       brings its members in as *implied* matches (relevance 0.7)
    3. fallback: when 1 and 2 find nothing, the labels nearest to the task in
       all-MiniLM-L6-v2 space (cosine >= 0.5, at most 8) are implied matches
       (relevance 0.5)

Ranking: direct labels in order of mention; implied labels by MiniLM similarity
to the whole task text plus ``GROUP_PRIOR`` x (1 - place in its group / group
size), so a group's typical members lead unless the text says otherwise. Importance falls linearly
from the relevance down to 60 % of it for the last label, so an operator's
first-named objects matter most.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from taskcodec.domain.policy import LabelSpec, Provenance, Rules, TaskPolicy, normalise_task
from taskcodec.domain.vocabulary import load_vocabulary, singular_forms
from taskcodec.errors import PlanningError

PLANNER_NAME = "offline-minilm-v2"
DIRECT, IMPLIED, NEAREST = 1.0, 0.7, 0.5
NEAREST_MIN, NEAREST_MAX = 0.5, 8
GROUP_PRIOR = 0.3  # weight of the curated group order against MiniLM similarity


def planner_version() -> str:
    """The offline planner's equivalent of a prompt version: algorithm name + vocabulary hash."""
    return hashlib.sha256(f"{PLANNER_NAME}:{load_vocabulary().digest}".encode()).hexdigest()[:16]


def _find(phrase: str, text: str) -> int | None:
    """Position of ``phrase`` (or a plural of it) as whole words in ``text``."""
    m = re.search(r"\b" + re.escape(phrase) + r"(?:s|es)?\b", text)
    return None if m is None else m.start()


def _similarities(text: str, labels: list[str]) -> dict[str, float]:
    from taskcodec.domain.embeddings import similarities

    return similarities(text, list(labels))


@lru_cache(maxsize=1)
def _label_matrix():
    """Embeddings of every vocabulary label, cached on disk by vocabulary hash (about 3 s to compute)."""
    import io

    import numpy as np

    from taskcodec.imageio import atomic_write_bytes
    from taskcodec.settings import get_settings
    from taskcodec.domain.embeddings import default_embedder

    vocab = load_vocabulary()
    names = sorted(vocab.labels)
    path = get_settings().home_dir / "cache" / f"vocabulary-minilm-{vocab.digest[:16]}.npy"
    try:
        mat = np.load(path, allow_pickle=False)
        if mat.shape[0] == len(names):
            return names, mat
    except (OSError, ValueError):
        pass
    mat = default_embedder().encode(names)
    buf = io.BytesIO()
    np.save(buf, mat, allow_pickle=False)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError:  # a read-only data dir only costs the cache
        pass
    return names, mat


def nearest_labels(text: str, k: int = NEAREST_MAX, min_sim: float = NEAREST_MIN) -> list[tuple[str, float]]:
    from taskcodec.domain.embeddings import default_embedder

    names, mat = _label_matrix()
    sims = mat @ default_embedder().encode([text])[0]
    order = sims.argsort()[::-1][:k]
    return [(names[i], float(sims[i])) for i in order if sims[i] >= min_sim]


def candidates(text: str) -> dict[str, tuple[float, int, float]]:
    """label -> (relevance, position in text, place in its group in [0, 1)), lexical and group matches."""
    vocab = load_vocabulary()
    found: dict[str, tuple[float, int, int]] = {}

    def offer(label: str, relevance: float, pos: int, order: int) -> None:
        old = found.get(label)
        if old is None or (-relevance, pos, order) < (-old[0], old[1], old[2]):
            found[label] = (relevance, pos, order)

    for name, syns in vocab.labels.items():
        for phrase in (name, *syns):
            if " " in phrase and (pos := _find(phrase, text)) is not None:
                offer(name, DIRECT, pos, 0)
    for m in re.finditer(r"[a-z][a-z\-']*", text):
        word = m.group(0)
        if word in vocab.stopwords:
            continue
        label = vocab.canonical(word)
        if label is not None:
            offer(label, DIRECT, m.start(), 0)
    for group, members in vocab.groups.items():
        pos = _find(group, text)
        for form in singular_forms(group) if pos is None else ():
            if (pos := _find(form, text)) is not None:
                break
        if pos is not None:
            for order, member in enumerate(members):
                offer(member, IMPLIED, pos, order / len(members))
    return found


def plan_offline(task: str, rules: Rules | None = None) -> TaskPolicy:
    """Turn a task description into a policy using the built-in vocabulary and MiniLM."""
    key = normalise_task(task)
    vocab = load_vocabulary()
    text = key.replace("_", " ")
    found = candidates(text)
    if not found:
        for i, (label, _sim) in enumerate(nearest_labels(text)):
            found[label] = (NEAREST, 10_000 + i, 0.0)
    if not found:
        raise PlanningError(
            f"no object the offline planner knows is named or implied by the task {task!r}; "
            "name the objects that matter (e.g. 'people, cars, faces') or configure an LLM "
            "(TASKCODEC_LLM_BASE_URL)"
        )
    implied = [name for name, (rel, _p, _o) in found.items() if rel < DIRECT]
    sims = _similarities(text, implied) if implied else {}

    def order(item):
        name, (rel, pos, grp) = item
        if rel >= DIRECT:
            return (0, pos, 0.0, name)
        return (1, -rel, -round(sims.get(name, 0.0) + GROUP_PRIOR * (1 - grp), 6), name)

    ordered = sorted(found.items(), key=order)
    n = len(ordered)
    labels = tuple(
        LabelSpec(name=name, importance=round(rel * (1.0 - 0.4 * i / max(1, n - 1)), 3), rank=i + 1,
                  synonyms=vocab.synonyms(name), groundable=True)
        for i, (name, (rel, _pos, _grp)) in enumerate(ordered)
    )
    return TaskPolicy(
        task=task.strip(), key=key, labels=labels, rules=rules or Rules(),
        provenance=Provenance(source="offline", model=PLANNER_NAME, prompt_version=planner_version()),
    )
