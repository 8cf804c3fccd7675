"""`toolgym eval run`: tiny offline model end to end, resumability, OpenAI-compatible endpoint, BFCL via the client."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from toolgym.evals.kagentbench import load_items, load_predictions, score
from toolgym.evals.runner import Generator, RunConfig, run_eval

FIXTURES = Path(__file__).parent / "fixtures"
ITEMS = FIXTURES / "kagent_items.jsonl"


def test_tiny_model_end_to_end_and_resume(tmp_path, tiny_model):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "toolgym.evals.cli", "run", "--model", tiny_model, "--suite", "kagentbench",
           "--data", str(ITEMS), "--out", str(out), "--backend", "transformers", "--max-new-tokens", "6",
           "--max-input-tokens", "96", "--batch-size", "8", "--limit", "6", "--no-progress", "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    preds = [json.loads(x) for x in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    items = load_items(ITEMS)[:6]
    assert [p["id"] for p in sorted(preds, key=lambda p: p["id"])] == sorted(i["id"] for i in items)
    for p, it in zip(sorted(preds, key=lambda p: p["id"]), sorted(items, key=lambda i: i["id"])):
        if it["type"] == "profile":
            assert isinstance(p["model_predict"], str)
        else:
            assert set(p["model_predict"]) == set(it["prompt_input"])
    for f in ("scores.json", "report.html", "report.md", "meta.json"):
        assert (out / f).exists()
    # re-scoring offline gives the run's numbers
    again = score(items, load_predictions(out / "predictions.jsonl"))
    assert summary["overall"] == again.overall and summary["planning"] == again.planning
    # resumable: a second run generates nothing new (a generator that fails if called proves it)
    class Boom(Generator):
        def generate(self, batch):
            raise AssertionError("should not generate")

    cfg = RunConfig(model=tiny_model, data=str(ITEMS), out=str(out), limit=6, progress=False)
    assert run_eval(cfg, generator=Boom())["overall"] == summary["overall"]
    # an interrupted file (last line cut) is repaired and the missing item regenerated
    lines = (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (out / "predictions.jsonl").write_text("".join(lines[:-1]) + lines[-1][:10], encoding="utf-8")

    class Echo(Generator):
        calls = 0

        def generate(self, batch):
            Echo.calls += len(batch)
            return ["Final Answer: ok"] * len(batch)

    run_eval(cfg, generator=Echo())
    assert Echo.calls >= 1
    assert len((out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()) == 6


class _Handler(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append((self.path, body, self.headers.get("Authorization")))
        prompt = body["messages"][-1]["content"]
        text = json.dumps({"task_name": "Search", "command": {"name": "web_search", "args": {"query": prompt[:20]}}}, indent=2)
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def test_openai_compatible_endpoint(tmp_path, monkeypatch):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        monkeypatch.setenv("TEST_KEY", "secret")
        url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
        cfg = RunConfig(model=url, model_name="m", api_key_env="TEST_KEY", data=str(ITEMS), out=str(tmp_path / "o"),
                        limit=3, progress=False, max_new_tokens=16)
        summary = run_eval(cfg)
    finally:
        srv.shutdown()
        srv.server_close()
    path, body, auth = _Handler.seen[0]
    assert path == "/v1/chat/completions" and body["model"] == "m" and body["max_tokens"] == 16 and auth == "Bearer secret"
    assert summary["counts"]["items"] == 3
    assert json.loads((tmp_path / "o" / "meta.json").read_text())["summary"]["overall"] == summary["overall"]


def test_bfcl_suite_through_client(tmp_path):
    """A BFCL-style run against a real server and client: two single-turn tasks the scripted
    model answers right, one stateful multi-turn task it cannot (truncated after 2 steps)."""
    from toolgym.env.client import ToolgymClient
    from toolgym.env.server.app import ServerConfig, start_server
    from toolgym.env.tasks.jsonl import dump_jsonl, task_from_dict
    from toolgym.env.tasks.suite import load_suite

    tool = {"name": "f", "description": "f", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}
    simple = [task_from_dict({"id": f"t{i}", "kind": "ast", "category": "simple_python", "turns": "call f with x=1",
                              "tools": [tool], "ground_truth": [{"f": {"x": [1]}}]}) for i in range(2)]
    suite_file = tmp_path / "suite.jsonl"
    dump_jsonl([*simple, load_suite("bfcl").get("multi_turn_base_0")], suite_file)

    class Gen(Generator):
        def generate(self, batch):
            return ['<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>'] * len(batch)

    srv = start_server(ServerConfig(port=0, suite=str(suite_file)))
    try:
        with ToolgymClient(srv.address, timeout=60) as client:
            cfg = RunConfig(model="unused", suite="bfcl", out=str(tmp_path / "b"), progress=False, templates=("hermes",), max_steps=2)
            summary = run_eval(cfg, generator=Gen(), client=client)
            assert client.health() == "SERVING"  # the runner leaves a caller's client open
    finally:
        srv.stop(grace=1.0)
    assert summary["n"] == 3 and summary["valid_rate"] == 1.0
    data = json.loads((tmp_path / "b" / "scores.json").read_text())
    assert set(data["summary"]["per_category"]) == {"simple_python", "multi_turn_base"}
    by_id = {r["id"]: r for r in data["items"]}
    assert by_id["t0"]["components"]["task_completion"] == 1.0 and by_id["t1"]["total"] == pytest.approx(1.0)
    assert by_id["multi_turn_base_0"]["components"]["task_completion"] == 0.0
    assert summary["mean_total"] == pytest.approx(sum(r["total"] for r in by_id.values()) / 3)
    assert "Reward per category" in (tmp_path / "b" / "report.html").read_text()


def test_bfcl_against_real_server(tmp_path):
    app = pytest.importorskip("toolgym.env.server.app")
    srv = app.start_server(app.ServerConfig(host="127.0.0.1", port=0, suite="bfcl", categories=("simple_python",)))
    try:
        class Gen(Generator):
            def generate(self, batch):
                return ["I cannot help."] * len(batch)

        cfg = RunConfig(model="unused", suite="bfcl:simple_python", server=srv.address, out=str(tmp_path / "r"),
                        limit=2, progress=False, max_steps=2)
        summary = run_eval(cfg, generator=Gen())
    finally:
        srv.stop(grace=1.0)
    assert summary["n"] == 2
    rec = json.loads((tmp_path / "r" / "predictions.jsonl").read_text().splitlines()[0])
    assert "total" in rec and "components" in rec


@pytest.mark.vllm
def test_vllm_backend_importable_only_when_installed():
    pytest.importorskip("vllm")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vllm needs a GPU")
    from toolgym.evals.runner import _vllm_usable

    assert _vllm_usable()


def test_cli_module_never_imports_vllm():
    code = "import sys, toolgym.evals.cli, toolgym.evals.runner; print('vllm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
