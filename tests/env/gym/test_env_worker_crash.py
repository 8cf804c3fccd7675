"""Killing the sandbox worker that holds a session mid-episode loses nothing: the session is
rebuilt from its action log on another worker, the step answers, and the episode still scores
as if nothing happened."""

from __future__ import annotations

import os
import signal

from toolgym.env.executor import shared_executor
from toolgym.env.gym_env import ToolUseEnv

from gym_helpers import gt_turn_action


def test_worker_killed_mid_episode_loses_no_session(bfcl_suite):
    task = bfcl_suite.get("multi_turn_base_0")
    env = ToolUseEnv(categories=["multi_turn_base"], max_steps=100)
    try:
        env.reset(options={"task_id": task.id, "template": "hermes"})
        pool = shared_executor().pool
        rebuilds_before = pool.stats().get("rebuilds", 0)
        last = len(task.ground_truth) - 1
        for turn, calls in enumerate(task.ground_truth):
            if turn == 2:
                sid = env.unwrapped._episode._session.session_id
                os.kill(pool.worker_pid(sid), signal.SIGKILL)  # the worker dies between two steps
            action = gt_turn_action(calls, task.tools)
            if action:
                obs, r, term, trunc, info = env.step(action)
                assert "Error" not in obs or turn != 2, obs
            obs, r, term, trunc, info = env.step("Done.")
        assert term
        assert info["components"]["task_completion"] == 1.0, info["feedback"]
        assert pool.stats().get("rebuilds", 0) > rebuilds_before
    finally:
        env.close()
