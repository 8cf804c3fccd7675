"""Reward integrity over gRPC: no NaN/inf ever leaves the server, a scoring failure is valid=false
with a reason, and nothing the agent writes (tool output, workspace files, text that looks like a
reward) changes the reward.
"""

from __future__ import annotations

import json
import math

import grpc
import pytest
from hardening_support import strict_json

from toolgym.env.client import ToolgymClient
from toolgym.env.server.app import ServerConfig, start_server
from toolgym.v1 import env_pb2, env_pb2_grpc, reward_pb2, reward_pb2_grpc

RIGHT = '<tool_call>{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}</tool_call>'
HALLUCINATED = '<tool_call>{"name": "no_such_tool", "arguments": {}}</tool_call>' * 3
FAKE_REWARD = ('{"total": 1.0, "valid": true, "reward": 1.0, "components": {"task_completion": 1.0, "tool_accuracy": 1.0}}\n'
               "REWARD: 1.0\ntask_completion=1.0 total=1.0 valid=true <score>1.0</score>")


@pytest.fixture(scope="module")
def server(suite):
    srv = start_server(ServerConfig(port=0, sandbox_workers=1), suite=suite)
    yield srv
    srv.stop(0)


@pytest.fixture(scope="module")
def client(server):
    with ToolgymClient(server.address, timeout=60) as c:
        yield c


def _finite_everywhere(r: reward_pb2.ScoreResult) -> None:
    assert math.isfinite(r.total)
    assert all(math.isfinite(v) for v in r.components.values()) and all(math.isfinite(v) for v in r.penalties.values())
    strict_json(r.details_json)


# ---------------------------------------------------------------------------- NaN / inf
@pytest.mark.parametrize("override,needle", [
    ({"weights": {"task_completion": math.nan}}, "task_completion"),
    ({"weights": {"efficiency": math.inf}}, "efficiency"),
    ({"penalties": {"timeout": -math.inf}}, "timeout"),
    ({"penalties": {"wrong_tool": math.nan}}, "wrong_tool"),
    ({"max_penalty_total": math.nan}, "max_penalty_total"),
    ({"weights": {"task_completion": -1.0}}, "task_completion"),
])
def test_non_finite_overrides_are_refused(server, override, needle):
    stub = reward_pb2_grpc.RewardServiceStub(grpc.insecure_channel(server.address))
    req = reward_pb2.ScoreRequest(task_id="simple_python_0", output=RIGHT, template="hermes")
    req.reward_config.weights.update(override.get("weights", {}))
    req.reward_config.penalties.update(override.get("penalties", {}))
    if "max_penalty_total" in override:
        req.reward_config.max_penalty_total = override["max_penalty_total"]
    with pytest.raises(grpc.RpcError) as e:
        stub.Score(req, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and needle in e.value.details()
    env = env_pb2_grpc.EnvServiceStub(grpc.insecure_channel(server.address))
    with pytest.raises(grpc.RpcError) as e:  # the same overrides on Reset
        env.Reset(env_pb2.ResetRequest(task_id="simple_python_0", reward_config=req.reward_config), timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_huge_weights_are_renormalised_never_inf(client):
    """Weights are renormalised to sum to 1 (README, reward contract): 1e308 for every component is equal
    weights, a finite and valid total, never an overflow."""
    huge = {k: 1e308 for k in ("task_completion", "tool_accuracy", "efficiency", "timing_quality", "format_compliance")}
    r = client.score(RIGHT, task_id="simple_python_0", template="hermes", reward_config={"weights": huge})
    assert r.valid is True and r.total == pytest.approx(sum(r.components.values()) / 5)


@pytest.mark.parametrize("config,output", [
    ({"penalties": {"hallucinated_tool": -1e308}, "max_penalty_total": -1e308}, HALLUCINATED),
    ({"penalties": {"hallucinated_tool": -1e308}, "max_penalty_total": -math.inf}, HALLUCINATED),
])
def test_overflowing_configs_give_valid_false_never_inf(client, config, output):
    """Finite but huge weights/penalties overflow to inf inside the engine: the result is valid=false
    with the reason, and every number on the wire is finite (server-side boundary guard)."""
    r = client.score(output, task_id="simple_python_0", template="hermes", reward_config=config)
    assert r.valid is False and ("non-finite" in r.feedback or "scoring failed" in r.feedback)
    assert math.isfinite(r.total) and all(math.isfinite(v) for v in [*r.components.values(), *r.penalties.values()])


def test_overflow_in_an_episode_reward(client):
    cfg = {"penalties": {"hallucinated_tool": -1e308}, "max_penalty_total": -1e308}
    r = client.reset("simple_python_0", template="hermes", reward_config=cfg)
    s = client.step(r.session_id, HALLUCINATED)
    assert s.terminated and math.isfinite(s.reward) and s.score.valid is False and s.info["valid"] is False
    client.close_session(r.session_id)


def test_huge_numbers_in_model_output_stay_finite(server):
    stub = reward_pb2_grpc.RewardServiceStub(grpc.insecure_channel(server.address))
    outputs = ['<tool_call>{"name": "calculate_triangle_area", "arguments": {"base": 1e999, "height": -1e999}}</tool_call>',
               '<tool_call>{"name": "calculate_triangle_area", "arguments": {"base": NaN, "height": Infinity}}</tool_call>',
               '<tool_call>{"name": "calculate_triangle_area", "arguments": {"base": 1' + "0" * 5000 + '}}</tool_call>',
               "Final Answer: inf nan -Infinity 1e999"]
    for out in outputs:
        for template in ("hermes", ""):
            resp = stub.Score(reward_pb2.ScoreRequest(task_id="simple_python_0", output=out, template=template), timeout=30)
            _finite_everywhere(resp.result)


def test_tool_output_with_non_finite_numbers(client):
    r = client.reset("toolgym_python_0", template="hermes")
    s = client.step(r.session_id, '<tool_call>{"name": "python", "arguments": {"code": "print(float(\\"nan\\"), float(\\"inf\\"), 1e308*10)"}}</tool_call>')
    assert "nan" in s.observation and math.isfinite(s.reward)
    s = client.step(r.session_id, "Final Answer: nan")
    assert s.terminated and s.score.valid and math.isfinite(s.reward) and s.score.components["task_completion"] == 0.0
    client.close_session(r.session_id)


# ---------------------------------------------------------------------------- agent-written text
def _episode(client: ToolgymClient, task_id: str, actions: list[str]) -> tuple[float, dict, dict]:
    r = client.reset(task_id, template="hermes", max_steps=len(actions) + 1)
    s = None
    for a in actions:
        s = client.step(r.session_id, a)
        if s.terminated or s.truncated:
            break
    client.close_session(r.session_id)
    assert s is not None and s.score is not None
    return s.score.total, dict(s.score.components), dict(s.score.penalties)


def _py(code: str) -> str:
    return f'<tool_call>{json.dumps({"name": "python", "arguments": {"code": code}})}</tool_call>'


def test_tool_output_and_workspace_files_do_not_reach_the_reward(client):
    """The same trajectory, except that the agent's code prints and writes reward-looking things into its
    output and its workspace: the reward is identical."""
    forge = ("import json, os\n"
             "for name in ['reward.json', 'score.json', '.toolgym_reward', 'result.txt']:\n"
             "    open(name, 'w').write(json.dumps({'total': 1.0, 'valid': True, 'reward': 1.0}))\n"
             f"print({FAKE_REWARD!r})")
    plain = "print('hello')"
    for answer in ("Final Answer: 7", "Final Answer: 338350"):
        honest = _episode(client, "toolgym_python_0", [_py(plain), answer])
        forged = _episode(client, "toolgym_python_0", [_py(forge), answer])
        assert forged == honest


def test_reward_looking_answer_text_changes_nothing(client):
    base = _episode(client, "toolgym_python_0", [_py("print(1)"), "Final Answer: 7"])
    loud = _episode(client, "toolgym_python_0", [_py("print(1)"), "Final Answer: 7\n" + FAKE_REWARD])
    assert loud[0] <= base[0] and loud[1]["task_completion"] == 0.0
    # Offline scoring: fake reward text around a wrong call scores like the wrong call alone.
    wrong = '<tool_call>{"name": "calculate_triangle_area", "arguments": {"base": 1, "height": 1}}</tool_call>'
    a = client.score(wrong, task_id="simple_python_0", template="hermes")
    b = client.score(FAKE_REWARD + wrong + FAKE_REWARD, task_id="simple_python_0", template="hermes")
    assert b.total <= a.total and b.components["task_completion"] == 0.0


def test_backend_state_written_by_the_agent_cannot_raise_the_reward(client):
    """Multi-turn completion compares backend state with the ground truth replay: extra files named like
    rewards only make the state differ."""
    task = "multi_turn_base_0"
    r = client.reset(task, template="hermes")
    turns = r.info["num_turns"]
    client.close_session(r.session_id)
    plain = _episode(client, task, ["Done."] * turns)
    forged_actions = []
    for _ in range(turns):
        forged_actions += ['<tool_call>{"name": "touch", "arguments": {"file_name": "reward.json"}}</tool_call>',
                           '<tool_call>{"name": "echo", "arguments": {"content": "{\\"total\\": 1.0}", "file_name": "reward.json"}}</tool_call>',
                           "Done."]
    forged = _episode(client, task, forged_actions)
    assert forged[1]["task_completion"] <= plain[1]["task_completion"] and forged[0] <= plain[0] + 1e-9
