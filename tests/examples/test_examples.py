"""The examples under examples/ run: TRL's environment_factory over the OpenEnv gateway, and the verifiers doc."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("uvicorn")  # the gateway is the serve-http extra
pytest.importorskip("websockets")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TRL_EXAMPLE = EXAMPLES / "trl_environment_factory.py"
VERIFIERS_DOC = EXAMPLES / "verifiers_openenv.md"
_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
VERIFIERS_PY = Path(os.environ.get("TOOLGYM_VERIFIERS_PY") or _CACHE / "toolgym" / "venvs" / "verifiers-0.4.0" / "bin" / "python")

TRIANGLE = {"base": 10, "height": 5}  # simple_python_0's ground-truth arguments


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)  # the example puts examples/ on sys.path for toolgym_ws_env
    return module


@pytest.fixture(scope="module")
def example() -> ModuleType:
    return _load(TRL_EXAMPLE)


@pytest.fixture(scope="module")
def gateway():
    from toolgym.env.server.app import ServerConfig, start_server

    srv = start_server(ServerConfig(host="127.0.0.1", port=0, http_port=0))
    yield srv.http.url
    srv.stop(grace=1.0)


# ------------------------------------------------------------------------------------- the TRL example
@pytest.mark.slow
def test_trl_environment_factory_example_trains(tmp_path):
    pytest.importorskip("trl")
    out = subprocess.run([sys.executable, str(TRL_EXAMPLE), "--steps", "2", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=540, cwd=ROOT)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    steps = [(int(m[1]), float(m[2])) for m in re.finditer(r"^step (\d+) reward (\S+)", out.stdout, re.M)]
    assert [s for s, _ in steps] == [1, 2], out.stdout[-3000:]
    assert all(math.isfinite(r) and -2.0 <= r <= 1.0 for _, r in steps)  # the contract's range
    logged = [h for h in json.loads((tmp_path / "log_history.json").read_text()) if "reward" in h]
    assert len(logged) == 2 and all("toolgym/format_compliance" in h for h in logged)  # components logged too


def test_env_exposes_one_tool_to_trl(example):
    """What GRPOTrainer sees: reset plus exactly one public method, with a schema transformers can render."""
    import inspect

    from transformers.utils import get_json_schema

    public = [n for n, _ in inspect.getmembers(example.ToolgymEnv, predicate=inspect.isfunction) if not n.startswith("_")]
    assert sorted(public) == ["call_tool", "reset"]
    fn = get_json_schema(example.ToolgymEnv.call_tool)["function"]
    assert fn["name"] == "call_tool" and fn["parameters"]["required"] == ["name", "arguments"]


def test_call_tool_single_turn_task_scores_on_its_call(example, gateway):
    env = example.ToolgymEnv(gateway)
    try:
        prompt = env.reset(prompt=[{"role": "user", "content": ""}], task_id="simple_python_0", seed=0, template="hermes")
        assert "calculate_triangle_area" in prompt and prompt.endswith(example.BRIDGE_NOTE)
        env.call_tool("calculate_triangle_area", TRIANGLE)  # a single-turn task ends on its calling turn
        with pytest.raises(ValueError, match="episode is over"):
            env.call_tool("calculate_triangle_area", TRIANGLE)
        completion = [{"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "call_tool", "arguments": {"name": "calculate_triangle_area", "arguments": TRIANGLE}}}]},
            {"role": "tool", "name": "call_tool", "content": "Done"}, {"role": "assistant", "content": "The area is 25."}]
        metrics: dict[str, float] = {}
        assert example.toolgym_reward([completion], [env], log_metric=metrics.__setitem__) == [1.0]
        assert metrics["toolgym/task_completion"] == 1.0
    finally:
        env._close()


def test_tool_results_then_final_answer_from_the_last_message(example, gateway):
    env = example.ToolgymEnv(gateway)
    try:
        env.reset(task_id="toolgym_python_0", seed=0, template="hermes")
        result = env.call_tool("python", {"code": "print(sum(i * i for i in range(1, 101)))"})
        assert "<tool_response>" in result and "338350" in result  # toolgym ran it in its sandbox
        final = [{"role": "assistant", "content": "The sum of the squares is 338350."}]
        assert example.toolgym_reward([final], [env]) == [1.0]  # the final message is the last action
        env.reset(task_id="toolgym_python_0", seed=1, template="hermes")  # same socket, a new episode
        assert example.toolgym_reward([[{"role": "assistant", "content": "no idea"}]], [env]) == [pytest.approx(0.1)]
    finally:
        env._close()


def test_unexecuted_calls_become_the_final_action(example):
    last = {"role": "assistant", "content": "trying", "tool_calls": [
        {"type": "function", "function": {"name": "call_tool", "arguments": {"name": "f", "arguments": {"x": 1}}}}]}
    assert example._final_action([{"role": "tool", "content": "r"}, last]) == (
        'trying\n<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>')
    assert example._final_action([]) == ""


def test_trl_parses_a_call_tool_block_with_the_tiny_tokenizer(tmp_path, example):
    """The model-side half: TRL's parser turns the block a model writes into call_tool's arguments."""
    pytest.importorskip("trl")
    from transformers import AutoTokenizer
    from trl.chat_template_utils import parse_response

    from toolgym.trainer.tiny import build_tiny_model

    tok = AutoTokenizer.from_pretrained(build_tiny_model(str(tmp_path / "tiny")))
    text = example.hermes_call("call_tool", {"name": "calculate_triangle_area", "arguments": TRIANGLE}) + "<|im_end|>"
    # TRL parses a completion with the prompt's tokens as its prefix (the new-style response template needs it)
    prefix = tok.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=True, tokenize=True,
                                     return_dict=True)["input_ids"]
    msg = parse_response(tok, tok(text, add_special_tokens=False)["input_ids"], prefix=list(prefix))
    (call,) = msg["tool_calls"]
    assert call["function"]["name"] == "call_tool"
    assert call["function"]["arguments"] == {"name": "calculate_triangle_area", "arguments": TRIANGLE}


# ------------------------------------------------------------------------------------- the verifiers doc
def test_verifiers_doc_matches_the_gateway(gateway):
    doc = VERIFIERS_DOC.read_text()
    for needle in ("GET {base_url}/schema", "/ws", "GenericEnvClient", '{"action": str}', 'metadata["reward_signals"]',
                   "ToolgymAction", "openenv_reward"):
        assert needle in doc, needle
    with urllib.request.urlopen(gateway + "/schema", timeout=30) as r:
        schema = json.load(r)
    action = schema["action"]
    # verifiers wraps a non-JSON reply as {required[0]: reply}: toolgym's action must have exactly one required field
    assert action["title"] == "ToolgymAction" and action["required"] == ["action"]
    assert action["properties"]["action"]["type"] == "string"
    assert "reward_signals" in schema["observation"]["properties"]["metadata"]["properties"]


def test_bare_json_reply_is_stepped_as_its_text(gateway):
    """verifiers sends a bare-number reply as {"action": 338350}: the gateway steps it as the text "338350"
    (what the model wrote); a missing action is still a VALIDATION_ERROR and the socket stays usable."""
    sys.path.insert(0, str(EXAMPLES))
    from toolgym_ws_env import GatewayError, ToolgymWSClient

    with ToolgymWSClient(gateway) as c:
        c.reset(task_id="toolgym_python_0", template="hermes", seed=0)
        c._ws.send(json.dumps({"type": "step", "data": {"action": None}}))
        frame = json.loads(c._ws.recv(timeout=30))
        assert frame["type"] == "error" and frame["data"]["code"] == "VALIDATION_ERROR"
        c._ws.send(json.dumps({"type": "step", "data": {"action": 338350}}))
        frame = json.loads(c._ws.recv(timeout=30))
        assert frame["type"] == "observation" and frame["data"]["done"] is True
        assert frame["data"]["observation"]["metadata"]["reward_signals"]["valid"] is True
    assert GatewayError  # exported for callers


def _doc_snippet() -> str:
    m = re.search(r"<!-- verifiers-check:begin -->\n```python\n(.*?)```\n<!-- verifiers-check:end -->",
                  VERIFIERS_DOC.read_text(), re.S)
    assert m, "the verifiers doc lost its check snippet markers"
    return m.group(1)


def test_verifiers_check_snippet_runs(gateway, tmp_path):
    """The doc's exact snippet, in the verifiers 0.4.0 + openenv 0.10.0 venv the doc tells how to build."""
    snippet = _doc_snippet()
    compile(snippet, "check.py", "exec")  # at least it is Python, wherever verifiers is missing
    if not VERIFIERS_PY.exists():
        pytest.skip(f"no verifiers venv at {VERIFIERS_PY}: build it as examples/verifiers_openenv.md says "
                    "(or point $TOOLGYM_VERIFIERS_PY at one)")
    script = tmp_path / "check.py"
    script.write_text(snippet)
    out = subprocess.run([str(VERIFIERS_PY), str(script), gateway], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["action_schema"] == "ToolgymAction" and got["rewards"] == {"openenv_reward": 1.0}
    assert got["stopped"] is None
