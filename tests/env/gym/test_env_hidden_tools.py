"""Hidden tools stay hidden (issue 10 item 6) over every multi_turn_miss_func task.

Before a withheld tool's turn, nothing the model sees (the prompt, every observation, every
info) names it, nor any ``excluded_function``, whatever the model tries: an unknown tool, a
malformed call, a bad call to an offered tool. The task's own user text is task data and may
use the word ("sort the files"), so it is taken out before searching.
"""

from __future__ import annotations

import json
import re

import gymnasium as gym
import pytest

import toolgym.env  # noqa: F401  (registers toolgym/ToolUse-v0)


def _hidden_before(task, turn: int) -> set[str]:
    held = {n for t, names in task.missed_function.items() if int(t) > turn for n in names}
    return held | set(task.metadata.get("excluded_function") or ())


def _leaks(text: str, names: set[str], task) -> list[str]:
    for turn in task.turns:
        for m in turn:
            text = text.replace(m.get("content", ""), "")
    return sorted(n for n in names if re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", text))


@pytest.fixture(scope="module")
def env():
    e = gym.make("toolgym/ToolUse-v0", template="hermes", max_steps=200)
    yield e
    e.close()


def _sweep(env, tasks) -> int:
    """Probe each task's turns up to its last withheld tool's; return the number of probe steps."""
    probes = 0
    for task in tasks:
        last = max(int(t) for t in task.missed_function)
        obs, info = env.reset(options={"task_id": task.id})
        seen = [(0, obs + json.dumps(info))]
        first = info["tools"][0]["name"]
        for turn in range(last):
            for action in ('<tool_call>{"name": "nonexistent_tool_xyz", "arguments": {}}</tool_call>',
                           '<tool_call>{"name": "' + first + '", "arguments": {"zz_bogus": [1]}}</tool_call>',
                           '<tool_call>{"name": broken}</tool_call>'):
                obs, _, term, trunc, info = env.step(action)
                seen.append((turn, obs + json.dumps(info)))
                probes += 1
            obs, _, term, trunc, info = env.step("ok")  # ends the turn: the next user message follows
            if term or trunc:
                break
            seen.append((turn + 1, obs + json.dumps(info)))
        for turn, text in seen:
            assert not _leaks(text, _hidden_before(task, turn), task), (task.id, turn, _leaks(text, _hidden_before(task, turn), task))
        # ...and once its turn comes, the withheld tool is announced.
        assert all(n in seen[-1][1] for n in task.missed_function[str(last)]), task.id
    return probes


def _miss_func(suite):
    return sorted(suite.filter(categories=["multi_turn_miss_func"]), key=lambda t: t.id)


def test_no_withheld_name_reaches_the_model_before_its_turn(env, bfcl_suite):
    tasks = _miss_func(bfcl_suite)
    assert len(tasks) == 200
    assert _sweep(env, tasks) >= 600


def test_no_withheld_name_reaches_the_model_over_grpc(env_server, bfcl_suite):
    # The same sweep through a real server on loopback, on every tenth task (the rules are the
    # episode's, shared by both envs; this checks nothing on the wire adds a name).
    remote = gym.make("toolgym/ToolUse-v0", server=env_server.address, template="hermes", max_steps=200)
    try:
        assert _sweep(remote, _miss_func(bfcl_suite)[::10]) >= 60
    finally:
        remote.close()


def test_unknown_tool_error_lists_only_offered_tools(env, bfcl_suite):
    task = bfcl_suite.get("multi_turn_miss_func_0")
    _, info = env.reset(options={"task_id": task.id})
    obs, *_ , info = env.step('<tool_call>{"name": "nonexistent_tool_xyz", "arguments": {}}</tool_call>')
    assert "unknown tool 'nonexistent_tool_xyz'; the tools offered now are: " in obs
    assert "ls" in obs and not _leaks(obs, {"sort", "cp"}, task)
    assert info["unoffered_calls"] == ["nonexistent_tool_xyz"]


def test_withheld_and_excluded_calls_run_as_bfcl_runs_them_and_are_marked(env, bfcl_suite):
    # BFCL's executor evals any public method of the task's backends: sort (withheld until
    # turn 3) and cp (excluded) run. The step record says they were not offered, and the reward
    # engine counts them as hallucinated.
    task = bfcl_suite.get("multi_turn_miss_func_0")
    env.reset(options={"task_id": task.id})
    obs, *_, info = env.step('<tool_call>{"name": "cp", "arguments": {"source": "nope", "destination": "x"}}</tool_call>')
    assert "cp: cannot copy" in obs and info["unoffered_calls"] == ["cp"]
    obs, *_ = env.step('<tool_call>{"name": "kill", "arguments": {}}</tool_call>')
    assert "not allowed" in obs  # refused by name, as BFCL's executor does
    ep = env.unwrapped._episode
    assert "cp" not in ep.steps[0].offered and "sort" not in ep.steps[0].offered and "ls" in ep.steps[0].offered
    assert ep.steps[0].outcomes[0].error is None or "cp:" in (ep.steps[0].outcomes[0].output + (ep.steps[0].outcomes[0].error or ""))
    _, _, _, _, info = env.step("stop")  # end turn 0, then give up to score the episode
    _, _, term, _, info = env.step("<give_up>enough</give_up>")
    assert term and info["penalties"].get("hallucinated_tool", 0) < 0
