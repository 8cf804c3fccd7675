"""Retrieval episodes end to end (issue 16 item 5): the task's tools hidden in the catalogue, found
with ``search_tools`` or pre-retrieved, and the ``retrieval`` reward component.

Played through ``gym.make("toolgym/ToolUse-v0")`` with real sandboxes; the gRPC and gateway side
is in ``tests/env/server/test_server_retrieval.py``.
"""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

import toolgym.env  # noqa: F401  (registers toolgym/ToolUse-v0)
from gym_helpers import gt_single_turn_action, gt_turn_action
from toolgym.env.tasks.suite import load_suite


def search(query: str, k: int = 10) -> str:
    return "<tool_call>" + json.dumps({"name": "search_tools", "arguments": {"query": query, "k": k}}) + "</tool_call>"


@pytest.fixture(scope="module")
def suite():
    return load_suite("default")


@pytest.fixture()
def make():
    envs = []

    def _make(**kw):
        env = gym.make("toolgym/ToolUse-v0", template="hermes", **kw)
        envs.append(env)
        return env

    yield _make
    for e in envs:
        e.close()


def _names(info) -> list[str]:
    return [t["name"] for t in info["tools"]]


def test_search_then_ground_truth_scores_one_and_no_search_scores_retrieval_zero(make, suite):
    task = suite.get("simple_python_0")
    env = make(tool_pool="full_catalogue", retrieval="search")
    obs, info = env.reset(options={"task_id": task.id})
    assert _names(info) == ["search_tools"] and info["retrieval"]["pool_size"] >= 1800
    assert "calculate_triangle_area" not in obs  # hidden: only the meta-tool is in the prompt
    obs, reward, term, _, sinfo = env.step(search("calculate the area of a triangle from its base and height"))
    assert not term and reward == 0.0 and "calculate_triangle_area" in obs and sinfo["searches"] == 1
    _, reward, term, _, info = env.step(gt_single_turn_action(task))
    assert term and reward == pytest.approx(1.0)
    assert info["components"]["retrieval"] == 1.0 and info["penalties"] == {}

    # The same call without searching: the model never saw the tool (hallucinated), retrieval 0.
    env.reset(options={"task_id": task.id})
    _, reward, term, _, info = env.step(gt_single_turn_action(task))
    assert term and info["components"]["retrieval"] == 0.0
    assert info["penalties"].get("hallucinated_tool", 0) < 0 and reward < 0.5


def test_multi_turn_search_episode_plays_to_one(make, suite):
    task = suite.get("multi_turn_base_0")
    env = make(tool_pool="k_distractors:200", retrieval="search")
    _, info = env.reset(options={"task_id": task.id})
    assert info["retrieval"]["pool_size"] == len(task.tools) + 200
    for turn in task.ground_truth:
        for name in sorted({c.split("(")[0] for c in turn}):
            obs, _, term, _, _ = env.step(search(name.replace("_", " "), k=5))
            assert not term and f'"name": "{name}"' in obs.replace('\\"', '"')
        action = gt_turn_action(turn, task.tools)
        if action:
            env.step(action)
        _, reward, term, trunc, info = env.step("Done.")
        if term or trunc:
            break
    assert term and reward == pytest.approx(1.0) and info["components"]["retrieval"] == 1.0


def test_pool_is_the_tasks_tools_among_n_others_and_fixed_by_the_seed(make, suite):
    task = suite.get("multiple_3")
    env = make(tool_pool="k_distractors:30")
    _, a = env.reset(seed=7, options={"task_id": task.id})
    _, b = env.reset(seed=7, options={"task_id": task.id})
    _, c = env.reset(seed=8, options={"task_id": task.id})
    assert _names(a) == _names(b) and _names(a) != _names(c)
    assert len(a["tools"]) == len(task.tools) + 30 and set(task.tool_names) <= set(_names(a))
    assert len(set(_names(a))) == len(_names(a))  # one spec per name
    # Every tool offered: the ground truth still scores 1.0, and retrieval is 1.0.
    _, reward, _, _, info = env.step(gt_single_turn_action(task))
    assert reward == pytest.approx(1.0) and info["components"]["retrieval"] == 1.0


def test_pre_retrieved_offers_k_tools_and_scores_what_it_offered(make, suite):
    env = make(tool_pool="full_catalogue", retrieval="pre_retrieved", retrieval_k=3)
    task = suite.get("simple_python_0")
    _, info = env.reset(options={"task_id": task.id})
    assert len(info["tools"]) == 3 and "calculate_triangle_area" in _names(info)
    _, reward, _, _, info = env.step(gt_single_turn_action(task))
    assert reward == pytest.approx(1.0) and info["components"]["retrieval"] == 1.0
    # A reset option overrides the constructor: k=1 and a query the task's words do not match.
    _, info = env.reset(options={"task_id": "simple_python_1", "retrieval_k": 1})
    assert len(info["tools"]) == 1


def test_retrieval_weight_counts_in_the_total(make, suite):
    task = suite.get("simple_python_0")
    env = make(tool_pool="k_distractors:50", retrieval="search", reward_config={"weights": {"retrieval": 0.15}})
    env.reset(options={"task_id": task.id})
    _, reward, _, _, info = env.step(gt_single_turn_action(task))
    w = info["weights"]
    assert w["retrieval"] == pytest.approx(0.15 / 1.15) and sum(w.values()) == pytest.approx(1.0)
    expected = sum(w[k] * v for k, v in info["components"].items()) + sum(info["penalties"].values())
    assert reward == pytest.approx(expected) and info["components"]["retrieval"] == 0.0


def test_ordinary_episodes_report_no_retrieval_component(make, suite):
    env = make()
    _, info = env.reset(options={"task_id": "simple_python_0"})
    assert "retrieval" not in info
    _, _, _, _, info = env.step(gt_single_turn_action(suite.get("simple_python_0")))
    assert "retrieval" not in info["components"]


@pytest.mark.parametrize("kw, match", [
    ({"tool_pool": "all"}, "tool_pool must be"),
    ({"tool_pool": "k_distractors:-1"}, "tool_pool must be"),
    ({"retrieval": "rag"}, "retrieval must be one of"),
    ({"retriever": "bm26", "retrieval": "search"}, "retriever must be one of"),
    ({"retrieval_k": 0}, "retrieval_k must be an integer from 1 to 20"),
])
def test_bad_retrieval_options_are_clear_errors(make, kw, match):
    with pytest.raises(ValueError, match=match):
        make(**kw)
    env = make()
    with pytest.raises(ValueError, match=match):
        env.reset(options={"task_id": "simple_python_0", **kw})


def test_bad_search_arguments_get_an_error_observation(make):
    env = make(tool_pool="full_catalogue", retrieval="search")
    env.reset(options={"task_id": "simple_python_0"})
    bad = '<tool_call>{"name": "search_tools", "arguments": {"query": "", "k": 500}}</tool_call>'
    obs, _, term, _, _ = env.step(bad)
    assert not term and "'query' must be a non-empty string" in obs
    obs, _, term, _, _ = env.step('<tool_call>{"name": "search_tools", "arguments": {"query": "area", "k": 500}}</tool_call>')
    assert not term and "'k' must be an integer from 1 to 20" in obs
