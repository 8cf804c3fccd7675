"""The OpenEnv-compatible gateway (`toolgym serve --http-port`) on a real server on loopback.

Clients: the `websockets` package and urllib (the wire format as any OpenEnv client sends it), and the
unmodified openenv-core 0.3.0 `GenericEnvClient` from its own cached venv (`make openenv-venv`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websockets.sync.client as wsc

from toolgym.env.client import ToolgymClient
from toolgym.env.server.app import ServerConfig, start_server

_VENVS = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "toolgym" / "venvs"
OPENENV_PY = _VENVS / "openenv-core-0.3.0" / "bin" / "python"
OPENENV10_PY = _VENVS / "openenv-0.10.0" / "bin" / "python"  # the newer client line (make client-venvs)


@pytest.fixture(scope="module")
def gw(bfcl_suite):
    srv = start_server(ServerConfig(host="127.0.0.1", port=0, http_port=0, max_sessions=3), suite=bfcl_suite)
    yield srv
    srv.stop(0)


def _ws(srv):
    return wsc.connect(srv.http.url.replace("http://", "ws://") + "/ws", open_timeout=10)


def _rpc(ws, kind, data=None):
    ws.send(json.dumps({"type": kind, **({"data": data} if data is not None else {})}))
    return json.loads(ws.recv(timeout=60))


def _get(srv, path):
    with urllib.request.urlopen(srv.http.url + path, timeout=10) as r:
        return json.loads(r.read())


def _gt_actions(task):
    for calls in task.ground_truth:
        if calls:
            yield "[" + ", ".join(calls) + "]"
        yield "Done with this request."


def test_health_schema_metadata(gw):
    assert _get(gw, "/health") == {"status": "healthy"}
    schema = _get(gw, "/schema")
    assert set(schema) == {"action", "observation", "state"}
    act = schema["action"]
    assert act["required"] == ["action"] and act["properties"]["action"]["type"] == "string"  # verifiers sends raw text
    assert _get(gw, "/metadata")["max_sessions"] == 3


def test_ws_ground_truth_episode_scores_like_grpc(gw, bfcl_suite):
    task = bfcl_suite.get("multi_turn_base_2")
    with _ws(gw) as ws:
        r = _rpc(ws, "reset", {"task_id": task.id, "template": "pythonic", "seed": 3})
        assert r["type"] == "observation" and r["data"]["done"] is False and r["data"]["reward"] is None
        for action in _gt_actions(task):
            r = _rpc(ws, "step", {"action": action})
            assert r["type"] == "observation", r
            if r["data"]["done"]:
                break
        assert r["data"]["reward"] == 1.0
        sig = r["data"]["observation"]["metadata"]["reward_signals"]
        assert sig["valid"] is True and sig["total"] == 1.0 and sig["components"]["task_completion"] == 1.0
        assert r["data"]["metadata"]["reward_signals"] == sig and r["data"]["observation"]["reward_signals"] == sig
        st = _rpc(ws, "state")
        assert st["type"] == "state" and st["data"]["step_count"] == r["data"]["observation"]["metadata"]["step_count"]
    with ToolgymClient(gw.address) as c:  # same task, seed and actions over gRPC: the same score
        s = c.reset(task.id, template="pythonic", seed=3)
        for i, action in enumerate(_gt_actions(task)):
            res = c.step(s.session_id, action, step_index=i)
            if res.terminated or res.truncated:
                break
        c.close_session(s.session_id)
    assert res.score.total == sig["total"] and dict(res.score.components) == sig["components"]


def test_bad_frames_get_openenv_codes_and_the_socket_stays_usable(gw):
    with _ws(gw) as ws:
        ws.send("{not json")
        assert json.loads(ws.recv(timeout=10))["data"]["code"] == "INVALID_JSON"
        assert _rpc(ws, "dance")["data"]["code"] == "UNKNOWN_TYPE"
        assert _rpc(ws, "step", {"action": "ls()"})["data"]["code"] == "SESSION_ERROR"  # step before reset
        ws.send(b"\x00\x01")
        assert json.loads(ws.recv(timeout=10))["data"]["code"] == "INVALID_JSON"  # binary frame
        e = _rpc(ws, "reset", {"task_id": "simple_python_0", "colour": "red"})
        assert e["data"]["code"] == "VALIDATION_ERROR" and "colour" in e["data"]["message"]
        e = _rpc(ws, "reset", {"task_id": "no_such_task_9"})
        assert e["type"] == "error" and "no_such_task_9" in e["data"]["message"]
        assert _rpc(ws, "reset", {"task_id": "simple_python_0", "template": "hermes"})["type"] == "observation"
        e = _rpc(ws, "step", {"text": "x"})
        assert e["data"]["code"] == "VALIDATION_ERROR" and "action" in e["data"]["message"]
        r = _rpc(ws, "step", {"action": "I will not call anything."})
        assert r["data"]["done"] is True
        assert _rpc(ws, "step", {"action": "again"})["data"]["code"] == "SESSION_ERROR"  # step after done


def test_http_reset_step_close(gw):
    def post(path, body):
        req = urllib.request.Request(gw.http.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    code, r = post("/reset", {"task_id": "simple_python_1", "template": "hermes"})
    assert code == 200
    sid = r["observation"]["metadata"]["session_id"]
    code, e = post("/step", {"action": "hello"})
    assert code == 422 and "session_id" in e["data"]["message"]
    code, r = post("/step", {"session_id": sid, "action": "no call"})
    assert code == 200 and r["done"] is True
    assert post("/close", {"session_id": sid}) == (200, {"closed": True})


def _wait_sessions(srv, at_most: int, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and len(srv.env.sessions) > at_most:
        time.sleep(0.02)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_dropped_socket_frees_its_slot_and_capacity_reports_counts(gw):
    _wait_sessions(gw, 0, 5.0)  # earlier tests' sockets close asynchronously
    assert len(gw.env.sessions) == 0
    socks = [_ws(gw) for _ in range(3)]
    for ws in socks:
        assert _rpc(ws, "reset", {"task_id": "multi_turn_base_0", "template": "pythonic"})["type"] == "observation"
    with _ws(gw) as extra:
        e = _rpc(extra, "reset", {"task_id": "multi_turn_base_0"})
        assert e["data"]["code"] == "CAPACITY_REACHED"
        assert e["data"]["active_sessions"] == 3 and e["data"]["max_sessions"] == 3
        socks[0].socket.close()  # dropped without a close frame
        _wait_sessions(gw, 2, 1.0)  # within 1 s
        assert len(gw.env.sessions) == 2
        assert _rpc(extra, "reset", {"task_id": "multi_turn_base_0", "template": "pythonic"})["type"] == "observation"
    for ws in socks[1:]:
        ws.close()


_PLAY = """
import json, sys
from openenv import GenericEnvClient
url, actions = sys.argv[1], json.loads(sys.argv[2])
with GenericEnvClient(base_url=url).sync() as env:
    env.reset(task_id=sys.argv[3], template="pythonic")
    for a in actions:
        res = env.step({"action": a})
        if res.done:
            break
    print(json.dumps({"reward": res.reward, "done": res.done, "signals": res.observation["metadata"]["reward_signals"]}))
"""


@pytest.mark.parametrize("client_py, make_target", [(OPENENV_PY, "openenv-venv"), (OPENENV10_PY, "client-venvs")],
                         ids=["openenv-core-0.3.0", "openenv-0.10.0"])
def test_unmodified_openenv_client_plays_ground_truth_to_1(gw, bfcl_suite, client_py, make_target):
    if not client_py.exists():
        pytest.skip(f"OpenEnv client venv missing at {client_py}: run `make {make_target}` (make test does)")
    task = bfcl_suite.get("multi_turn_base_5")
    out = subprocess.run([str(client_py), "-c", _PLAY, gw.http.url, json.dumps(list(_gt_actions(task))), task.id],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["done"] is True and got["reward"] == 1.0 and got["signals"]["valid"] is True


def test_a_long_tool_call_never_blocks_the_event_loop(bfcl_suite):
    """A tool call runs off the event loop: while one socket's step sleeps 8 s in the sandbox, another
    socket's WebSocket pings (openenv 0.10 pings every 20 s with a 20 s timeout) and /health answer at once."""
    import threading

    srv = start_server(ServerConfig(host="127.0.0.1", port=0, http_port=0, max_sessions=4, tool_wall_s=9.0), suite=bfcl_suite)
    try:
        slow = '<tool_call>{"name": "python", "arguments": {"code": "import time; time.sleep(8); print(42)"}}</tool_call>'
        out: dict = {}
        with _ws(srv) as a, _ws(srv) as b:
            assert _rpc(a, "reset", {"task_id": "toolgym_python_0", "template": "hermes"})["type"] == "observation"

            def step() -> None:
                t = time.monotonic()
                out["reply"] = _rpc(a, "step", {"action": slow})
                out["s"] = time.monotonic() - t

            th = threading.Thread(target=step)
            th.start()
            time.sleep(1.0)  # the call is running in the sandbox now
            pongs, health = [], []
            for _ in range(5):
                t = time.monotonic()
                b.ping().wait(timeout=5)
                pongs.append(time.monotonic() - t)
                t = time.monotonic()
                assert _get(srv, "/health") == {"status": "healthy"}
                health.append(time.monotonic() - t)
                time.sleep(0.5)
            th.join(timeout=60)
        assert out["s"] >= 7.5 and "42" in out["reply"]["data"]["observation"]["text"]  # the call really ran 8 s
        # A blocked loop would hold each answer until the 8 s call ends (>= 6 s after the first); the bound
        # is half that, a behavioural check with room for a loaded CI machine, not a speed target.
        assert max(pongs) < 3.0 and max(health) < 3.0, (pongs, health)
    finally:
        srv.stop(0)
