"""The policy step: which grounded objects are transmitted, and why.

``decide`` makes the provisional decision for every candidate (every detection,
every policy label the backend cannot ground or did not find, and the
background). The encoder then settles what needs byte counts (budget,
overlap) and ``settle`` folds its outcomes in, so each final decision carries
its action, a reason code, the numbers behind it and one plain sentence.

Reason codes
    in_policy          transmit: label in policy, score >= threshold
    low_confidence     transmit: label in policy, recall floor <= score < threshold: sent after every
                       confident object as a cheap layer (the low tier's quality), since a consumer
                       cannot find what was never sent (recall before precision)
    likely_area        transmit: the likely area of a label the backend cannot detect
                       (``--uncovered area``), at the low tier's quality
    budget_downgrade   downgrade: sent at lower quality to fit --budget-bytes
    budget_exhausted   drop: did not fit the byte budget even downgraded
    covered            drop: every pixel already sent by a more important layer
    not_in_policy      drop: the detector's class maps to no policy label
    below_threshold    drop: score under the recall floor (or the threshold, with no floor)
    max_objects        drop: over the policy's maximum object count
    ungroundable       drop: the backend has no class for this policy label (its likely
                       area, or the whole image, may be sent instead: ``--uncovered``)
    not_detected       drop: a groundable policy label with no detection here
    background_coarse  transmit: coarse base layer of the whole image
    background_none    drop: the policy asks for no background
    full_image         transmit: whole-image mode, no task (``compress --full``), or
                       ``--uncovered whole`` when the backend cannot detect a policy label
"""

from __future__ import annotations

from typing import Any

from taskcodec.codec.api import ObjectOutcome, ObjectRequest
from taskcodec.domain.decision import DecisionFields
from taskcodec.domain.policy import Rules, TaskPolicy
from taskcodec.grounding.base import GroundingResult
from taskcodec.grounding.coverage import LIKELY_AREA

class Decision(DecisionFields):
    """One decision about one candidate: its action, reason code, numbers and sentence."""


RECALL_FLOOR_RATIO = 0.5  # the default recall floor, as a share of the threshold


def recall_floor(threshold: float, floor: float | None = None) -> float:
    """The score above which an object under the threshold is still sent, cheaply (default: half the threshold)."""
    return min(threshold, RECALL_FLOOR_RATIO * threshold if floor is None else floor)


def decide(grounding: GroundingResult, policy: TaskPolicy, threshold: float | None = None,
           floor: float | None = None) -> list[Decision]:
    """Every candidate's provisional decision: confident objects (score >= threshold) in policy rank order,
    then low-confidence ones (``floor`` <= score < threshold, default half the threshold) in the same
    order, up to the policy's ``max_objects``."""
    thr = policy.rules.min_score if threshold is None else threshold
    low = recall_floor(thr, floor)
    out: list[Decision] = []
    candidates: list[Decision] = []
    for i, d in enumerate(grounding.detections):
        spec = policy.label(d.label) if d.label else None
        common = dict(
            object_index=i, label=d.label, class_name=d.class_name, box=d.box, score=d.score,
            threshold=thr, backend=d.backend,
            numbers={"raw_score": d.raw_score, **({"match": d.match} if d.match else {})},
        )
        if spec is None:
            out.append(Decision(action="drop", reason="not_in_policy", **common))
        elif d.score < low:
            out.append(Decision(action="drop", reason="below_threshold", rank=spec.rank, importance=spec.importance,
                                **{**common, "numbers": {**common["numbers"], "recall_floor": low}}))
        else:
            reason = ("likely_area" if (d.match or "").startswith(LIKELY_AREA) else
                      "in_policy" if d.score >= thr else "low_confidence")
            if reason == "low_confidence":
                common["numbers"] = {**common["numbers"], "recall_floor": low}
            candidates.append(Decision(action="transmit", reason=reason, rank=spec.rank, importance=spec.importance,
                                       **common))
    candidates.sort(key=lambda c: (c.reason == "low_confidence", c.rank, -(c.score or 0.0), c.object_index))
    limit = policy.rules.max_objects
    for n, c in enumerate(candidates):
        if n >= limit:
            c = c.model_copy(update={"action": "drop", "reason": "max_objects", "numbers": {**c.numbers, "position": n + 1, "max_objects": limit}})
        out.append(c)
    seen = {d.label for d in grounding.detections if d.label}
    for spec in policy.labels:
        numbers: dict[str, Any] = {}
        if spec.name in grounding.ungroundable:
            reason = "ungroundable"
            numbers["likely_areas"] = sum(d.label == spec.name for d in candidates if d.reason == "likely_area")
        elif spec.name not in seen:
            reason = "not_detected"
        else:
            continue
        out.append(Decision(label=spec.name, action="drop", reason=reason, rank=spec.rank, numbers=numbers,
                            importance=spec.importance, threshold=thr, backend=grounding.backend))
    background = policy.rules.background
    out.insert(0, Decision(action="transmit" if background == "coarse" else "drop",
                           reason=f"background_{background}", label="background"))
    return out


def requests_for(decisions: list[Decision], rules: Rules) -> list[ObjectRequest]:
    """The provisionally transmitted objects, most important first."""
    return [
        ObjectRequest(object_index=d.object_index, label=d.label, box=d.box, importance=d.importance or 0.0,
                      tier="low" if d.reason in ("likely_area", "low_confidence") else rules.tier(d.importance or 0.0))
        for d in decisions
        if d.action == "transmit" and d.object_index is not None
    ]


def settle(
    decisions: list[Decision], outcomes: list[ObjectOutcome], base: dict[str, Any] | None, budget: int | None
) -> list[Decision]:
    """Fold the encoder's outcomes into the decisions and write every sentence."""
    by_index = {o.object_index: o for o in outcomes}
    final = []
    for d in decisions:
        upd: dict[str, Any] = {"budget": budget}
        o = by_index.get(d.object_index) if d.object_index is not None else None
        if o is not None:  # the encoder's "in_policy" means "sent as asked": keep why it was asked
            upd.update(action=o.action, reason=d.reason if o.reason == "in_policy" else o.reason,
                       layer_index=o.layer_index, quality=o.quality,
                       bytes=o.bytes, numbers={**d.numbers, **o.numbers})
        elif d.reason in ("background_coarse", "full_image") and base is not None:
            upd.update(layer_index=0, quality=base["quality"], bytes=base["bytes"], numbers={"scale": base["scale"]})
        d = d.model_copy(update=upd)
        final.append(d.model_copy(update={"sentence": explain(d)}))
    return final


def _obj(d: Decision) -> str:
    name = d.label or d.class_name or "object"
    if d.class_name and d.label and d.class_name != d.label:
        how = d.numbers.get("match")
        name += f" (detected as '{d.class_name}'" + (f", matched by {how})" if how else ")")
    return name


def explain(d: Decision) -> str:
    """One plain sentence from the numbers of a decision."""
    n = d.numbers
    found = f"{_obj(d)} scored {d.score:.2f}" if d.score is not None else _obj(d)
    rank = f"policy rank {d.rank}, importance {d.importance:.2f}" if d.rank is not None else ""
    r = d.reason
    if r == "in_policy":
        return (f"{found} >= threshold {d.threshold:.2f} ({rank}): sent as layer {d.layer_index} "
                f"at quality {d.quality}, {d.bytes:,} bytes.")
    if r == "low_confidence":
        return (f"{found} < threshold {d.threshold:.2f} but >= the recall floor {n.get('recall_floor', 0):.2f} "
                f"({rank}): sent after the confident objects as a cheap layer {d.layer_index} at quality "
                f"{d.quality}, {d.bytes:,} bytes, so a consumer can still find it.")
    if r == "budget_downgrade":
        return (f"{found} >= threshold {d.threshold:.2f} ({rank}), but at quality {n.get('wanted_quality')} it needed "
                f"{n.get('needed', 0):,} bytes with {n.get('left', 0):,} left of the {d.budget:,}-byte budget: "
                f"sent downgraded as layer {d.layer_index} at quality {d.quality}, {d.bytes:,} bytes.")
    if r == "budget_exhausted":
        return (f"{found} >= threshold {d.threshold:.2f} ({rank}), but even downgraded it needed {n.get('needed', 0):,} "
                f"bytes with {n.get('left', 0):,} left of the {d.budget:,}-byte budget: not sent.")
    if r == "covered":
        return (f"{found} ({rank}) lies entirely inside layer {n.get('covered_by')} "
                f"('{n.get('covered_by_label')}'), which already sent its pixels: no layer of its own.")
    if r == "not_in_policy":
        return f"{_obj(d)} was found with score {d.score:.2f}, but the task policy has no label for it: not sent."
    if r == "below_threshold":
        floor = n.get("recall_floor")
        under = f"the recall floor {floor:.2f}" if floor is not None and floor < (d.threshold or 0) else \
            f"threshold {d.threshold:.2f}"
        return f"{found} < {under} ({rank}): not sent."
    if r == "max_objects":
        return (f"{found} ({rank}) is candidate {n.get('position')} but the policy allows at most "
                f"{n.get('max_objects')} objects: not sent.")
    if r == "likely_area":
        where = str(n.get("match", "")).removeprefix(LIKELY_AREA + ": ")
        return (f"policy label '{d.label}' ({rank}) cannot be detected by '{d.backend}'; its likely area "
                f"({where}, score {d.score:.2f}) was sent instead as layer {d.layer_index} "
                f"at quality {d.quality}, {d.bytes:,} bytes.")
    if r == "ungroundable":
        unable = (f"policy label '{d.label}' ({rank}) has no class in grounding backend '{d.backend}', "
                  "so it can never be found there")
        if n.get("uncovered") == "whole":
            return unable + ": the whole image was sent instead (--uncovered whole)."
        if n.get("likely_areas"):
            return unable + f": {n['likely_areas']} likely area(s) were proposed instead (see their rows)."
        if "likely_areas" in n:
            return unable + ": no likely area (host object or main subject) was found, so nothing was sent for it."
        return unable + ": nothing sent for it."
    if r == "not_detected":
        return f"policy label '{d.label}' ({rank}) was not found in this image by '{d.backend}': nothing sent for it."
    if r == "background_coarse":
        if d.bytes is None:
            return "background: a coarse base layer was planned but not written."
        quality = f", quality {d.quality}" if d.quality is not None else ""
        return (f"background sent as a coarse base layer at 1/{n.get('scale')} scale{quality}, "
                f"{d.bytes:,} bytes, so consumers keep the context around the objects.")
    if r == "full_image":
        return (f"whole-image mode (no task): the full image coded at quality {d.quality}, {d.bytes:,} bytes."
                if d.bytes is not None else "whole-image mode (no task).")
    if r == "background_none":
        return "the policy asks for no background: no base layer, untransmitted pixels decode as grey."
    return f"{_obj(d)}: {d.action} ({r})."
