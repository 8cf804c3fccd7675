"""Every suite task's own ground truth scores 1.0, or is listed with its reason (issue 11 item 8).

Over the whole single-turn suite, scored in process: the SFT builder's calls for each ``ast`` task
(``toolgym.trainer.data``), rendered in an agent template exactly as the SFT conversation holds them,
parsed back and scored, total 1.0; the listed unsatisfiable tasks raise ``UnsatisfiableGroundTruth``
instead; every irrelevance task's SFT answer scores 1.0; every multi-turn task's SFT conversation
builds, and each of its calls names a tool offered in its turn with parameters its schema declares.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from toolgym.env.parsers import parse
from toolgym.env.reward.engine import score_output, score_trajectory
from toolgym.env.reward.trajectory import StepRecord, Trajectory
from toolgym.env.types import ParsedAction

pytest.importorskip("bfcl_eval")

from toolgym.trainer.data import (  # noqa: E402
    UnsatisfiableGroundTruth,
    _offered_tools,
    ast_ground_truth_calls,
    multi_turn_ground_truth_calls,
    sft_messages,
)

NOTES = Path(__file__).resolve().parents[3] / "env" / "data" / "NOTES.md"


def _listed(heading: str) -> set[str]:
    text = NOTES.read_text(encoding="utf-8")
    section = text[text.index(heading):]
    section = section[: section.index("\n## ", 5)]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.M))


def listed_unsatisfiable() -> set[str]:
    return _listed("## Ground truth that no call can satisfy")


@pytest.fixture(scope="module")
def suite():
    from toolgym.env.tasks.suite import load_suite

    return load_suite("default")


def test_every_single_turn_ground_truth_scores_one_or_is_listed(suite):
    listed = listed_unsatisfiable()
    assert len(listed) == 4
    bad, unsat = [], set()
    n = 0
    for task in suite:
        if task.kind != "ast":
            continue
        n += 1
        try:
            calls = ast_ground_truth_calls(task)
        except UnsatisfiableGroundTruth:
            unsat.add(task.id)
            continue
        r = score_trajectory(task, Trajectory(steps=(StepRecord("", ParsedAction("hermes", calls=tuple(calls))),)))
        if r.total != pytest.approx(1.0) or r.penalties:
            bad.append(f"{task.id}: {r.total:.3f} {r.feedback[:160]}")
    assert n == 2351
    assert not bad, "\n".join(bad[:20])
    assert unsat == listed, "the builder's unsatisfiable tasks must be exactly those listed in env/data/NOTES.md"


def test_sft_conversations_are_what_the_scorer_accepts(suite):
    bad = []
    for task in suite:
        if task.kind not in ("ast", "irrelevance") or task.id in listed_unsatisfiable():
            continue
        template = "hermes"
        msgs = sft_messages(task, template)
        assert msgs is not None and msgs[-1]["role"] == "assistant", task.id
        r = score_output(task, msgs[-1]["content"], template)
        if r.total != pytest.approx(1.0):
            bad.append(f"{task.id}: {r.total:.3f} {r.feedback[:160]}")
    assert not bad, "\n".join(bad[:20])


def test_parallel_multiple_26_and_live_multiple_862_from_the_issue(suite):
    # parallel_multiple_26 scored 0.567 (the builder wrote a parameter the schema lacks); 862 cannot pass
    msgs = sft_messages(suite.get("parallel_multiple_26"), "hermes")
    assert score_output(suite.get("parallel_multiple_26"), msgs[-1]["content"], "hermes").total == pytest.approx(1.0)
    with pytest.raises(UnsatisfiableGroundTruth, match="journey_start_time"):
        sft_messages(suite.get("live_multiple_862-181-3"), "hermes")
    # parallel_158 repeats an identical call on purpose: no redundant_call penalty
    r = score_output(suite.get("parallel_158"), sft_messages(suite.get("parallel_158"), "hermes")[-1]["content"], "hermes")
    assert r.total == pytest.approx(1.0) and r.penalties == {}


def test_multi_turn_sft_calls_name_offered_tools_with_declared_parameters(suite):
    bad = []
    n = 0
    for task in suite:
        if task.kind != "multi_turn":
            continue
        n += 1
        assert sft_messages(task, "hermes") is not None, task.id
        for turn, calls in enumerate(multi_turn_ground_truth_calls(task)):
            offered = {t.name: t for t in _offered_tools(task, turn)}
            for c in calls:
                spec = offered.get(c.name)
                if spec is None:
                    bad.append(f"{task.id} turn {turn}: {c.name} is not offered")
                    continue
                declared = set((spec.parameters or {}).get("properties") or {})
                if set(c.arguments) - declared:
                    bad.append(f"{task.id} turn {turn}: {c.name} gets undeclared {sorted(set(c.arguments) - declared)}")
        # the rendered actions parse back to the same calls
        for m in sft_messages(task, "hermes")[1:]:
            if m["role"] == "assistant":
                assert not parse(m["content"], "hermes").issues, (task.id, m["content"][:200])
    assert n == 800
    listed = _listed("## Multi-turn ground truth that calls a tool before it is offered")
    assert {b.split()[0] for b in bad} == listed, "\n".join(bad[:20])
