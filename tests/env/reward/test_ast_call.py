"""Unit tests for one model call against one ground-truth entry (``toolgym.env.reward.ast_call``,
used through ``toolgym.env.reward.ast_match``): ground truth and schema lookup, required, optional
and unexpected parameters, junk argument values, and inputs left unmodified."""

from __future__ import annotations

import copy
import math
import random

import pytest
from ast_match_helpers import TRI, TRI_GT, call, node, ok, tool
from toolgym.env.reward.ast_match import match_calls
from toolgym.env.types import ToolCall

# --------------------------------------------------------------------------- ground truth and schema lookup


def test_ground_truth_naming_unknown_tool_raises():
    with pytest.raises(ValueError, match="not among the task's tools"):
        match_calls([call("nope")], [{"nope": {}}], [TRI])
    with pytest.raises(ValueError, match="one-key mapping"):
        match_calls([], [{"a": {}, "b": {}}], [TRI])
    with pytest.raises(ValueError, match="must be a mapping"):
        match_calls([], [{"calculate_triangle_area": [1]}], [TRI])


# --------------------------------------------------------------------------- required / optional / unexpected


def test_missing_required():
    v = match_calls([call("calculate_triangle_area", base=10)], TRI_GT, [TRI])
    assert not v.ok and any("missing required parameter 'height'" in e for e in v.errors)
    assert v.arg_accuracy == pytest.approx(2 / 3)  # base ok, unit omitted (allowed), height missing


def test_optional_may_be_omitted_only_when_empty_string_allowed():
    assert ok([call("calculate_triangle_area", base=10, height=5)], TRI_GT, [TRI])
    assert ok([call("calculate_triangle_area", base=10, height=5, unit="Units")], TRI_GT, [TRI])
    gt = [{"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["cm"]}}]
    v = match_calls([call("calculate_triangle_area", base=10, height=5)], gt, [TRI])
    assert not v.ok and "may not be omitted" in v.errors[0]
    assert ok([call("calculate_triangle_area", base=10, height=5, unit="CM")], gt, [TRI])


def test_required_param_with_empty_allowed_still_required():
    gt = [{"calculate_triangle_area": {"base": [10, ""], "height": [5]}}]
    assert not ok([call("calculate_triangle_area", height=5)], gt, [TRI])


def test_unexpected_parameters():
    # unknown to the schema
    v = match_calls([call("calculate_triangle_area", base=10, height=5, color="red")], TRI_GT, [TRI])
    assert not v.ok and "not in the tool's schema" in v.errors[0]
    assert v.arg_accuracy == 1.0  # extras do not lower arg accuracy, they fail ok
    # in the schema but not in the ground truth
    gt = [{"calculate_triangle_area": {"base": [10], "height": [5]}}]
    v = match_calls([call("calculate_triangle_area", base=10, height=5, unit="units")], gt, [TRI])
    assert not v.ok and "does not set it" in v.errors[0]


def test_non_mapping_arguments_fail_without_crashing():
    v = match_calls([ToolCall("calculate_triangle_area", [10, 5])], TRI_GT, [TRI])  # type: ignore[arg-type]
    assert not v.ok and v.arg_accuracy == 0.0 and "not an object" in v.errors[0]


# --------------------------------------------------------------------------- adversarial


def test_wrong_types_everywhere():
    tools = [tool("f", {"a": node("integer"), "b": node("float"), "c": node("string"), "d": node("boolean"),
                        "e": node("array", items=node("string")), "g": node("dict")}, ["a", "b", "c", "d", "e", "g"])]
    gt = [{"f": {"a": [1], "b": [1.5], "c": ["x"], "d": [True], "e": [["x"]], "g": [{"k": ["v"]}]}}]
    junk = [None, "1", 1, 1.5, True, [], {}, ["x", 1], {"k": 1}, [[["x"]]], -0.0, ""]
    rng = random.Random(7)
    for _ in range(300):
        args = {k: rng.choice(junk) for k in "abcdeg"}
        v = match_calls([ToolCall("f", args)], gt, tools)
        assert isinstance(v.ok, bool) and 0.0 <= v.arg_accuracy <= 1.0 and math.isfinite(v.arg_accuracy)
        assert v.ok == (args == {"a": 1, "b": 1.5, "c": "x", "d": True, "e": ["x"], "g": {"k": "v"}})


def test_inputs_are_not_modified():
    tools = [tool("f", {"x": node("tuple", items=node("float")), "d": node("dict"), "s": node("string")}, [])]
    gt = [{"f": {"x": [[1.0, 2.0]], "d": [{"a": ["B c"]}], "s": ["A b"]}}]
    calls = [ToolCall("f", {"x": [1.0, 2.0], "d": {"a": "b_C"}, "s": "a-B"})]
    before = copy.deepcopy((gt, calls, tools))
    assert match_calls(calls, gt, tools).ok
    assert (gt, calls, tools) == before
