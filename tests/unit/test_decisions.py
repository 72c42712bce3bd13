import pytest

from taskcodec.agents import plan_offline
from taskcodec.domain.policy import Rules
from taskcodec.decisions import ObjectOutcome, decide, requests_for, settle
from taskcodec.grounding.base import Detection, GroundingResult


def det(label, score, box=(10, 10, 50, 90), cls=None):
    return Detection(label=label, class_name=cls or label or "cat face", box=box, score=score, raw_score=score,
                     backend="test")


@pytest.fixture
def policy():
    return plan_offline("privacy audit: keep people and faces sharp")


def by_reason(decisions):
    out = {}
    for d in decisions:
        out.setdefault(d.reason, []).append(d)
    return out


def test_every_candidate_gets_a_decision_with_its_reason(policy):
    g = GroundingResult(backend="test", ungroundable=("license plate",), detections=(
        det("person", 0.9), det("face", 0.1), det(None, 0.8), det("face", 0.7, (100, 100, 140, 140))))
    ds = decide(g, policy)
    r = by_reason(ds)
    assert ds[0].reason == "background_coarse" and ds[0].action == "transmit"
    assert [d.object_index for d in r["in_policy"]] == [0, 3]  # person (rank 1) before face (rank 2)
    assert r["below_threshold"][0].object_index == 1 and r["below_threshold"][0].threshold == 0.4
    assert r["not_in_policy"][0].class_name == "cat face"
    assert r["ungroundable"][0].label == "license plate"
    assert sum(d.object_index is not None for d in ds) == 4


def test_threshold_override_and_not_detected(policy):
    g = GroundingResult(backend="test", ungroundable=(), detections=(det("person", 0.25),))
    ds = decide(g, policy, threshold=0.6)
    r = by_reason(ds)
    assert r["below_threshold"][0].threshold == 0.6
    assert {d.label for d in r["not_detected"]} == {"face", "license plate"}


def test_recall_before_precision_sends_unsure_objects_last_and_cheaply(policy):
    g = GroundingResult(backend="test", ungroundable=(), detections=(
        det("face", 0.3), det("person", 0.9), det("person", 0.25), det("face", 0.15), det("face", 0.8)))
    ds = decide(g, policy)  # threshold 0.4: the floor is 0.2
    r = by_reason(ds)
    sent = [d for d in ds if d.action == "transmit" and d.object_index is not None]
    assert [d.object_index for d in sent] == [1, 4, 2, 0]  # confident by rank, then unsure by rank
    assert [d.reason for d in sent] == ["in_policy", "in_policy", "low_confidence", "low_confidence"]
    assert r["below_threshold"][0].object_index == 3 and r["below_threshold"][0].numbers["recall_floor"] == 0.2
    reqs = requests_for(ds, policy.rules)
    assert [q.tier for q in reqs][2:] == ["low", "low"]
    outcomes = [ObjectOutcome(object_index=q.object_index, action="transmit", reason="in_policy", layer_index=i + 1,
                              quality=40, bytes=100) for i, q in enumerate(reqs)]
    final = {d.object_index: d for d in settle(ds, outcomes, None, None) if d.object_index is not None}
    assert final[0].reason == "low_confidence" and "recall floor 0.20" in final[0].sentence
    assert "< the recall floor 0.20" in final[3].sentence
    assert not [d for d in decide(g, policy, floor=0.4) if d.reason == "low_confidence"]  # floor = threshold: none


def test_max_objects_keeps_the_most_important(policy):
    p = policy.model_copy(update={"rules": Rules(max_objects=2)})
    g = GroundingResult(backend="test", ungroundable=(), detections=(
        det("face", 0.99), det("person", 0.5), det("person", 0.8), det("face", 0.6)))
    ds = decide(g, p)
    sent = [d.object_index for d in ds if d.action == "transmit" and d.object_index is not None]
    assert sent == [2, 1]  # both persons (rank 1), higher score first
    assert [d.numbers["position"] for d in by_reason(ds)["max_objects"]] == [3, 4]


def test_settle_writes_sentences_with_the_numbers(policy):
    g = GroundingResult(backend="test", ungroundable=(), detections=(det("person", 0.9), det("face", 0.8)))
    ds = decide(g, policy)
    reqs = requests_for(ds, policy.rules)
    assert [r.tier for r in reqs] == ["high", "high"]
    outcomes = [
        ObjectOutcome(object_index=0, action="downgrade", reason="budget_downgrade", layer_index=1, quality=35,
                      bytes=900, numbers={"wanted_quality": 60, "needed": 2000, "left": 1000}),
        ObjectOutcome(object_index=1, action="drop", reason="budget_exhausted", numbers={"needed": 1500, "left": 100}),
    ]
    final = settle(ds, outcomes, {"quality": 50, "bytes": 1234, "scale": 4}, budget=3000)
    text = {d.reason: d.sentence for d in final}
    assert "1,234 bytes" in text["background_coarse"] and "1/4 scale" in text["background_coarse"]
    assert "quality 35" in text["budget_downgrade"] and "3,000-byte budget" in text["budget_downgrade"]
    assert "not sent" in text["budget_exhausted"] and "1,500" in text["budget_exhausted"]
    assert all(d.sentence and d.budget == 3000 for d in final)
