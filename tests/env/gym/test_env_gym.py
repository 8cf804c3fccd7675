"""ToolUseEnv and RemoteToolUseEnv: Gymnasium API compliance and local/remote identity."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import toolgym.env  # noqa: F401  (registers toolgym/ToolUse-v0)
from toolgym.env.gym_env import RemoteToolUseEnv, ToolUseEnv

from gym_helpers import gt_single_turn_action, gt_turn_actions
from toolgym.env.parsers import render_final_answer

CATS = ["simple_python", "parallel", "irrelevance", "multi_turn_base"]


def _checked(env) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=False)
    return [str(w.message) for w in caught]


def test_check_env_in_process_without_warnings():
    # Made through gym.make so the env has a spec (check_env then also tests every render mode).
    env = gym.make("toolgym/ToolUse-v0", categories=CATS, render_mode="ansi").unwrapped
    try:
        assert _checked(env) == []
    finally:
        env.close()


def test_check_env_remote_without_warnings(env_server):
    env = gym.make("toolgym/ToolUse-v0", server=env_server.address, categories=CATS, render_mode="ansi").unwrapped
    try:
        assert _checked(env) == []
    finally:
        env.close()


def test_make_registered_ids(env_server):
    local = gym.make("toolgym/ToolUse-v0", categories=["simple_python"])
    remote = gym.make("toolgym/ToolUse-v0", server=env_server.address, categories=["simple_python"])
    assert isinstance(local.unwrapped, ToolUseEnv) and isinstance(remote.unwrapped, RemoteToolUseEnv)
    local.close()
    remote.close()


def _episode(env, seed: int, suite) -> list:
    obs, info = env.reset(seed=seed)
    trace: list = [(obs, info)]
    task, tmpl = suite.get(info["task_id"]), info["template"]
    if task.kind == "multi_turn":
        actions = []
        for calls in task.ground_truth[:2]:
            actions += gt_turn_actions(calls, task.tools, tmpl) + [render_final_answer("done", tmpl)]
    else:
        actions = [gt_single_turn_action(task, tmpl)]
    for action in actions:
        obs, r, term, trunc, info = env.step(action)
        trace.append((obs, r, term, trunc, info))
        if term or trunc:
            break
    return trace


@pytest.mark.parametrize("randomize", [False, True])
def test_same_seed_same_episode_local_and_remote(env_server, bfcl_suite, randomize):
    local = ToolUseEnv(categories=CATS, randomize_template=randomize)
    remote = RemoteToolUseEnv(env_server.address, categories=CATS, randomize_template=randomize)
    try:
        for seed in range(8):
            a, b = _episode(local, seed, bfcl_suite), _episode(remote, seed, bfcl_suite)
            assert a == b, f"seed {seed} differs"
        # Unseeded resets continue the RNG stream identically too.
        local.reset(seed=99)
        remote.reset(seed=99)
        assert local.reset()[1]["task_id"] == remote.reset()[1]["task_id"]
    finally:
        local.close()
        remote.close()


def test_single_turn_episode_rewards_ground_truth(bfcl_suite):
    env = ToolUseEnv(categories=["simple_python"])
    obs, info = env.reset(seed=3)
    assert "get" in obs or info["tools"]  # tool specs are rendered into the prompt
    assert info["tools"][0]["name"] in obs
    task = bfcl_suite.get(info["task_id"])
    _, r, term, trunc, info = env.step(gt_single_turn_action(task, info["template"]))
    assert term and not trunc
    assert info["components"]["task_completion"] == 1.0 and r == pytest.approx(info["total"]) and info["valid"]
    with pytest.raises(RuntimeError, match="reset"):
        env.step("again")
    env.close()


def test_step_limit_truncates_with_contract_reward():
    env = ToolUseEnv(categories=["multi_turn_base"], max_steps=2)
    env.reset(seed=0)
    env.step('<tool_call>{"name": "ls", "arguments": {}}</tool_call>')
    _, r, term, trunc, info = env.step('<tool_call>{"name": "pwd", "arguments": {}}</tool_call>')
    assert trunc and not term
    assert set(info["components"]) == {"task_completion", "tool_accuracy", "efficiency", "timing_quality", "format_compliance"}
    env.close()


def test_bad_action_type_is_a_clear_error():
    env = ToolUseEnv(categories=["simple_python"])
    env.reset(seed=0)
    with pytest.raises(TypeError, match="str"):
        env.step(123)  # type: ignore[arg-type]
    env.close()


def test_async_vector_env_remote(env_server):
    addr = env_server.address
    # "module:id" makes gymnasium import toolgym.env (which registers the id) in each spawned worker.
    fns = [lambda: gym.make("toolgym.env:toolgym/ToolUse-v0", server=addr, categories=["simple_python", "irrelevance"]) for _ in range(2)]
    venv = gym.vector.AsyncVectorEnv(fns, context="spawn")
    try:
        obs, infos = venv.reset(seed=[1, 2])
        assert len(obs) == 2 and all(isinstance(o, str) and o for o in obs)
        obs, rew, term, trunc, infos = venv.step(("I will not call any tool.", "No tool needed."))
        assert len(rew) == 2 and all(term)
    finally:
        venv.close()


@pytest.mark.parametrize("code", [
    "import gymnasium as gym, toolgym\ngym.register_envs(toolgym)\nenv = gym.make('toolgym/ToolUse-v0', categories=['simple_python'])",
    "import gymnasium as gym\nenv = gym.make('toolgym:toolgym/ToolUse-v0', categories=['simple_python'])",
])
def test_import_toolgym_alone_registers(code):
    """In a fresh interpreter (here everything is imported already): the top package is enough."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", code + "\nobs, info = env.reset(seed=0)\nprint(info['task_id'])"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().startswith("simple_python_")
