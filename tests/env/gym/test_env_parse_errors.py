"""The in-process env and hostile or malformed model text (issues 10 items 4-5, 11 items 1 and 9).

A malformed call comes back as an error observation and the turn goes on (``on_parse_error``
``observe``, the default) or the output is taken as it parsed (``end_turn``). Unencodable text
is a recorded format-error step, never an exception, and a step is recorded with every call
it ran.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import toolgym.env  # noqa: F401  (registers toolgym/ToolUse-v0)
from gym_helpers import gt_turn_action

MKDIR_POISON = '<tool_call>{"name": "mkdir", "arguments": {"dir_name": "\\ud800"}}</tool_call>'
TEN_WRONG = "".join('<tool_call>{"name": "echo", "arguments": {"content": "x%d"}}</tool_call>' % i for i in range(10))


@pytest.fixture()
def make():
    envs = []

    def _make(**kw):
        env = gym.make("toolgym/ToolUse-v0", **kw)
        envs.append(env)
        return env

    yield _make
    for e in envs:
        e.close()


def _encodes(obs, info):
    import json

    obs.encode("utf-8")
    json.dumps(info, ensure_ascii=False).encode("utf-8")


def test_malformed_call_is_an_error_observation_and_the_turn_goes_on(make):
    env = make(template="hermes")
    env.reset(options={"task_id": "multi_turn_base_0"})
    obs, reward, term, trunc, info = env.step('<tool_call>{"name": "ls", "arguments": {"a": tru}}</tool_call>')
    assert not term and not trunc and info["turn"] == 0
    assert "Format error" in obs and "[hermes parser] invalid_json at line 1, column" in obs
    assert '"a": tru' in obs  # the fragment it choked on
    assert info["parse_issues"] and "invalid_json" in info["parse_issues"][0]
    obs, _, term, _, info = env.step('<tool_call>{"name": "ls", "arguments": {}}</tool_call>')
    assert info["turn"] == 0 and "current_directory_content" in obs and "Format error" not in obs
    ep = env.unwrapped._episode
    assert len(ep.steps) == 2 and ep.steps[0].parsed.issues and ep.steps[0].outcomes == ()


def test_end_turn_mode_takes_the_output_as_it_parsed(make):
    env = make(template="hermes", on_parse_error="end_turn")
    env.reset(options={"task_id": "multi_turn_base_0"})
    obs, _, term, _, info = env.step("<tool_call>{broken</tool_call>")
    assert info["turn"] == 1 and not term and obs.startswith("Format error") and "User:" in obs
    # ...and a reset option overrides the constructor per episode.
    env.reset(options={"task_id": "multi_turn_base_0", "on_parse_error": "observe"})
    _, _, _, _, info = env.step("<tool_call>{broken</tool_call>")
    assert info["turn"] == 0


def test_bad_parse_error_mode_is_a_clear_error(make):
    with pytest.raises(ValueError, match="on_parse_error must be one of"):
        make(on_parse_error="ignore")
    env = make()
    with pytest.raises(ValueError, match="on_parse_error must be one of"):
        env.reset(options={"task_id": "multi_turn_base_0", "on_parse_error": "retry"})
    with pytest.raises(ValueError, match="supported: task_id, template, on_parse_error"):
        env.reset(options={"bogus": 1})


def test_final_answer_task_keeps_going_after_a_malformed_call(make):
    env = make(template="hermes")
    env.reset(options={"task_id": "toolgym_python_0"})
    obs, _, term, _, info = env.step("<tool_call>{\"name\": \"python\", \"arguments\": {\"code\": 1</tool_call>")
    assert not term and "Format error" in obs


@pytest.mark.parametrize("action", [
    MKDIR_POISON,
    '<tool_call>{"name": "mkdir", "arguments": {"dir_name": "\ud800"}}</tool_call>',  # raw, not escaped
    '<tool_call>{"name": "mk\\udc00dir", "arguments": {}}</tool_call>',
    "plain text with a lone \udfff surrogate",
])
def test_surrogate_anywhere_is_a_recorded_format_error_step(make, action):
    env = make(template="hermes")
    env.reset(options={"task_id": "multi_turn_base_0"})
    obs, reward, term, trunc, info = env.step(action)
    _encodes(obs, info)
    assert not term and "invalid_text" in obs and info["parse_issues"]
    ep = env.unwrapped._episode
    assert len(ep.steps) == 1 and ep.steps[0].outcomes == () and ep.steps[0].parsed.calls == ()
    obs, *_ = env.step('<tool_call>{"name": "ls", "arguments": {}}</tool_call>')
    assert "document" in obs  # nothing was created by the poisoned step; the session goes on


def _play(env, task, first: str) -> dict:
    env.reset(options={"task_id": task.id})
    for t, turn in enumerate(task.ground_truth):
        if t == 0:
            env.step(first)
        a = gt_turn_action(turn, task.tools)
        if a:
            env.step(a)
        _, _, term, trunc, info = env.step("Done.")
        if term or trunc:
            return info
    raise AssertionError("episode did not end")


def test_ten_wrong_calls_plus_poison_keep_their_penalties(make, bfcl_suite):
    task = bfcl_suite.get("multi_turn_base_0")
    env = make(template="hermes")
    clean = _play(env, task, TEN_WRONG)
    poisoned = _play(env, task, TEN_WRONG + MKDIR_POISON)
    # The ten calls ran and were recorded in both: the wrong-tool penalties are not erased.
    assert clean["penalties"].get("wrong_tool", 0) < 0 and poisoned["penalties"].get("wrong_tool", 0) < 0
    assert sum(poisoned["penalties"].values()) == pytest.approx(sum(clean["penalties"].values()))
    # The only difference is the poison call's own format error: every other component is equal.
    other = {k: v for k, v in clean["components"].items() if k != "format_compliance"}
    assert {k: v for k, v in poisoned["components"].items() if k != "format_compliance"} == other
    assert poisoned["components"]["format_compliance"] < clean["components"]["format_compliance"]
    weight = 0.1  # format_compliance's default weight bounds the difference
    assert clean["total"] - weight <= poisoned["total"] <= clean["total"]


def test_misplaced_think_calls_do_not_run(make):
    env = make(template="hermes")
    env.reset(options={"task_id": "multi_turn_base_0"})
    obs, _, term, _, info = env.step('Sure. <think><tool_call>{"name": "mkdir", "arguments": {"dir_name": "t"}}</tool_call></think>')
    assert not term and "misplaced_think" in obs and info["calls"] == []
    obs, *_ = env.step('<tool_call>{"name": "ls", "arguments": {}}</tool_call>')
    assert '"t"' not in obs


def test_action_longer_than_the_space_is_refused(make):
    env = make(template="hermes")
    env.reset(options={"task_id": "multi_turn_base_0"})
    limit = env.action_space.max_length
    with pytest.raises(ValueError, match=f"at most {limit}"):
        env.step("x" * (limit + 1))
    assert env.unwrapped._episode.steps == []  # nothing ran, nothing recorded


def test_python_tool_raising_a_surrogate_is_recorded(make):
    env = make(template="hermes")
    env.reset(options={"task_id": "toolgym_python_0"})
    obs, _, term, _, info = env.step('<tool_call>{"name": "python", "arguments": {"code": "raise Exception(chr(0xd800))"}}</tool_call>')
    _encodes(obs, info)
    assert not term and len(env.unwrapped._episode.steps) == 1
    obs, *_ = env.step('<tool_call>{"name": "python", "arguments": {"code": "print(6*7)"}}</tool_call>')
    assert "42" in obs


def test_info_lists_parameters_in_declared_order(make, bfcl_suite):
    # Positional arguments bind in the schema's declared order, so what a client reads must keep it.
    task = bfcl_suite.get("multi_turn_base_0")
    env = make(template="pythonic")
    _, info = env.reset(options={"task_id": task.id})
    declared = {t.name: list(t.parameters.get("properties", {})) for t in task.tools}
    got = {t["name"]: list(t["parameters"].get("properties", {})) for t in info["tools"]}
    assert got == {n: declared[n] for n in got}
    assert any(v != sorted(v) for v in got.values())  # the check is not vacuous: some order is not alphabetical


def test_prose_without_structure_still_ends_the_turn(make):
    # react wants "Final Answer:", but plain prose is a message to the user, not a malformed call.
    env = make(template="react")
    env.reset(options={"task_id": "multi_turn_base_0"})
    obs, _, term, _, info = env.step("I listed the files for you.")
    assert info["turn"] == 1 and "no_structure" in obs and "User:" in obs and info["parse_issues"]
    obs, _, _, _, info = env.step('Action: ls\nAction Input: {"a": tru}')
    assert info["turn"] == 1 and "Format error" in obs  # a malformed call: the turn goes on
