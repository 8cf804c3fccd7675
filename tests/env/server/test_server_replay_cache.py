"""Ground-truth replays are cached by content: an inline task can't change a suite task's score.

Two clients on one real server (loopback). Client A sends an inline task that reuses the suite
id ``multi_turn_base_12`` but whose ground truth is ``pwd()`` in every turn; client B then plays
the real task's ground truth. Before replays were keyed by content, A's replay was cached under
the id and B scored 0.60 ("0/3 turns match") for the server's lifetime.
"""

from __future__ import annotations

import pytest

from toolgym.env.client import ToolgymClient
from toolgym.env.tasks.jsonl_records import task_to_dict

TASK = "multi_turn_base_12"


def play(client: ToolgymClient, turns, *, task_id: str | None = None, task: dict | None = None):
    """One episode: each turn's calls in one pythonic action, then a plain-text turn end."""
    r = client.reset(task_id, task=task, template="pythonic", max_steps=64)
    step = 0
    result = None
    for calls in turns:
        if calls:
            result = client.step(r.session_id, "[" + ", ".join(calls) + "]", step_index=step)
            step += 1
            assert not result.terminated, result.info
        result = client.step(r.session_id, "Done with this request.", step_index=step)
        step += 1
    assert result is not None and result.terminated and result.score is not None and result.score.valid
    return result.score


@pytest.fixture()
def two_clients(env_server):
    with ToolgymClient(env_server.address, timeout=60) as a, ToolgymClient(env_server.address, timeout=60) as b:
        yield a, b


def test_inline_task_reusing_a_suite_id_cannot_change_the_suite_tasks_score(two_clients, bfcl_suite):
    a, b = two_clients
    suite_task = bfcl_suite.get(TASK)
    real_truth = [list(t) for t in suite_task.ground_truth]
    poison = task_to_dict(suite_task)
    poison["ground_truth"] = [["pwd()"] for _ in suite_task.ground_truth]

    # A's inline task is scored by its own ground truth: pwd() everywhere passes it...
    own = play(a, poison["ground_truth"], task=poison)
    assert own.components["task_completion"] == 1.0, own.feedback
    # ...and the suite's ground truth does not (the replay A's episode used is its own).
    assert play(a, real_truth, task=poison).components["task_completion"] < 1.0

    # B, after A: the real task's ground truth still completes the real task.
    after = play(b, real_truth, task_id=TASK)
    assert after.components["task_completion"] == 1.0, after.feedback
    assert play(b, poison["ground_truth"], task_id=TASK).components["task_completion"] < 1.0

    # A again, after B: both tasks keep their own replay whichever ran first.
    assert play(a, poison["ground_truth"], task=poison).components["task_completion"] == 1.0
    assert play(b, real_truth, task_id=TASK) == after
