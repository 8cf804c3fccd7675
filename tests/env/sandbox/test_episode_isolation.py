"""Episode isolation: an episode's final state and reward do not depend on what ran before it.

BFCL's backends keep state at module, class and function-default level (``TwitterAPI.post_tweet``'s
``mentions=[]``, mutated in place by ``mention()``); a long-lived worker used to carry it from
one episode into the next. Each multi-turn backend class (all eight) and the python tool is
played here, by its ground truth, after unrelated episodes on the same long-lived workers, and
every observation, reward and final info must equal, byte for byte, what a fresh worker gives.
Covered: the in-process env, the remote env (a real gRPC server on loopback) and a vector env.
"""

from __future__ import annotations

import json
import re

import gymnasium as gym
import pytest

from toolgym.env import executor
from toolgym.env.gym_env import RemoteToolUseEnv, ToolUseEnv
from toolgym.env.parsers.pythonic import parse_python_calls
from toolgym.env.sandbox import SandboxConfig

#: One multi_turn_base task per backend class (the first that involves it).
TARGETS = {
    "GorillaFileSystem": "multi_turn_base_1",
    "MathAPI": "multi_turn_base_15",
    "MessageAPI": "multi_turn_base_14",
    "TwitterAPI": "multi_turn_base_58",  # posts a tweet with the default (mutable) mentions list
    "TicketAPI": "multi_turn_base_2",
    "TradingBot": "multi_turn_base_100",
    "TravelAPI": "multi_turn_base_150",
    "VehicleControlAPI": "multi_turn_base_50",
    "python": "toolgym_python_0",
}
#: Unrelated episodes before the targets: a model-like one that tweets without mentions and then
#: mentions someone (``mention()`` extends the tweet's list in place: the function default), both
#: ground truths that call ``mention()``, then every target itself (each runs after all others).
LEAKY = "multi_turn_base_58"
WARMUP = ["multi_turn_base_90", "multi_turn_base_147", *reversed(TARGETS.values())]
CATEGORIES = ["multi_turn_base", "toolgym_python"]

# What a python episode does: looks for anything an earlier session left (workspace, /tmp, its
# own interpreter), leaves traces of its own, then answers.
PY_PROBE = (
    "import os, sys, json\n"
    "seen = {'ws': sorted(os.listdir('.')), 'tmp': sorted(os.listdir('/tmp')), 'marker': hasattr(json, '_toolgym_mark')}\n"
    "open('mark.txt', 'a').write('x')\n"
    "json._toolgym_mark = True\n"
    "print(seen, len(open('mark.txt').read()), sum(i * i for i in range(1, 101)))"
)


def _tool_call(name: str, args: dict) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": args}) + "</tool_call>"


def _actions(task) -> list[str]:
    """The task's ground truth as hermes actions: each turn's calls, then a text reply."""
    if task.kind != "multi_turn":
        return [_tool_call("python", {"code": PY_PROBE}), "The answer is 338350."]
    params = {t.name: list(t.parameters.get("properties", {})) for t in task.tools}
    out = []
    for turn in task.ground_truth:
        calls = [c for s in turn for c in parse_python_calls(s, allow_positional=True)]
        named = []
        for c in calls:  # BFCL's ground truth has a few positional calls: name them from the schema
            names = params.get(c.name, [])
            named.append(_tool_call(c.name, {(names[int(k[5:])] if k.startswith("__arg") else k): v for k, v in c.arguments.items()}))
        if named:
            out.append("".join(named))
        out.append("Done with this request.")
    return out


def play_leaky(env, task) -> None:
    """What a model may well do: tweet without mentions, then mention someone in that tweet."""
    env.reset(options={"task_id": task.id, "template": "hermes"})
    obs, *_ = env.step(_tool_call("post_tweet", {"content": "hello from an earlier episode"}))
    tweet_id = int(re.search(r'id\W*(\d+)', obs).group(1))  # the result is JSON inside the observation's JSON
    env.step(_tool_call("mention", {"tweet_id": tweet_id, "mentioned_usernames": ["@earlier_episode"]}))
    for _ in range(len(task.ground_truth) + 1):
        *_, term, trunc, _ = env.step("Done with this request.")
        if term or trunc:
            return
    raise AssertionError(f"{task.id}: the episode did not end")


def warm_up(env, tasks) -> None:
    play_leaky(env, tasks[LEAKY])
    for tid in WARMUP:
        play(env, tasks[tid])


def _stable(info: dict) -> dict:
    """``info`` without what may differ between runs for reasons other than state (timings)."""
    return {k: v for k, v in info.items() if "duration" not in k and "elapsed" not in k and k != "session_id"}


def play(env, task) -> str:
    """Every observation, reward, end flag and info of one episode, as canonical JSON text."""
    obs, info = env.reset(options={"task_id": task.id, "template": "hermes"})
    trace = [obs, _stable(info)]
    for action in _actions(task):
        obs, reward, term, trunc, info = env.step(action)
        trace.append([obs, float(reward), bool(term), bool(trunc), _stable(info)])
        if term or trunc:
            break
    assert term, f"{task.id}: the ground truth did not end the episode"
    return json.dumps(trace, sort_keys=True, ensure_ascii=True, default=str)


@pytest.fixture(scope="module")
def tasks(bfcl_suite):
    return {tid: bfcl_suite.get(tid) for tid in dict.fromkeys([*WARMUP, *TARGETS.values()])}


@pytest.fixture(scope="module")
def fresh(tasks):
    """Each target played on a pool of its own: one fresh worker, nothing ran before."""
    out = {}
    for tid in TARGETS.values():
        mp = pytest.MonkeyPatch()
        ex = executor.ToolExecutor(SandboxConfig(workers=1))
        mp.setattr(executor, "_shared", ex)
        env = ToolUseEnv(suite="default", categories=CATEGORIES, max_steps=200)
        try:
            out[tid] = play(env, tasks[tid])
        finally:
            env.close()
            ex.close()
            mp.undo()
    return out


@pytest.fixture(scope="module")
def long_lived():
    """The in-process envs' executor for the rest of the module: one worker that serves everything."""
    mp = pytest.MonkeyPatch()
    ex = executor.ToolExecutor(SandboxConfig(workers=1))
    mp.setattr(executor, "_shared", ex)
    yield ex
    ex.close()
    mp.undo()


def _assert_same(got: dict, fresh: dict, where: str) -> None:
    differ = [f"{cls} ({tid})" for cls, tid in TARGETS.items() if got[tid] != fresh[tid]]
    assert not differ, f"{where}: these episodes depend on earlier episodes on the same worker: {differ}"


def test_in_process_env_episodes_equal_a_fresh_worker(tasks, fresh, long_lived):
    env = ToolUseEnv(suite="default", categories=CATEGORIES, max_steps=200)
    try:
        warm_up(env, tasks)
        got = {tid: play(env, tasks[tid]) for tid in TARGETS.values()}
    finally:
        env.close()
    assert long_lived.stats()["workers_started"] == 1  # all of it on one long-lived worker
    _assert_same(got, fresh, "in-process env")


def test_vector_env_episodes_equal_a_fresh_worker(tasks, fresh, long_lived):
    n = 2
    venv = gym.vector.SyncVectorEnv([lambda: ToolUseEnv(suite="default", categories=CATEGORIES, max_steps=200) for _ in range(n)])
    try:
        warm_up(venv.envs[0], tasks)  # dirty the worker through the vector env's own sub-env
        got = {}
        for tid in TARGETS.values():
            # Every sub-env plays the same target at once, through the vector API, on the one worker.
            obs, infos = venv.reset(options={"task_id": tid, "template": "hermes"})
            traces = [[obs[k]] for k in range(n)]
            for action in _actions(tasks[tid]):
                obs, rewards, terms, truncs, infos = venv.step([action] * n)
                for k in range(n):
                    traces[k].append([obs[k], float(rewards[k]), bool(terms[k]), bool(truncs[k]), _vec_info(infos, k)])
                if terms.all() or truncs.all():
                    break
            texts = {json.dumps(t, sort_keys=True) for t in traces}
            assert len(texts) == 1, f"{tid}: the sub-envs of one vector env disagree"
            got[tid] = texts.pop()
    finally:
        venv.close()
    _assert_same(got, {k: _wire(v) for k, v in fresh.items()}, "vector env")


def _vec_info(infos: dict, k: int) -> dict:
    """Sub-env ``k``'s reward info out of a vector env's batched ``infos`` (dicts of arrays, nested)."""

    def pick(batched: dict) -> dict:
        out = {}
        for key, v in batched.items():
            if key.startswith("_") or not batched.get(f"_{key}", [True] * (k + 1))[k]:
                continue
            v = pick(v) if isinstance(v, dict) else v[k]
            out[key] = v.item() if hasattr(v, "item") else v
        return out

    info = pick(infos)
    keep = {key: info[key] for key in ("components", "penalties", "total", "valid", "feedback") if key in info}
    if "total" in keep:
        keep["total"] = round(float(keep["total"]), 9)
    return keep


def test_remote_env_episodes_equal_a_fresh_worker(tasks, fresh, bfcl_suite):
    from toolgym.env.server.app import ServerConfig, start_server

    srv = start_server(ServerConfig(port=0, sandbox_workers=1), suite=bfcl_suite)
    env = RemoteToolUseEnv(f"127.0.0.1:{srv.port}", categories=CATEGORIES, max_steps=200)
    try:
        warm_up(env, tasks)
        got = {tid: play(env, tasks[tid]) for tid in TARGETS.values()}
    finally:
        env.close()
        srv.stop(0)
    # The remote env's info is the wire's (same values, JSON-decoded): compare what both carry.
    _assert_same({k: _wire(v) for k, v in got.items()}, {k: _wire(v) for k, v in fresh.items()}, "remote env")
    assert all(json.loads(_wire(v))[-1][-1] for v in got.values()), "the final step must carry the reward info"


def _wire(trace: str) -> str:
    steps = json.loads(trace)
    out = [steps[0]]
    for obs, reward, term, trunc, info in steps[2:]:
        keep = {k: info[k] for k in ("components", "penalties", "total", "valid", "feedback") if k in info}
        if "total" in keep:
            keep["total"] = round(float(keep["total"]), 9)
        out.append([obs, float(reward), term, trunc, keep])
    return json.dumps(out, sort_keys=True)


# --------------------------------------------------------------------------- final backend state
def _session_run(pool, task) -> str:
    """Open the task's toolset, run its ground truth, return every result and the final state."""
    from toolgym.env.executor import toolset_of

    kind, config = toolset_of(task)
    sid = pool.open_session(kind, config)
    try:
        if task.kind != "multi_turn":
            calls = [("python", {"code": PY_PROBE})]
        else:
            calls = [(c.name, c.arguments) for turn in task.ground_truth for s in turn for c in parse_python_calls(s, allow_positional=True)]
        results = [pool.call(sid, name, args).to_dict() for name, args in calls]
        for r in results:
            r.pop("duration_s")
        return json.dumps({"results": results, "state": pool.state(sid)}, sort_keys=True, ensure_ascii=True)
    finally:
        pool.close_session(sid)


def test_final_backend_state_after_unrelated_sessions_equals_a_fresh_worker(tasks):
    from toolgym.env.executor import toolset_of
    from toolgym.env.sandbox import WorkerPool

    fresh = {}
    for tid in TARGETS.values():
        with WorkerPool(SandboxConfig(workers=1)) as p:
            fresh[tid] = _session_run(p, tasks[tid])
    with WorkerPool(SandboxConfig(workers=1)) as p:
        kind, config = toolset_of(tasks[LEAKY])
        sid = p.open_session(kind, config)  # the model-like leaky session
        posted = p.call(sid, "post_tweet", {"content": "hello from an earlier session"})
        assert posted.ok, posted
        assert p.call(sid, "mention", {"tweet_id": json.loads(posted.output)["id"], "mentioned_usernames": ["@earlier"]}).ok
        p.close_session(sid)
        for tid in WARMUP:
            _session_run(p, tasks[tid])
        got = {tid: _session_run(p, tasks[tid]) for tid in TARGETS.values()}
        assert p.stats()["workers_started"] == 1
    _assert_same(got, fresh, "final backend state (pool sessions)")
