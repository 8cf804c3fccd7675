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
        if full["components"]["task_completion"] != 1.0:
            failures.append((task.id, full["feedback"]))
            continue
        dropped = run_episode(env, task, drop_last=True)
        if not dropped["components"]["task_completion"] < 1.0:
            not_lower.append(task.id)
    assert not failures, failures[:5]
    assert not not_lower, not_lower[:10]
