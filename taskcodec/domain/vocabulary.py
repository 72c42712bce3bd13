"""The built-in open vocabulary: COCO, Objects365 and LVIS class names plus labels the
offline detectors find, with synonyms and task-level groups ("traffic" -> car, person, ...).
Each label lists its ``sources``; Objects365 and LVIS names were taken from the
dataset metadata in mmdet 3.3.0 (Apache-2.0), singular and lower-cased.

The data lives in ``vocabulary.json``; its hash is part of the offline planner's version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Vocabulary:
    labels: dict[str, tuple[str, ...]]  # canonical name -> synonyms
    groups: dict[str, tuple[str, ...]]  # group word -> member labels, most typical first
    coco: frozenset[str]
    digest: str
    stopwords: frozenset[str] = frozenset()  # task words that never name an object (camera, watch, ...)
    _alias: dict[str, str] = field(default_factory=dict, repr=False)

    def canonical(self, word: str) -> str | None:
        """Canonical label for a name or synonym (singular or plural), else None."""
        w = word.strip().lower()
        for form in (w, *singular_forms(w)):
            if form in self._alias:
                return self._alias[form]
        return None

    def synonyms(self, name: str) -> tuple[str, ...]:
        return self.labels.get(name, ())


def singular_forms(word: str) -> list[str]:
    """Candidate singulars of an English plural (enough for object nouns)."""
    out = []
    if word.endswith("ies") and len(word) > 4:
        out.append(word[:-3] + "y")
    if word.endswith(("ches", "shes", "xes", "ses")):
        out.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss"):
        out.append(word[:-1])
    return out


@lru_cache(maxsize=1)
def load_vocabulary() -> Vocabulary:
    raw = resources.files("taskcodec.domain").joinpath("vocabulary.json").read_bytes()
    data = json.loads(raw)
    labels = {e["name"]: tuple(e["synonyms"]) for e in data["labels"]}
    alias: dict[str, str] = {}
    for name, syns in labels.items():
        alias.setdefault(name, name)
        for s in syns:
            alias.setdefault(s, name)
    return Vocabulary(
        labels=labels,
        groups={k: tuple(v) for k, v in data["groups"].items()},
        coco=frozenset(e["name"] for e in data["labels"] if "coco" in e["sources"]),
        digest=hashlib.sha256(raw).hexdigest(),
        stopwords=frozenset(data.get("stopwords", ())),
        _alias=alias,
    )
