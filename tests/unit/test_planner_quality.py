"""Offline planner quality: does the policy's top of the list hold what a person expects?"""

from benchmarks.planner_cases import CASES
from taskcodec.agents import plan_offline

TOP = 10


def test_recall_of_expected_coco_classes_in_the_top_labels():
    hits = total = 0
    misses = {}
    for task, expected in CASES.items():
        top = {l.name for l in plan_offline(task).labels[:TOP]}
        hits += len(expected & top)
        total += len(expected)
        if expected - top:
            misses[task] = sorted(expected - top)
    recall = hits / total
    assert recall >= 0.8, (recall, misses)
    assert len(misses) <= 3, misses  # and no task is badly off
