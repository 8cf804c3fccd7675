"""Penalties exactly as the README's reward contract says (issue 11 item 4).

Each penalty kind alone, then combined, on the real engine: the amount in ``penalties`` is the
documented value × occurrences, one timed-out call costs −0.5 once (not once per call and again per
step), and past ``max_penalty_total`` the amounts shown are the ones applied (they sum to the floor).
"""

from __future__ import annotations

import json
from dataclasses import replace
import re
from pathlib import Path

import pytest

from toolgym.env.reward.config import RewardConfig
from toolgym.env.reward.engine import score_output, score_trajectory
from toolgym.env.reward.multi_turn import MultiTurnVerdict
from toolgym.env.reward.trajectory import CallOutcome, StepRecord, Trajectory
from toolgym.env.types import AnswerCheck, ParsedAction, ParseIssue, Task, ToolCall, ToolSpec

README = Path(__file__).resolve().parents[3] / "README.md"

WEATHER = ToolSpec("get_weather", "weather", {"type": "object", "properties": {
    "city": {"type": "string", "x-bfcl-type": "string"}}, "required": ["city"]})
TIME = ToolSpec("get_time", "time", {"type": "object", "properties": {"tz": {"type": "string", "x-bfcl-type": "string"}}, "required": ["tz"]})
PY = ToolSpec("python", "run code", {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]})

AST = Task(id="p1", kind="ast", turns=(({"role": "user", "content": "weather in Paris"},),), tools=(WEATHER, TIME),
           category="simple_python", ground_truth=({"get_weather": {"city": ["Paris"]}},))
ANSWER = Task(id="p2", kind="final_answer", turns=(({"role": "user", "content": "sum of squares 1..100?"},),), tools=(PY,),
              answer=AnswerCheck("numeric", ("338350",)), metadata={"expected_tools": ["python"]})

RIGHT = ToolCall("get_weather", {"city": "Paris"})
WRONG_TOOL = ToolCall("get_time", {"tz": "UTC"})
HALLUCINATED = ToolCall("launch_rockets", {})


def readme_penalties() -> dict[str, float]:
    """The penalty table of the README's reward contract, parsed (the contract under test)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The reward contract"):]
    section = section[: section.index("\n## ", 5)]
    section = section[section.index("| penalty |"):]
    section = section[: section.index("\n\n")]
    out = {}
    for name, value in re.findall(r"^\| (\w+) \| (−?-?\d\.\d+) \|", section, flags=re.M):
        out[name] = float(value.replace("−", "-"))
    return out


def test_readme_table_is_the_default_config():
    documented = readme_penalties()
    assert documented == RewardConfig().penalties
    assert set(documented) == {"wrong_tool", "hallucinated_tool", "redundant_call", "format_error", "timeout"}


def _ast(*calls: ToolCall, issues: bool = False) -> Trajectory:
    parsed = ParsedAction("hermes", calls=tuple(calls),
                          issues=(ParseIssue("hermes", "invalid_json", "bad"),) if issues else ())
    return Trajectory(steps=(StepRecord("", parsed),))


def _answer_steps(timeouts: int, *, step_flag: bool = True, answer: str = "338350") -> tuple[StepRecord, ...]:
    steps = []
    for i in range(timeouts):
        call = ToolCall("python", {"code": f"import time; time.sleep(60)  # {i}"})
        out = CallOutcome(call, ok=False, error="timed out", timed_out=True)
        # the env marks a step timed out when one of its calls did: that is the same offence
        steps.append(StepRecord("", ParsedAction("hermes", calls=(call,)), (out,), timed_out=step_flag))
    steps.append(StepRecord("", ParsedAction("hermes", final_answer=answer)))
    return tuple(steps)


CASES = {
    # name: (task, trajectory, expected penalties)
    "wrong_tool": (AST, _ast(RIGHT, WRONG_TOOL), {"wrong_tool": -0.3}),
    "hallucinated_tool": (AST, _ast(RIGHT, HALLUCINATED), {"hallucinated_tool": -0.4}),
    "redundant_call": (AST, _ast(RIGHT, RIGHT), {"redundant_call": -0.2}),
    "format_error": (AST, _ast(RIGHT, issues=True), {"format_error": -0.1}),
    "timeout (one call)": (ANSWER, Trajectory(steps=_answer_steps(1)), {"timeout": -0.5}),
    "timeout (episode)": (ANSWER, Trajectory(steps=_answer_steps(0), episode_timed_out=True), {"timeout": -0.5}),
    "timeout (step budget, no call flagged)": (
        ANSWER, Trajectory(steps=(StepRecord("", ParsedAction("hermes", final_answer="338350"), timed_out=True),)), {"timeout": -0.5}),
    "two of each call penalty": (AST, _ast(RIGHT, WRONG_TOOL, WRONG_TOOL, HALLUCINATED, HALLUCINATED),
                                 {"wrong_tool": -0.6, "hallucinated_tool": -0.8, "redundant_call": -0.4}),
    "timeout + format": (ANSWER, Trajectory(steps=(*_answer_steps(1)[:1], StepRecord("", ParsedAction(
        "hermes", final_answer="338350", issues=(ParseIssue("hermes", "invalid_json", "bad"),)))),), {"timeout": -0.5, "format_error": -0.1}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_penalty_alone_and_combined_matches_the_contract(name):
    task, traj, want = CASES[name]
    r = score_trajectory(task, traj)
    assert r.valid
    assert r.penalties == pytest.approx(want)
    weights = RewardConfig().weights
    assert r.total == pytest.approx(sum(weights[k] * v for k, v in r.components.items()) + sum(want.values()))
    assert "penalty_floor_applied" not in r.details


def test_one_timed_out_call_then_the_right_answer_costs_half_a_point():
    # issue 11: time.sleep(60) then the right answer on toolgym_python_0 totalled 0.0 (−0.5 per call + −0.5 per step)
    r = score_trajectory(ANSWER, Trajectory(steps=_answer_steps(1)))
    assert r.penalties == {"timeout": -0.5}
    assert r.components["task_completion"] == 1.0
    assert r.total > 0.0


def test_floored_penalties_show_the_amounts_applied():
    flood = _ast(RIGHT, *[ToolCall(f"fake_{i}", {}) for i in range(8)], WRONG_TOOL)
    r = score_trajectory(AST, flood)
    cfg = RewardConfig()
    assert r.details["penalty_floor_applied"] is True
    assert r.details["penalties_raw"] == pytest.approx({"hallucinated_tool": -3.2, "wrong_tool": -0.3})
    assert sum(r.penalties.values()) == pytest.approx(cfg.max_penalty_total)
    # the floor scales every kind by the same factor, so the breakdown keeps its proportions
    ratio = cfg.max_penalty_total / -3.5
    assert r.penalties == pytest.approx({"hallucinated_tool": -3.2 * ratio, "wrong_tool": -0.3 * ratio})
    assert r.total == pytest.approx(sum(cfg.weights[k] * v for k, v in r.components.items()) + cfg.max_penalty_total)


def test_once_per_episode_mode_and_task_overrides():
    cfg = RewardConfig(penalty_per_occurrence=False)
    r = score_trajectory(AST, _ast(RIGHT, HALLUCINATED, ToolCall("other_fake", {})), cfg)
    assert r.penalties == {"hallucinated_tool": -0.4}
    assert r.details["hallucinated_tool_count"] == 2
    t = replace(AST, penalties={"hallucinated_tool": -1.0})
    assert score_trajectory(t, _ast(RIGHT, HALLUCINATED)).penalties == {"hallucinated_tool": -1.0}


def test_redundancy_spares_calls_the_ground_truth_itself_repeats():
    # parallel_158-style: the task needs the same call twice; making it twice is the answer
    t = Task(id="p3", kind="ast", turns=AST.turns, tools=(WEATHER,), category="parallel",
             ground_truth=({"get_weather": {"city": ["Paris"]}}, {"get_weather": {"city": ["Paris"]}}))
    r = score_output(t, "".join(f"<tool_call>{json.dumps({'name': c.name, 'arguments': c.arguments})}</tool_call>"
                                for c in (RIGHT, RIGHT)), "hermes")
    assert r.total == pytest.approx(1.0) and r.penalties == {}
    three = _ast(RIGHT, RIGHT, RIGHT)  # a third copy is one more than needed
    assert score_trajectory(t, three).penalties == {"redundant_call": -0.2}


def test_withheld_tool_called_before_it_is_offered_is_hallucinated():
    # BFCL miss_func: 'sort' is withheld until turn 1; calling it in turn 0 names a tool not offered yet
    ls = ToolSpec("ls", "", {"type": "object", "properties": {}})
    sort = ToolSpec("sort", "", {"type": "object", "properties": {"file_name": {"type": "string"}}, "required": ["file_name"]})
    t = Task(id="m1", kind="multi_turn", turns=((), ()), tools=(ls, sort), category="multi_turn_miss_func",
             ground_truth=(["ls()"], ["sort(file_name='a')"]), missed_function={"1": ("sort",)})
    early = ToolCall("sort", {"file_name": "a"})
    verdict = MultiTurnVerdict(ok=False, turns_ok=(False, True), score=0.5)
    steps = (StepRecord("", ParsedAction("hermes", calls=(early,)), turn=0),
             StepRecord("", ParsedAction("hermes", calls=(early,)), turn=1))
    r = score_trajectory(t, Trajectory(steps=steps, multi_turn=verdict))
    assert r.details["hallucinated_tool_count"] == 1  # turn 0 only; in turn 1 it is offered
    # the env records what it offered per step; that record wins over the task-derived default
    rec = (StepRecord("", ParsedAction("hermes", calls=(early,)), turn=0, offered=frozenset({"ls", "sort"})),)
    assert "hallucinated_tool" not in score_trajectory(t, Trajectory(steps=rec, multi_turn=verdict)).penalties
