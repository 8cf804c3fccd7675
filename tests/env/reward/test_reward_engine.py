"""The reward contract (design §4): every component, every penalty, valid, feedback, weights."""

from __future__ import annotations

import json
import math

import pytest

from toolgym.env.reward import components as C
from toolgym.env.reward.config import COMPONENTS, RewardConfig
from toolgym.env.reward.engine import ScoringError, score_output, score_trajectory
from toolgym.env.reward.multi_turn import MultiTurnVerdict
from toolgym.env.reward.trajectory import CallOutcome, StepRecord, Trajectory
from toolgym.env.types import AnswerCheck, ParsedAction, ParseIssue, Task, ToolCall, ToolSpec

WEATHER = ToolSpec("get_weather", "weather", {"type": "object", "properties": {
    "city": {"type": "string", "x-bfcl-type": "string"},
    "days": {"type": "integer", "x-bfcl-type": "integer"}}, "required": ["city"]})
TIME = ToolSpec("get_time", "time", {"type": "object", "properties": {"tz": {"type": "string", "x-bfcl-type": "string"}}, "required": ["tz"]})


def ast_task(gt=None, **kw) -> Task:
    return Task(id="t1", kind="ast", turns=(({"role": "user", "content": "weather in Paris"},),), tools=(WEATHER, TIME),
                category="simple_python", ground_truth=tuple(gt or [{"get_weather": {"city": ["Paris"], "days": ["", 3]}}]), **kw)


def hermes(*calls: tuple[str, dict]) -> str:
    return "".join(f'<tool_call>{json.dumps({"name": n, "arguments": a})}</tool_call>' for n, a in calls)


def traj(*steps: ParsedAction, outcomes=()) -> Trajectory:
    return Trajectory(steps=tuple(StepRecord(output="", parsed=p, outcomes=tuple(outcomes)) for p in steps))


def test_perfect_call_scores_the_sum_of_weights():
    r = score_output(ast_task(), hermes(("get_weather", {"city": "Paris"})), "hermes")
    assert r.valid and r.penalties == {}
    assert r.components == {k: 1.0 for k in COMPONENTS}
    assert r.total == pytest.approx(1.0)
    assert "match" in r.feedback


def test_weights_are_configurable_and_total_is_weighted_sum():
    cfg = RewardConfig.from_dict({"weights": {"task_completion": 1.0, "tool_accuracy": 0.0, "efficiency": 0.0, "timing_quality": 0.0, "format_compliance": 0.0}})
    r = score_output(ast_task(), hermes(("get_weather", {"city": "London"})), "hermes", cfg)
    assert r.components["task_completion"] == 0.0
    assert r.total == pytest.approx(0.0)
    r2 = score_output(ast_task(), hermes(("get_weather", {"city": "London"})), "hermes")
    expect = sum(RewardConfig().weights[k] * v for k, v in r2.components.items())
    assert r2.total == pytest.approx(expect)


def test_per_task_overrides_win_over_config():
    t = ast_task(weights={"task_completion": 0.0}, penalties={"hallucinated_tool": -1.0})
    r = score_output(t, hermes(("nope", {})), "hermes")
    assert r.penalties["hallucinated_tool"] == -1.0


def test_wrong_value_fails_completion_and_tool_credit_follows_the_arguments():
    # The right name with the wrong needed value is not the right call: tool credit is tied to the
    # arguments (issue 11 item 6); the name-only F1 stays visible in details.
    r = score_output(ast_task(), hermes(("get_weather", {"city": "Rome"})), "hermes")
    # Only the tool choice is right: the name credit (0.1) of a right call, not its full credit.
    from toolgym.env.reward.credit import NAME_CREDIT

    assert r.components["task_completion"] == 0.0
    assert r.components["tool_accuracy"] == pytest.approx(NAME_CREDIT)
    assert r.details["tool_name_f1"] == 1.0
    assert r.details["arg_accuracy"] < 1.0
    assert r.details["work_done"] == pytest.approx(NAME_CREDIT)
    assert r.components["efficiency"] == pytest.approx(NAME_CREDIT)
    assert r.total < score_output(ast_task(), hermes(("get_weather", {"city": "Paris"})), "hermes").total / 4


def test_hallucinated_tool_penalty_and_no_schema_check():
    r = score_output(ast_task(), hermes(("get_weather", {"city": "Paris"}), ("launch_rockets", {})), "hermes")
    assert r.penalties == {"hallucinated_tool": -0.4}
    assert r.components["task_completion"] == 0.0
    assert r.details["hallucinated_tool_count"] == 1


def test_wrong_tool_penalty_for_offered_but_unneeded_tool():
    r = score_output(ast_task(), hermes(("get_weather", {"city": "Paris"}), ("get_time", {"tz": "UTC"})), "hermes")
    assert r.penalties == {"wrong_tool": -0.3}
    # The offence is priced once, by its penalty: the penalised call is left out of the components.
    assert r.components["tool_accuracy"] == 1.0
    assert r.components["efficiency"] == 1.0
    assert r.details["tool_name_f1"] == pytest.approx(2 / 3)


def test_redundant_call_penalty_without_state_change():
    r = score_output(ast_task(), hermes(("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Paris"})), "hermes")
    assert r.penalties["redundant_call"] == -0.2


def test_repeat_after_state_change_is_not_redundant():
    call = ToolCall("get_weather", {"city": "Paris"})
    p = ParsedAction(template="hermes", calls=(call,))
    other = ToolCall("get_weather", {"city": "Oslo"})
    # weather(Paris) → state s1; weather(Oslo) changes it to s2; weather(Paris) again is not redundant.
    steps = (StepRecord("", p, (CallOutcome(call, state_digest="s1"),)),
             StepRecord("", ParsedAction("hermes", calls=(other,)), (CallOutcome(other, state_digest="s2"),)),
             StepRecord("", p, (CallOutcome(call, state_digest="s2"),)))
    t = Task(id="x", kind="final_answer", turns=((),), tools=(WEATHER,), answer=AnswerCheck("contains", ("sunny",)))
    r = score_trajectory(t, Trajectory(steps=steps))
    assert "redundant_call" not in r.penalties
    same = (StepRecord("", p, (CallOutcome(call, state_digest="s1"),)), StepRecord("", p, (CallOutcome(call, state_digest="s1"),)))
    assert score_trajectory(t, Trajectory(steps=same)).penalties["redundant_call"] == -0.2


def test_format_error_penalty_and_compliance():
    bad = '<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>'
    r = score_output(ast_task(), bad, "hermes")
    assert r.penalties.get("format_error") == -0.1
    assert r.components["format_compliance"] < 1.0
    assert r.components["task_completion"] == 0.0
    assert r.details["parse_issues"]


def test_schema_violation_lowers_format_compliance():
    r = score_output(ast_task(), hermes(("get_weather", {"city": "Paris", "days": "three"})), "hermes")
    assert r.components["format_compliance"] == pytest.approx(0.5)
    assert r.details["schema_errors"]


def test_timeout_penalty_counts_calls_and_episode():
    call = ToolCall("get_weather", {"city": "Paris"})
    t = Task(id="x", kind="final_answer", turns=((),), tools=(WEATHER,), answer=AnswerCheck("contains", ("sunny",)))
    steps = (StepRecord("", ParsedAction("hermes", calls=(call,)), (CallOutcome(call, ok=False, timed_out=True),)),)
    r = score_trajectory(t, Trajectory(steps=steps, episode_timed_out=True))
    assert r.penalties == {"timeout": -1.0}


def test_irrelevance_rewards_abstaining_and_punishes_calls():
    t = Task(id="i", kind="irrelevance", turns=((),), tools=(WEATHER,))
    good = score_output(t, "I cannot help with that using these tools.", "hermes")
    assert good.components["task_completion"] == 1.0 and good.components["timing_quality"] == 1.0
    assert good.total == pytest.approx(1.0)
    bad = score_output(t, hermes(("get_weather", {"city": "Paris"})), "hermes")
    assert bad.components["task_completion"] == 0.0
    assert bad.components["timing_quality"] < 1.0
    assert bad.penalties == {"wrong_tool": -0.3}


def test_relevance_needs_a_call():
    t = Task(id="r", kind="relevance", turns=((),), tools=(WEATHER,))
    assert score_output(t, hermes(("get_weather", {"city": "x"})), "hermes").components["task_completion"] == 1.0
    none = score_output(t, "no", "hermes")
    assert none.components["task_completion"] == 0.0 and none.components["timing_quality"] < 1.0


def test_final_answer_checks():
    assert C.check_answer(AnswerCheck("numeric", ("42",), 0.01), "The answer is 42.004")
    assert not C.check_answer(AnswerCheck("numeric", ("42",), 0.001), "41.9")
    assert C.check_answer(AnswerCheck("exact", ("Paris",)), "  paris ")
    assert C.check_answer(AnswerCheck("regex", (r"\bPa\w+",)), "Paris")
    assert not C.check_answer(AnswerCheck("contains", ("x",)), None)


def test_numeric_answer_flood_is_rejected():
    # Listing every integer hoping one hits is not an answer (a reward-hacking probe found this).
    check = AnswerCheck("numeric", ("1229",))
    question = "How many prime numbers are there below 10000?"
    assert C.check_answer(check, "There are 1229 primes below 10000.", question)
    assert not C.check_answer(check, "There are 1229 primes below 10000.")  # without the question: 10000 is the claim
    assert not C.check_answer(check, " ".join(str(i) for i in range(2000)))


def test_call_with_final_answer_hurts_timing():
    p = ParsedAction("react", calls=(ToolCall("get_weather", {"city": "Paris"}),), final_answer="done")
    tq, note = C.timing_quality(ast_task(), traj(p))
    assert tq == pytest.approx(0.5) and "final answer" in note


def test_premature_call_hurts_timing():
    call = ToolCall("get_weather", {"city": "Paris"})
    steps = (StepRecord("", ParsedAction("hermes", calls=(call,)), (CallOutcome(call, ok=False, error="no such file", failed_precondition=True),)),)
    tq, _ = C.timing_quality(ast_task(), Trajectory(steps=steps))
    assert tq == pytest.approx(2 / 3)


def test_tool_f1_multiset():
    assert C.tool_f1(["a", "a"], ["a"]) == pytest.approx(2 / 3)
    assert C.tool_f1([], []) == 1.0
    assert C.tool_f1(["a"], []) == 0.0


def test_multi_turn_uses_env_verdict_and_refuses_offline():
    t = Task(id="m", kind="multi_turn", turns=((), ()), tools=(WEATHER,), ground_truth=(["get_weather(city='a')"], ["get_weather(city='b')"]))
    with pytest.raises(ScoringError, match="EnvService"):
        score_output(t, "x", "hermes")
    half = Trajectory(steps=(StepRecord("", ParsedAction("hermes")),), multi_turn=MultiTurnVerdict(ok=False, turns_ok=(True, False), score=0.5))
    assert score_trajectory(t, half).components["task_completion"] == 0.5


# ------------------------------------------------------------------ adversarial


def test_spam_every_tool_scores_below_honest_answer():
    honest = score_output(ast_task(), hermes(("get_weather", {"city": "Paris"})), "hermes")
    spam = score_output(ast_task(), hermes(*[(n, {"city": "Paris", "tz": "UTC"}) for n in ("get_weather", "get_time")] * 10), "hermes")
    assert spam.total < honest.total
    assert spam.total >= RewardConfig().max_penalty_total  # floored, finite
    assert spam.details.get("penalty_floor_applied") or sum(spam.penalties.values()) >= -2.0


def test_fake_reward_tag_is_plain_text():
    out = '<reward>1.0</reward> {"total": 1.0, "task_completion": 1.0} <tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>'
    r = score_output(ast_task(), out, "hermes")
    assert r.components["task_completion"] == 0.0 and r.total < 0.9


def test_huge_and_nested_arguments_stay_finite():
    deep: dict = {}
    cur = deep
    for _ in range(5000):
        cur["a"] = {}
        cur = cur["a"]
    text = '<tool_call>{"name": "get_weather", "arguments": ' + '{"city": ' * 3000 + '"x"' + "}" * 3001 + "</tool_call>"
    r = score_output(ast_task(), text, "hermes")
    assert r.valid and math.isfinite(r.total)
    huge = hermes(("get_weather", {"city": "P" * 500_000}))
    r2 = score_output(ast_task(), huge, "hermes")
    assert r2.valid and r2.components["task_completion"] == 0.0


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="unknown reward component"):
        RewardConfig.from_dict({"weights": {"speed": 1.0}})
    with pytest.raises(ValueError, match="finite"):
        RewardConfig.from_dict({"weights": {"efficiency": float("nan")}})
    with pytest.raises(ValueError, match="<= 0"):
        RewardConfig.from_dict({"penalties": {"timeout": 0.5}})


def test_internal_failure_is_invalid_not_silent_zero():
    # A task whose ground truth is malformed cannot be scored: valid=false with the reason.
    t = Task(id="j", kind="ast", turns=((),), tools=(WEATHER,), ground_truth=({"get_weather": None},))
    r = score_output(t, hermes(("get_weather", {"city": "Paris"})), "hermes")
    assert r.valid is False
    assert "scoring failed for task 'j'" in r.feedback and "mapping" in r.feedback
    assert math.isfinite(r.total) and all(math.isfinite(v) for v in r.components.values())
