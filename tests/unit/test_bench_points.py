"""``taskcodec bench --qualities``: which settings each curve is measured at, and the errors for bad specs."""

import pytest

from taskcodec.bench.run import ANCHORS, TC_QUALITIES, operating_points
from taskcodec.errors import TaskcodecError


def test_the_defaults_are_four_points_a_curve_for_the_anchors_and_each_codec():
    points = operating_points([], ("classical",))
    assert points == {**ANCHORS, "classical": TC_QUALITIES}
    assert all(len(qs) == 4 for qs in points.values())


def test_a_spec_replaces_one_curve_sorted_and_without_repeats():
    points = operating_points(["avif=30, 0,15,15", "classical=85,10"], ("classical", "learned"))
    assert points["avif"] == (0, 15, 30) and points["classical"] == (10, 85)
    assert points["jpeg"] == ANCHORS["jpeg"] and points["learned"] == TC_QUALITIES


@pytest.mark.parametrize("spec, says", [
    ("avf=10,20", "NAME one of jpeg, webp, avif, classical"),
    ("learned=10,20", "NAME one of"),  # not among --codecs
    ("avif", "expected NAME=Q,Q"),
    ("avif=10", "at least 2 distinct settings in 0..100"),
    ("avif=10,10", "at least 2 distinct"),
    ("jpeg=50,96", "in 1..95"),
    ("classical=0,50", "in 1..100"),
    ("webp=ten,20", "whole numbers"),
])
def test_a_bad_spec_is_one_line_naming_the_option_and_the_spec(spec, says):
    with pytest.raises(TaskcodecError) as exc:
        operating_points([spec], ("classical",))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"--qualities {spec!r}") and says in msg


def test_bd_subsets_keeps_the_named_settings_of_a_curve_and_every_point_of_the_others():
    from benchmarks.bd_subsets import keep_only

    points = [{"scenario": s, "codec": c, "mode": m, "setting": q}
              for s in ("all", "traffic") for c, m, qs in (("avif", "whole", (0, 15, 30)),
                                                           ("taskcodec-classical", "task", (10, 20, 85)),
                                                           ("jpeg", "whole", (10, 50)))
              for q in qs]
    kept = keep_only(points, ["avif=15,30", "classical=10,20"], ("classical",))
    by_curve = {(p["codec"], p["setting"]) for p in kept}
    assert by_curve == {("avif", 15), ("avif", 30), ("taskcodec-classical", 10), ("taskcodec-classical", 20),
                        ("jpeg", 10), ("jpeg", 50)}
    assert len(kept) == 2 * len(by_curve)  # both scenarios
    with pytest.raises(TaskcodecError, match="no point at setting 70"):
        keep_only(points, ["avif=15,70"], ("classical",))
