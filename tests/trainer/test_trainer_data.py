"""SFT formatting from BFCL ground truth, task-type mapping and weighting, RL splits."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from toolgym.env.parsers import MULTI_CALL_TEMPLATES, TEMPLATES, parse
from toolgym.trainer.config_load import config_from_dict
from toolgym.trainer.data import (
    ast_ground_truth_calls,
    load_tasks,
    multi_turn_ground_truth_calls,
    rl_rows,
    rl_split,
    sft_examples,
    sft_messages,
    task_type,
    type_distribution,
    weighted_mix,
)


@pytest.fixture(scope="module")
def simple():
    return load_tasks("bfcl", ["simple_python"])


def test_first_allowed_values(simple):
    t = next(t for t in simple if t.id == "simple_python_0")  # base [10], height [5], unit ["units", ""]
    (call,) = ast_ground_truth_calls(t)
    assert call.name == "calculate_triangle_area"
    assert call.arguments == {"base": 10, "height": 5, "unit": "units"}
    t2 = next(t for t in simple if t.id == "simple_python_2")  # z ["", 0]: optional, omitted
    (call2,) = ast_ground_truth_calls(t2)
    assert "z" not in call2.arguments and call2.arguments["x"] == 4


@pytest.mark.parametrize("template", TEMPLATES)
def test_sft_messages_round_trip_through_the_env_parser(simple, template):
    for task in simple[:20]:
        msgs = sft_messages(task, template)
        assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
        parsed = parse(msgs[-1]["content"], template)
        assert not parsed.issues, parsed.issues
        assert [(c.name, c.arguments) for c in parsed.calls] == [(c.name, c.arguments) for c in ast_ground_truth_calls(task)]


def test_parallel_needs_a_multi_call_template():
    task = load_tasks("bfcl", ["parallel"])[0]
    with pytest.raises(ValueError):
        sft_messages(task, "react")
    cfg = config_from_dict({"data": {"templates": ["react", "hermes"], "categories": ["parallel"]}})
    ex = sft_examples(cfg, [task])
    assert len(ex) == 1 and ex[0]["template"] in MULTI_CALL_TEMPLATES


def test_multi_turn_conversation_shape():
    task = load_tasks("bfcl", ["multi_turn_base"])[0]
    per_turn = multi_turn_ground_truth_calls(task)
    msgs = sft_messages(task, "hermes")
    n_calls = sum(len(t) for t in per_turn)
    assistants = [m for m in msgs if m["role"] == "assistant"]
    assert len(assistants) == n_calls + len(per_turn)  # one action per call + one turn-ending answer per turn
    calls = [c for m in assistants for c in parse(m["content"], "hermes").calls]
    assert [c.name for c in calls] == [c.name for t in per_turn for c in t]
    users = [m["content"] for m in msgs if m["role"] == "user"]
    assert sum(u.startswith("User: ") for u in users) == len(per_turn) - 1


def test_task_types_cover_the_four_goals():
    cats = ["simple_python", "multiple", "parallel", "irrelevance", "multi_turn_base", "multi_turn_miss_param"]
    got = Counter(task_type(t) for c in cats for t in load_tasks("bfcl", [c]))
    assert set(got) == {"tool_selection", "planning", "timing", "retrieval"}
    irr = load_tasks("bfcl", ["irrelevance"])[0]
    assert task_type(irr) == "timing"
    many = next(t for t in load_tasks("bfcl", ["multiple"]) if len(t.tools) >= 4)
    assert task_type(many, retrieval_min_tools=4) == "retrieval"


def test_weighted_mix_follows_weights():
    ex = [{"task_type": k, "i": i} for k, n in [("tool_selection", 300), ("planning", 100), ("timing", 100)] for i in range(n)]
    mix = weighted_mix(ex, {"tool_selection": 0.5, "planning": 0.3, "timing": 0.2, "retrieval": 0.5}, 200, random.Random(0))
    assert len(mix) == 200
    dist = type_distribution(mix)
    assert dist == pytest.approx({"tool_selection": 0.5, "planning": 0.3, "timing": 0.2})  # retrieval absent: renormalised
    up = weighted_mix(ex, {"planning": 1.0}, 150, random.Random(0), allow_upsample=True)
    assert len(up) == 150
    capped = weighted_mix(ex, {"planning": 1.0}, 150, random.Random(0), allow_upsample=False)
    assert len(capped) == 100
    auto = weighted_mix(ex, {"tool_selection": 0.5, "timing": 0.5}, 0, random.Random(0))
    assert len(auto) == 200 and type_distribution(auto)["timing"] == pytest.approx(0.5)


def test_template_diversity_on_by_default():
    cfg = config_from_dict({"data": {"templates": list(TEMPLATES), "categories": ["simple_python"]}})
    assert cfg.data.template_diversity
    ex = sft_examples(cfg, load_tasks("bfcl", ["simple_python"])[:140])
    assert len({e["template"] for e in ex}) == len(TEMPLATES)


def test_rl_split_is_deterministic_and_disjoint(tokenizer):
    cfg = config_from_dict({"data": {"categories": ["simple_python"], "heldout_tasks": 10, "max_prompt_tokens": 450, "seeds_per_task": 2}})
    a = rl_split(cfg, tokenizer)
    b = rl_split(cfg, tokenizer)
    assert a.train == b.train and a.heldout == b.heldout
    assert len(a.heldout) == 10 and not set(a.train) & set(a.heldout)
    rows = rl_rows(a.train, cfg, a.prompts)
    assert len(rows) == 2 * len(a.train)
    assert all({"prompt", "task_id", "seed", "template"} <= set(r) for r in rows)
    # held-out tasks never reach SFT
    ex = sft_examples(cfg, load_tasks("bfcl", ["simple_python"]), exclude_ids=a.heldout)
    assert not {e["task_id"] for e in ex} & set(a.heldout)
