"""Unit tests for pairing calls with the ground truth (``toolgym.env.reward.ast_match``): names and
counts, parallel calls and the optimal assignment, partial credit, languages, many calls, the
verdict, and a speed check. The value rules are in ``test_ast_values.py``, the per-call rules in
``test_ast_call.py``; agreement with BFCL's own checker over its data is in
``test_bfcl_agreement.py``."""

from __future__ import annotations

import random
import time

import pytest
from ast_match_helpers import TRI, TRI_GT, call, node, ok, oracle, tool
from toolgym.env.reward.ast_match import AstVerdict, match_calls

# --------------------------------------------------------------------------- names, counts


def test_simple_ground_truth_passes():
    v = match_calls([call("calculate_triangle_area", base=10, height=5)], TRI_GT, [TRI])
    assert v == AstVerdict(True, 1, 1, 1.0, (), ((0, 0),))


def test_function_name_exact_and_case_sensitive():
    v = match_calls([call("Calculate_Triangle_Area", base=10, height=5)], TRI_GT, [TRI])
    assert not v.ok and v.matched == 0 and v.arg_accuracy == 0.0 and v.assignment == ()
    assert "case-sensitive" in v.errors[0]
    assert not ok([call("calculate.triangle.area", base=10, height=5)], TRI_GT, [TRI])


def test_names_differing_only_in_case_are_distinct_tools():
    lo, up = tool("get", {"x": node("integer")}, ["x"]), tool("GET", {"x": node("integer")}, ["x"])
    gt = [{"GET": {"x": [1]}}]
    assert ok([call("GET", x=1)], gt, [lo, up])
    assert not ok([call("get", x=1)], gt, [lo, up])
    gt2 = [{"get": {"x": [1]}}, {"GET": {"x": [2]}}]
    assert ok([call("GET", x=2), call("get", x=1)], gt2, [lo, up])
    assert not ok([call("GET", x=1), call("get", x=2)], gt2, [lo, up])


def test_counts_must_be_equal():
    good = call("calculate_triangle_area", base=10, height=5)
    for calls in ([], [good, good], [good, call("other")]):
        v = match_calls(calls, TRI_GT, [TRI])
        assert not v.ok and v.expected == 1
        assert any("expected 1 call(s)" in e for e in v.errors)
    v = match_calls([good, good], TRI_GT, [TRI])
    assert v.matched == 1 and v.arg_accuracy == 1.0 and len(v.assignment) == 1
    v = match_calls([], TRI_GT, [TRI])
    assert v.matched == 0 and v.arg_accuracy == 0.0 and "has no matching call" in v.errors[-1]


def test_multiple_one_call_among_several_functions():
    other = tool("calculate_circle_area", {"radius": node("float")}, ["radius"])
    tools = [other, TRI]
    assert ok([call("calculate_triangle_area", base=10, height=5)], TRI_GT, tools)
    v = match_calls([call("calculate_circle_area", radius=10.0)], TRI_GT, tools)
    assert not v.ok and v.errors == ("call #0 is 'calculate_circle_area', expected 'calculate_triangle_area'",)


def test_empty_ground_truth_and_no_calls_is_vacuously_ok():
    assert match_calls([], [], [TRI]) == AstVerdict(True, 0, 0, 1.0, (), ())
    v = match_calls([call("calculate_triangle_area", base=1, height=1)], [], [TRI])
    assert not v.ok and v.arg_accuracy == 0.0


# --------------------------------------------------------------------------- parallel


def _par_tools():
    return [tool("f", {"x": node("integer"), "y": node("string")}, ["x"]), tool("g", {"z": node("float")}, ["z"])]


def test_parallel_any_order():
    gt = [{"f": {"x": [1], "y": ["a", ""]}}, {"f": {"x": [2]}}, {"g": {"z": [0.5]}}]
    calls = [call("g", z=0.5), call("f", x=2), call("f", x=1, y="A")]
    v = match_calls(calls, gt, _par_tools())
    assert v.ok and v.assignment == ((0, 2), (1, 1), (2, 0))
    calls[1] = call("f", x=3)
    v = match_calls(calls, gt, _par_tools())
    assert not v.ok and v.matched == 2 and v.arg_accuracy == pytest.approx(3 / 4)
    assert v.assignment == ((0, 2), (1, 1), (2, 0))
    assert any("vs expected #1" in e and "got 3" in e for e in v.errors)


def test_parallel_greedy_would_fail_but_perfect_matching_exists():
    """The module docstring's example: BFCL's greedy first-fit rejects, the optimal pairing accepts."""
    tools = [tool("f", {"x": node("integer")}, ["x"])]
    gt = [{"f": {"x": [1, 2]}}, {"f": {"x": [1]}}]
    calls = [call("f", x=1), call("f", x=2)]
    v = match_calls(calls, gt, tools)
    assert v.ok and v.matched == 2 and v.assignment == ((0, 1), (1, 0))
    # and BFCL itself really rejects it (when its checker can be loaded)
    bo = oracle()
    if bo is not None:
        checker = bo.load_oracle()
        funcs = [{"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}]
        r = bo.oracle_verdict(checker, funcs, [("f", {"x": 1}), ("f", {"x": 2})], gt, "parallel")
        assert r["valid"] is False
        r = bo.oracle_verdict(checker, funcs, [("f", {"x": 2}), ("f", {"x": 1})], gt, "parallel")
        assert r["valid"] is True


def test_partial_credit_prefers_passing_pairs_then_accepted_params():
    tools = [tool("f", {"a": node("integer"), "b": node("integer"), "c": node("integer")}, [])]
    gt = [{"f": {"a": [1], "b": [1], "c": [1]}}, {"f": {"a": [2], "b": [2], "c": [2]}}]
    calls = [call("f", a=2, b=2, c=9), call("f", a=1, b=1, c=1)]
    v = match_calls(calls, gt, tools)
    assert not v.ok and v.matched == 1 and v.assignment == ((0, 1), (1, 0))
    assert v.arg_accuracy == pytest.approx(5 / 6)


def test_zero_parameter_calls():
    tools = [tool("ping", {}, [])]
    assert match_calls([call("ping"), call("ping")], [{"ping": {}}, {"ping": {}}], tools).ok
    v = match_calls([call("ping", x=1)], [{"ping": {}}], tools)
    assert not v.ok and v.arg_accuracy == 1.0
    v = match_calls([call("ping")], [{"ping": {}}, {"ping": {}}], tools)
    assert not v.ok and v.arg_accuracy == 0.5


def test_small_group_enumeration_equals_linear_sum_assignment():
    from itertools import permutations

    from toolgym.env.reward.ast_match import _assign_group

    rng = random.Random(3)
    for _ in range(400):
        nc, ng = rng.randint(1, 5), rng.randint(1, 5)
        ci, gj = list(range(nc)), list(range(10, 10 + ng))
        w = {(i, j): rng.randint(1, 6) for i in ci for j in gj}
        got = _assign_group(ci, gj, w)
        assert len(got) == min(nc, ng) and len({i for i, _ in got}) == len(got) == len({j for _, j in got})
        k = min(nc, ng)
        if nc <= ng:
            best = max(sum(w[(i, j)] for i, j in zip(ci, p)) for p in permutations(gj, k))
        else:
            best = max(sum(w[(i, j)] for i, j in zip(p, gj)) for p in permutations(ci, k))
        assert sum(w[p] for p in got) == best


# --------------------------------------------------------------------------- languages


@pytest.mark.parametrize("lang", ["java", "javascript", "rust"])
def test_other_languages_raise(lang):
    with pytest.raises(ValueError, match="not implemented"):
        match_calls([], TRI_GT, [TRI], language=lang)


def test_language_spelling():
    c = [call("calculate_triangle_area", base=10, height=5)]
    assert ok(c, TRI_GT, [TRI], language="Python")
    try:
        from bfcl_eval.constants.enums import Language
    except ImportError:
        return
    assert ok(c, TRI_GT, [TRI], language=Language.PYTHON)


# --------------------------------------------------------------------------- many calls, the verdict


def test_thousand_calls():
    tools = [tool(f"t{i}", {"x": node("integer")}, ["x"]) for i in range(1000)]
    gt = [{f"t{i}": {"x": [i]}} for i in range(1000)]
    calls = [call(f"t{i}", x=i) for i in range(1000)]
    random.Random(1).shuffle(calls)
    t0 = time.perf_counter()
    v = match_calls(calls, gt, tools)
    assert v.ok and v.matched == 1000 and len(v.assignment) == 1000
    calls[0] = call(calls[0].name, x=-1)
    v = match_calls(calls, gt, tools)
    assert not v.ok and v.matched == 999 and v.arg_accuracy == pytest.approx(0.999)
    # a model spamming 1000 calls at a one-call task
    v = match_calls([call("calculate_triangle_area", base=10, height=5)] * 1000, TRI_GT, [TRI])
    assert not v.ok and v.matched == 1 and v.arg_accuracy == 1.0 and len(v.errors) <= 51
    # 300 same-name calls in shuffled order: BFCL-greedy-order pairing of every one
    f = [tool("f", {"x": node("integer")}, ["x"])]
    gt = [{"f": {"x": [i]}} for i in range(300)]
    calls = [call("f", x=i) for i in range(300)]
    random.Random(2).shuffle(calls)
    assert match_calls(calls, gt, f).ok
    calls[5] = call("f", x=1000)
    v = match_calls(calls, gt, f)
    assert not v.ok and v.matched == 299
    assert time.perf_counter() - t0 < 30.0


def test_verdict_is_frozen_and_hashable():
    v = match_calls([call("calculate_triangle_area", base=10, height=5)], TRI_GT, [TRI])
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        v.ok = False  # type: ignore[misc]
    hash(v)


# --------------------------------------------------------------------------- speed


def _us_per_call(fn, n: int) -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def test_speed(capsys):
    simple = [call("calculate_triangle_area", base=10, height=5)]
    simple_bad = [call("calculate_triangle_area", base=10, height=6)]
    tools = _par_tools()
    gt = [{"f": {"x": [1], "y": ["a", ""]}}, {"f": {"x": [2]}}, {"g": {"z": [0.5]}}]
    par = [call("g", z=0.5), call("f", x=2), call("f", x=1, y="A")]
    par_bad = [call("g", z=0.5), call("f", x=3), call("f", x=1, y="A")]
    t = {
        "simple ok": _us_per_call(lambda: match_calls(simple, TRI_GT, [TRI]), 2000),
        "simple wrong value": _us_per_call(lambda: match_calls(simple_bad, TRI_GT, [TRI]), 2000),
        "parallel(3) ok": _us_per_call(lambda: match_calls(par, gt, tools), 2000),
        "parallel(3) one wrong": _us_per_call(lambda: match_calls(par_bad, gt, tools), 500),
    }
    with capsys.disabled():
        print("\nmatch_calls µs/call: " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()))
    # generous bounds (shared CI machines); typical numbers are 3-6 µs simple, 10-40 µs parallel
    assert t["simple ok"] < 50
    assert t["parallel(3) one wrong"] < 500
