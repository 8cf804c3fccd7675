"""BFCL v4 loading from the bfcl_eval wheel: counts, kinds, fields, multi-turn details."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from toolgym.env.tasks import bfcl


def test_counts_match_design(bfcl_suite):
    counts = Counter(t.category for t in bfcl_suite)
    assert dict(counts) == bfcl.EXPECTED_COUNTS
    # design §5 numbers, spelled out
    assert counts["simple_python"] == 400 and counts["multiple"] == 200 and counts["parallel"] == 200
    assert counts["parallel_multiple"] == 200 and counts["irrelevance"] == 240 and counts["live_simple"] == 258
    assert counts["live_multiple"] == 1053 and counts["live_parallel"] == 16 and counts["live_parallel_multiple"] == 24
    assert counts["live_irrelevance"] == 884 and counts["live_relevance"] == 16
    for c in bfcl.MULTI_TURN_CATEGORIES:
        assert counts[c] == 200


def test_kinds_and_languages(bfcl_suite):
    by_cat = {}
    for t in bfcl_suite:
        by_cat.setdefault(t.category, set()).add((t.kind, t.language))
    for c in bfcl.AST_CATEGORIES:
        assert by_cat[c] == {("ast", "python")}
    assert by_cat["irrelevance"] == {("irrelevance", "python")}
    assert by_cat["live_irrelevance"] == {("irrelevance", "python")}
    assert by_cat["live_relevance"] == {("relevance", "python")}
    for c in bfcl.MULTI_TURN_CATEGORIES:
        assert by_cat[c] == {("multi_turn", "python")}
    assert by_cat["simple_java"] == {("ast", "java")}
    assert by_cat["simple_javascript"] == {("ast", "javascript")}


def test_excluded_categories_rejected():
    for c in ("web_search", "memory", "format_sensitivity"):
        with pytest.raises(ValueError, match="left out on purpose"):
            bfcl.load_category(c)
    with pytest.raises(ValueError, match="unknown BFCL category"):
        bfcl.load_category("nope")


def test_single_turn_fields(bfcl_suite):
    t = bfcl_suite.get("simple_python_0")
    assert t.turns == (({"role": "user", "content": t.turns[0][0]["content"]},),)
    assert [s.name for s in t.tools] == ["calculate_triangle_area"]
    params = t.tools[0].parameters
    assert params["type"] == "object" and params["x-bfcl-type"] == "dict"
    assert params["properties"]["base"] == {
        "type": "integer",
        "x-bfcl-type": "integer",
        "description": "The base of the triangle.",
    }
    assert t.ground_truth == ({"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}},)
    assert t.optimal_steps == 1
    assert t.metadata == {} and t.involved_classes == () and t.missed_function == {}
    for task in bfcl_suite:
        if task.kind == "ast":
            assert task.ground_truth, task.id
            names = task.tool_names
            for call in task.ground_truth:
                assert set(call) <= names, task.id
        elif task.kind in ("irrelevance", "relevance"):
            assert task.ground_truth == ()
        if task.kind != "multi_turn":
            assert task.optimal_steps == 1 and len(task.turns) == 1


def test_multi_message_turns_kept(bfcl_suite):
    roles = Counter(tuple(m["role"] for m in t.turns[0]) for t in bfcl_suite if t.category.startswith("live_"))
    assert roles[("system", "user")] > 50  # live categories carry system prompts
    assert any(len(r) > 3 for r in roles)  # and whole conversations in one turn


def test_multi_turn_base_0(bfcl_suite):
    t = bfcl_suite.get("multi_turn_base_0")
    assert t.kind == "multi_turn" and t.category == "multi_turn_base"
    assert set(t.involved_classes) == {"GorillaFileSystem", "TwitterAPI"}
    assert len(t.turns) == 4 and len(t.ground_truth) == 4
    assert "GorillaFileSystem" in t.initial_config and "TwitterAPI" in t.initial_config
    assert t.ground_truth[0] == [
        "cd(folder='document')",
        "mkdir(dir_name='temp')",
        "mv(source='final_report.pdf', destination='temp')",
    ]
    assert t.optimal_steps == sum(len(x) for x in t.ground_truth) == 10
    names = t.tool_names
    assert {"cd", "mv", "grep", "post_tweet"} <= names
    assert "cp" not in names and t.metadata["excluded_function"] == ["cp"]
    assert t.metadata["path"][0] == "GorillaFileSystem.find" and t.metadata["long_context"] is False
    assert t.missed_function == {}


def test_multi_turn_miss_func(bfcl_suite):
    t = bfcl_suite.get("multi_turn_miss_func_0")
    assert t.missed_function == {"3": ("sort",)}
    assert t.turns[3] == ()  # the empty turn where the function is added is kept
    assert t.ground_truth[2] == [] and t.ground_truth[3] == ["sort('final_report.pdf')"]
    assert "sort" in t.tool_names  # present in tools; the env hides it until turn 3
    for task in bfcl_suite.filter(categories=["multi_turn_miss_func"]):
        assert task.missed_function, task.id
        for turn, fns in task.missed_function.items():
            assert task.turns[int(turn)] == ()
            assert set(fns) <= task.tool_names


def test_multi_turn_all(bfcl_suite):
    call = re.compile(r"^\s*[A-Za-z_][\w.]*\(")
    for task in bfcl_suite.filter(kinds=["multi_turn"]):
        assert len(task.ground_truth) == len(task.turns), task.id
        assert task.involved_classes and task.initial_config is not None
        assert task.optimal_steps == sum(len(x) for x in task.ground_truth) >= 1
        assert task.metadata["long_context"] == (task.category == "multi_turn_long_context")
        excluded = set(task.metadata.get("excluded_function", ()))
        assert not excluded & task.tool_names
        for turn in task.ground_truth:
            for c in turn:
                assert call.match(c), (task.id, c)
                assert c.split("(")[0].strip() in task.tool_names, (task.id, c)


def test_multi_turn_tools_shared_between_tasks(bfcl_suite):
    a = bfcl_suite.get("multi_turn_base_0")
    b = bfcl_suite.get("multi_turn_base_1")
    shared = {s.name for s in a.tools} & {s.name for s in b.tools}
    if shared:
        name = next(iter(shared))
        ta = next(s for s in a.tools if s.name == name)
        tb = next(s for s in b.tools if s.name == name)
        assert ta == tb


def test_java_tools_take_strings(bfcl_suite):
    t = bfcl_suite.get("simple_java_0")
    p = t.tools[0].parameters["properties"]
    assert p["controller"] == {"type": "string", "x-bfcl-type": "any", "description": p["controller"]["description"]}


def test_helpers():
    assert bfcl.category_from_id("live_simple_3-2-0") == "live_simple"
    assert bfcl.category_from_id("multi_turn_miss_func_12") == "multi_turn_miss_func"
    assert bfcl.kind_for_category("live_irrelevance") == "irrelevance"
    assert bfcl.kind_for_category("live_relevance") == "relevance"
    assert bfcl.kind_for_category("multi_turn_base") == "multi_turn"
    assert bfcl.kind_for_category("parallel") == "ast"
    assert bfcl.category_language("simple_javascript") == "javascript"
    assert bfcl.category_language("simple_java") == "java"
    assert bfcl.category_language("simple_python") == "python"
    assert bfcl.bfcl_version() != "unknown"
