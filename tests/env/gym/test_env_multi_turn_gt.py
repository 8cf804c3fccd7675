"""Every multi_turn_base task replayed with its own ground truth through the env scores
task_completion 1.0; dropping its last turn's calls scores less (all 200 tasks)."""

from __future__ import annotations

import pytest

from toolgym.env.gym_env import ToolUseEnv

from gym_helpers import gt_turn_action


def run_episode(env, task, drop_last: bool) -> dict:
    obs, info = env.reset(options={"task_id": task.id, "template": "hermes"})
    info = {}
    last = len(task.ground_truth) - 1
    # "The last turn's calls": the last turn that has any. multi_turn_base_167's final turn has an
    # empty ground truth in BFCL's data (nothing to drop there), so its previous turn is dropped.
    drop = max(i for i, c in enumerate(task.ground_truth) if c)
    for turn, calls in enumerate(task.ground_truth):
        action = None if (drop_last and turn == drop) else gt_turn_action(calls, task.tools)
        if action is not None:
            obs, r, term, trunc, info = env.step(action)
            assert not term and not trunc, f"{task.id}: episode ended inside turn {turn}"
        obs, r, term, trunc, info = env.step("Done with this request.")
        if term or trunc:
            assert turn == last, f"{task.id}: ended early at turn {turn}"
    assert term and not trunc
    return info


@pytest.fixture(scope="module")
def env():
    e = ToolUseEnv(suite="bfcl", categories=["multi_turn_base"], max_steps=200)
    yield e
    e.close()


def test_all_multi_turn_base_ground_truth_complete_and_dropping_last_turn_scores_less(env, bfcl_suite):
    tasks = sorted(bfcl_suite.filter(categories=["multi_turn_base"]), key=lambda t: t.id)
    assert len(tasks) == 200
    failures, not_lower = [], []
    for task in tasks:
        full = run_episode(env, task, drop_last=False)
        if full["components"]["task_completion"] != 1.0 or full["penalties"]:
            # The ground truth is an honest trajectory: complete, and no penalty of any kind (e.g.
            # a repeated cd(folder='temp') after a cd('..') is not a redundant call).
            failures.append((task.id, full["feedback"]))
            continue
        dropped = run_episode(env, task, drop_last=True)
        if not dropped["components"]["task_completion"] < 1.0:
            not_lower.append(task.id)
    assert not failures, failures[:5]
    assert not not_lower, not_lower[:10]


def test_redundant_call_needs_an_unchanged_state(env):
    ls = '<tool_call>{"name": "ls", "arguments": {}}</tool_call>'
    cd_doc = '<tool_call>{"name": "cd", "arguments": {"folder": "document"}}</tool_call>'
    cd_up = '<tool_call>{"name": "cd", "arguments": {"folder": ".."}}</tool_call>'

    def penalties(actions):
        env.reset(options={"task_id": "multi_turn_base_0", "template": "hermes"})
        for a in actions:
            env.step(a)
        info = {}
        for _ in range(4):  # end every user turn
            _, _, term, trunc, info = env.step("Done.")
            if term or trunc:
                break
        return info["penalties"]

    assert penalties([ls, ls]).get("redundant_call") == -0.2          # nothing changed in between
    assert "redundant_call" not in penalties([cd_doc, cd_up, cd_doc])  # the directory changed in between
