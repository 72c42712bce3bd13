"""The offline planner: task text -> ``TaskPolicy`` with no network and no model.

Deterministic. Every label the text names (by name, synonym or plural) is a
*direct* match; a task word that names a group ("traffic", "privacy", "pets")
brings the group's members in as *implied* matches. Labels are ranked by

    relevance (direct 1.0, implied 0.7)  ->  first mention in the text  ->  order in the group

and importance falls from the relevance linearly with rank, down to 60 % of
it for the last label, so an operator's first-named objects matter most.
"""

from __future__ import annotations

import hashlib
import re

from taskcodec.agents.policy import LabelSpec, Provenance, Rules, TaskPolicy, normalise_task
from taskcodec.agents.vocabulary import load_vocabulary, singular_forms
from taskcodec.errors import PlanningError

PLANNER_NAME = "offline-vocabulary-v1"
DIRECT, IMPLIED = 1.0, 0.7


def planner_version() -> str:
    """The offline planner's equivalent of a prompt version: algorithm name + vocabulary hash."""
    return hashlib.sha256(f"{PLANNER_NAME}:{load_vocabulary().digest}".encode()).hexdigest()[:16]


def _find(phrase: str, text: str) -> int | None:
    """Position of ``phrase`` (or a plural of it) as whole words in ``text``."""
    pattern = r"\b" + re.escape(phrase) + r"(?:s|es)?\b"
    m = re.search(pattern, text)
    return None if m is None else m.start()


def _word_positions(text: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group(0)) for m in re.finditer(r"[a-z][a-z\-']*", text)]


def plan_offline(task: str, rules: Rules | None = None) -> TaskPolicy:
    """Turn a task description into a policy using the built-in vocabulary."""
    key = normalise_task(task)
    vocab = load_vocabulary()
    text = key.replace("_", " ")

    # (relevance, position, order-in-group) per canonical label; keep the best.
    found: dict[str, tuple[float, int, int]] = {}

    def offer(label: str, relevance: float, pos: int, order: int) -> None:
        cand = (relevance, pos, order)
        old = found.get(label)
        if old is None or (-cand[0], cand[1], cand[2]) < (-old[0], old[1], old[2]):
            found[label] = cand

    for name, syns in vocab.labels.items():
        for phrase in (name, *syns):
            if " " in phrase:
                pos = _find(phrase, text)
                if pos is not None:
                    offer(name, DIRECT, pos, 0)
    for pos, word in _word_positions(text):
        label = vocab.canonical(word)
        if label is not None:
            offer(label, DIRECT, pos, 0)
    for group, members in vocab.groups.items():
        pos = _find(group, text)
        if pos is None:
            for form in singular_forms(group):
                pos = _find(form, text)
                if pos is not None:
                    break
        if pos is not None:
            for order, member in enumerate(members):
                offer(member, IMPLIED, pos, order)

    if not found:
        raise PlanningError(
            f"no object the offline planner knows is named or implied by the task {task!r}; "
            "name the objects that matter (e.g. 'people, cars, faces') or configure an LLM "
            "(TASKCODEC_LLM_BASE_URL)"
        )
    ordered = sorted(found.items(), key=lambda kv: (-kv[1][0], kv[1][1], kv[1][2], kv[0]))
    n = len(ordered)
    labels = tuple(
        LabelSpec(
            name=name,
            importance=round(rel * (1.0 - 0.4 * i / max(1, n - 1)), 3),
            rank=i + 1,
            synonyms=vocab.synonyms(name),
            groundable=True,
        )
        for i, (name, (rel, _pos, _order)) in enumerate(ordered)
    )
    return TaskPolicy(
        task=task.strip(),
        key=key,
        labels=labels,
        rules=rules or Rules(),
        provenance=Provenance(source="offline", model=PLANNER_NAME, prompt_version=planner_version()),
    )
