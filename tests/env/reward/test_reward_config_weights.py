"""Weights are validated and renormalised to sum to 1 (README, "The reward contract")."""

from __future__ import annotations

import math

import pytest

from toolgym.env.reward.config import COMPONENTS, RewardConfig


def test_defaults_are_kept_as_they_are():
    assert RewardConfig().weights == {"task_completion": 0.40, "tool_accuracy": 0.25, "efficiency": 0.15,
                                      "timing_quality": 0.10, "format_compliance": 0.10}


def test_an_override_is_renormalised_and_the_total_stays_at_most_1():
    w = RewardConfig.from_dict({"weights": {"task_completion": 0.8}}).weights
    assert math.isclose(sum(w.values()), 1.0) and math.isclose(w["task_completion"], 0.8 / 1.4)
    assert math.isclose(w["tool_accuracy"] / w["efficiency"], 0.25 / 0.15)  # the rest keep their ratios
    # A per-task override merges, then renormalises again.
    t = RewardConfig().for_task({"format_compliance": 0.0}).weights
    assert t["format_compliance"] == 0.0 and math.isclose(sum(t.values()), 1.0)


def test_huge_weights_do_not_overflow():
    w = RewardConfig.from_dict({"weights": dict.fromkeys(COMPONENTS, 1e308)}).weights
    assert all(math.isclose(v, 0.2) for v in w.values())


@pytest.mark.parametrize("weights,match", [
    ({"task_completion": -0.1}, "finite number >= 0"),
    ({"task_completion": math.nan}, "finite number >= 0"),
    ({"task_completion": math.inf}, "finite number >= 0"),
    (dict.fromkeys(COMPONENTS, 0.0), "sum to 0"),
    ({"speed": 1.0}, "unknown reward component"),
])
def test_bad_weights_are_clear_errors(weights, match):
    with pytest.raises(ValueError, match=match):
        RewardConfig.from_dict({"weights": weights})
