"""No degenerate policy pays (issue 10 item 7) and partial credit follows substance (issue 11 item 6).

Over the first 20 tasks of every single-turn category (scored in process) and of every multi-turn
category (played through the real env and sandbox), with the policies of ``degenerate.py``:

- ground truth > honest partial attempts > doing nothing > hallucinating, in every category's means;
- where a call was needed, doing nothing earns exactly ``format_compliance``'s weight (0.1) and no
  efficiency or timing credit; any episode that did none of the needed work gets no efficiency or
  timing credit either;
- per task: the ground truth scores 1.0; a pure hallucination scores below doing nothing; every
  degenerate policy scores below the ground truth (unless it *is* the ground truth, e.g. empty
  arguments for a tool that takes none); placeholder or empty arguments never outscore a subset of
  exactly right calls; one stray call on top of a complete solution still beats doing nothing.

``python tests/env/reward/degenerate.py`` prints the mean-total tables.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from toolgym.env.reward.config import RewardConfig

pytest.importorskip("bfcl_eval")


def _load(name: str):
    full = f"toolgym_tests_{name}"
    if full in sys.modules:
        return sys.modules[full]
    spec = importlib.util.spec_from_file_location(full, Path(__file__).with_name(f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[full] = mod
    spec.loader.exec_module(mod)
    return mod


D = _load("degenerate")
N_TASKS = 20
FORMAT_WEIGHT = RewardConfig().weights["format_compliance"]
EPS = 1e-9
SPAM = ("every_tool", "empty_args", "dummy_args")
DEGENERATE = (*SPAM, "gt_repeat", "gt_plus_hallucinated")
NOTHING = ("empty", "refusal")
HONEST = ("subset", "one_wrong_value")


@pytest.fixture(scope="module")
def suite():
    from toolgym.env.tasks.suite import load_suite

    return load_suite("default")


@pytest.fixture(scope="module")
def single(suite):
    return D.single_turn_scores(suite, N_TASKS)


@pytest.fixture(scope="module")
def multi(suite):
    return D.multi_turn_scores(suite, N_TASKS)


def _by_id(rows):
    return {t.id: s for t, s in rows}


def _mean(rows):
    return sum(s["total"] for _, s in rows) / len(rows)


def _check_call_category(cat: str, per: dict, *, multi_turn: bool) -> list[str]:
    bad: list[str] = []
    # live_parallel has only 16 tasks: there the whole category is used
    assert all(len(rows) >= min(N_TASKS, 16) for p, rows in per.items() if p in ("gt", "empty", "hallucinated")), cat
    gt = _by_id(per["gt"])
    nothing_policies = [p for p in NOTHING if p in per]
    for p in nothing_policies:
        for tid, s in _by_id(per[p]).items():
            if not s["total"] <= FORMAT_WEIGHT + EPS:
                bad.append(f"{cat} {tid}: doing nothing ({p}) earns {s['total']:.3f} > {FORMAT_WEIGHT}")
    nothing = _by_id(per[nothing_policies[0]])
    for tid, s in gt.items():
        if abs(s["total"] - 1.0) > 1e-9:
            bad.append(f"{cat} {tid}: ground truth scores {s['total']:.3f}")
    for tid, s in _by_id(per["hallucinated"]).items():
        if not s["total"] < nothing[tid]["total"]:
            bad.append(f"{cat} {tid}: hallucinating {s['total']:.3f} >= nothing {nothing[tid]['total']:.3f}")
    # gating: no work done -> no efficiency or timing credit, whatever the policy (the env's info has
    # no details: there the policies that do no work by construction are checked)
    for p, rows in per.items():
        for t, s in rows:
            done = s["details"]["work_done"] if "details" in s else (0.0 if p in (*NOTHING, "hallucinated") else None)
            comps = s["components"]
            if done == 0.0 and (comps["efficiency"] or comps["timing_quality"]):
                bad.append(f"{cat} {t.id} {p}: efficiency/timing credit without work ({comps})")
    for p in DEGENERATE:
        for tid, s in _by_id(per.get(p, [])).items():
            if s["components"]["task_completion"] >= 1.0 and p in SPAM:
                continue  # the policy wrote the ground truth (e.g. {} for a tool without parameters)
            if not s["total"] < gt[tid]["total"]:
                bad.append(f"{cat} {tid}: degenerate {p} {s['total']:.3f} >= ground truth")
    # (a subset that makes no call at all — one call per turn — is doing nothing, checked above)
    subset = {tid: s for tid, s in _by_id(per.get("subset", [])).items() if s["total"] != nothing[tid]["total"]}
    for p in ("empty_args", "dummy_args"):
        for tid, s in _by_id(per.get(p, [])).items():
            if tid in subset and s["components"]["task_completion"] < 1.0 and not s["total"] < subset[tid]["total"]:
                bad.append(f"{cat} {tid}: {p} {s['total']:.3f} >= ground-truth subset {subset[tid]['total']:.3f}")
    for tid, s in _by_id(per["gt_plus_hallucinated"]).items():
        if not nothing[tid]["total"] < s["total"]:
            bad.append(f"{cat} {tid}: ground truth + one stray call {s['total']:.3f} <= doing nothing")
    # the ordering of the means
    # a spam policy that happened to write the ground truth is the ground truth: left out of its mean
    m = {p: _mean([r for r in rows if p not in SPAM or r[1]["components"]["task_completion"] < 1.0] or rows)
         for p, rows in per.items()}
    honest = [p for p in HONEST if p in m]
    for p in honest:
        if not m["gt"] > m[p] > m[nothing_policies[0]]:
            bad.append(f"{cat}: mean order gt {m['gt']:.3f} > {p} {m[p]:.3f} > nothing {m[nothing_policies[0]]:.3f} fails")
        for q in SPAM:
            if q in m and not m[q] < m[p]:
                bad.append(f"{cat}: mean {q} {m[q]:.3f} >= honest {p} {m[p]:.3f}")
    if not m[nothing_policies[0]] > m["hallucinated"]:
        bad.append(f"{cat}: mean nothing {m[nothing_policies[0]]:.3f} <= hallucinating {m['hallucinated']:.3f}")
    return bad


def test_single_turn_call_categories_rank_substance_over_shape(single):
    bad = []
    for cat, per in single.items():
        if per and next(iter(per.values()))[0][0].kind == "ast":
            bad += _check_call_category(cat, per, multi_turn=False)
    assert not bad, "\n".join(bad[:30])


def test_multi_turn_categories_rank_substance_over_shape(multi):
    bad = []
    for cat, per in multi.items():
        bad += _check_call_category(cat, per, multi_turn=True)
    assert not bad, "\n".join(bad[:30])


def test_irrelevance_abstaining_is_the_answer_and_every_call_costs(single):
    for cat in ("irrelevance", "live_irrelevance"):
        per = single[cat]
        for p in NOTHING:
            assert all(s["total"] == pytest.approx(1.0) for _, s in per[p]), (cat, p)
        for p in ("every_tool", "hallucinated"):
            for t, s in per[p]:
                assert s["total"] < 0.0, (cat, p, t.id, s["total"])
                assert s["components"]["efficiency"] == 0.0 and s["components"]["timing_quality"] == 0.0


def test_relevance_needs_a_call_to_an_offered_tool(single):
    per = single["live_relevance"]
    assert len(per["empty"]) == 16  # the whole category
    for t, s in per["hallucinated"]:
        assert s["components"]["task_completion"] == 0.0, t.id  # a tool that does not exist is no relevant call
        assert s["penalties"]["hallucinated_tool"] == -0.4
    for t, s in per["every_tool"]:
        assert s["components"]["task_completion"] == 1.0, t.id  # calls to offered tools: relevant
    for t, s in per["empty"]:
        assert s["total"] == pytest.approx(FORMAT_WEIGHT), t.id
    assert _mean(per["every_tool"]) > _mean(per["empty"]) > _mean(per["hallucinated"])


def test_dummy_arguments_never_beat_a_right_subset_on_parallel_multiple_0(suite):
    """Issue 11 item 6's case: both tools with placeholders scored 0.600, the first right call 0.517."""
    from toolgym.env.reward.engine import score_output

    task = suite.get("parallel_multiple_0")
    pol = D.single_turn_policies()
    first_right = score_output(task, pol["subset"](task), D.TEMPLATE).total
    for p in ("dummy_args", "empty_args"):
        assert score_output(task, pol[p](task), D.TEMPLATE).total < first_right
