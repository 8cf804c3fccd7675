"""MCP on the gateway (`POST`/`DELETE /mcp`, WebSocket `/mcp`) on a real server on loopback.

Clients: the standard `mcp` SDK (mcp==2.3.0, from its own cached venv: `make client-venvs`) playing a
multi-turn task's ground truth to reward 1.0, and urllib / `websockets` for the wire cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websockets.sync.client as wsc
from gym_helpers import _named

from toolgym.env.parsers.pythonic import parse_python_calls
from toolgym.env.server.app import ServerConfig, start_server

MCP_PY = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "toolgym" / "venvs" / "mcp-2.3.0" / "bin" / "python"
INIT = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}


@pytest.fixture(scope="module")
def gw(bfcl_suite):
    srv = start_server(ServerConfig(host="127.0.0.1", port=0, http_port=0, max_sessions=3), suite=bfcl_suite)
    yield srv
    srv.stop(0)


def _post(srv, body, sid=None, query="", raw=None):
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if sid:
        headers["Mcp-Session-Id"] = sid
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(srv.http.url + "/mcp" + query, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read()
            return r.status, r.headers.get("mcp-session-id"), (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, None, (json.loads(text) if text else None)


def _delete(srv, sid):
    req = urllib.request.Request(srv.http.url + "/mcp", method="DELETE", headers={"Mcp-Session-Id": sid})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _rpc(method, params=None, msg_id=1):
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, **({"params": params} if params is not None else {})}


def _init(srv, query="?task_id=multi_turn_base_0&template=hermes"):
    status, sid, body = _post(srv, _rpc("initialize", INIT), query=query)
    return status, sid, body


def _wait_sessions(srv, at_most: int, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and len(srv.env.sessions) > at_most:
        time.sleep(0.02)


def _gt_steps(task):
    """Every turn's ground-truth calls as MCP tool calls, then end_turn (what ends a user turn)."""
    for calls in task.ground_truth:
        for s in calls:
            for c in parse_python_calls(s, allow_positional=True):
                c = _named(c, task.tools)
                yield {"name": c.name, "arguments": c.arguments}
        yield {"name": "end_turn", "arguments": {"message": "Done with this request."}}


_PLAY = """
import anyio, json, sys
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

url, steps = sys.argv[1], json.loads(sys.argv[2])

async def main():
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            errors, res = [], None
            for s in steps:
                res = await session.call_tool(s["name"], s["arguments"])
                if res.is_error:
                    errors.append([s["name"], res.content[0].text[:300]])
                if res.structured_content["done"]:
                    break
            print(json.dumps({"version": init.protocol_version, "server": init.server_info.name,
                              "has_prompt": bool(init.instructions), "tools": [t.name for t in tools.tools],
                              "schema_type": tools.tools[0].input_schema.get("type"), "errors": errors,
                              "result": res.structured_content, "meta": res.meta, "text": res.content[0].text}))

anyio.run(main)
"""


def test_standard_mcp_client_plays_ground_truth_to_1(gw, bfcl_suite):
    if not MCP_PY.exists():
        pytest.skip(f"the mcp 2.3.0 client venv is missing at {MCP_PY}: run `make client-venvs` (make test does)")
    task = bfcl_suite.get("multi_turn_base_0")
    url = gw.http.url + "/mcp?task_id=multi_turn_base_0&template=hermes"
    out = subprocess.run([str(MCP_PY), "-c", _PLAY, url, json.dumps(list(_gt_steps(task)))],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["version"] == "2025-11-25" and got["server"] == "toolgym" and got["has_prompt"]  # the client's offer, echoed
    assert set(got["tools"]) == {t.name for t in task.tools} | {"end_turn"} and got["schema_type"] == "object"
    assert got["errors"] == []
    res = got["result"]
    assert res["done"] is True and res["terminated"] is True and res["reward"] == 1.0
    sig = res["reward_signals"]
    assert sig["valid"] is True and sig["total"] == 1.0 and sig["components"]["task_completion"] == 1.0
    assert got["meta"]["toolgym/reward"] == 1.0 and got["meta"]["toolgym/reward_signals"] == sig
    _wait_sessions(gw, 0, 5.0)  # the client's DELETE on exit closed the MCP session and its episode
    assert len(gw.env.sessions) == 0


def test_jsonrpc_errors(gw):
    status, _, body = _post(gw, None, raw=b"{not json")
    assert status == 400 and body["error"]["code"] == -32700 and body["id"] is None
    status, _, body = _post(gw, [_rpc("ping")])
    assert status == 400 and body["error"]["code"] == -32600 and "batch" in body["error"]["message"]
    status, _, body = _post(gw, {"jsonrpc": "2.0", "id": 4})
    assert status == 400 and body["error"]["code"] == -32600 and "method" in body["error"]["message"]
    # Stateless (no Mcp-Session-Id) requests, OpenEnv style.
    assert _post(gw, _rpc("ping", msg_id="p"))[2] == {"jsonrpc": "2.0", "id": "p", "result": {}}
    body = _post(gw, _rpc("tools/dance"))[2]
    assert body["error"]["code"] == -32601 and "tools/call" in body["error"]["message"]
    body = _post(gw, _rpc("tools/call", {"name": "ls", "arguments": {}}))[2]  # before any session exists
    assert body["error"]["code"] == -32602 and body["error"]["data"]["code"] == "SESSION_ERROR"
    assert "openenv/session/create" in body["error"]["message"]
    body = _post(gw, _rpc("tools/list", {"session_id": "nope"}))[2]
    assert body["error"]["code"] == -32602 and "nope" in body["error"]["message"]
    assert _post(gw, {"jsonrpc": "2.0", "method": "notifications/initialized"}) == (202, None, None)
    # Bad params: initialize without a version, an unknown query key, an unknown task, a bad tools/call.
    assert _post(gw, _rpc("initialize", {}))[2]["error"]["code"] == -32602
    status, sid, body = _init(gw, "?task_id=multi_turn_base_0&colour=red")
    assert sid is None and body["error"]["code"] == -32602 and "colour" in body["error"]["message"]
    status, sid, body = _init(gw, "?task_id=no_such_task_9")
    assert sid is None and body["error"]["code"] == -32602 and "no_such_task_9" in body["error"]["message"]
    status, sid, body = _init(gw)
    assert status == 200 and sid and body["result"]["capabilities"] == {"tools": {}}
    assert body["result"]["protocolVersion"] == "2025-06-18"
    assert _post(gw, _rpc("tools/call", {"arguments": {}}), sid)[2]["error"]["code"] == -32602
    assert _post(gw, _rpc("tools/call", {"name": "ls", "arguments": [1]}), sid)[2]["error"]["code"] == -32602
    res = _post(gw, _rpc("tools/call", {"name": "cd", "arguments": {"folder": "no_such_dir"}}), sid)[2]["result"]
    assert res["isError"] is True and res["structuredContent"]["done"] is False  # the tool failed; the episode goes on
    res = _post(gw, _rpc("tools/call", {"name": "ls", "arguments": {}}), sid)[2]["result"]
    assert res["isError"] is False and "document" in res["content"][0]["text"]
    assert _delete(gw, sid) == 204
    status, _, body = _post(gw, _rpc("tools/list"), sid)
    assert status == 404 and body["error"]["code"] == -32600  # a deleted session: the client initializes again
    _wait_sessions(gw, 0, 2.0)
    assert len(gw.env.sessions) == 0


def test_capacity_counts_and_delete_frees_the_slot(gw):
    _wait_sessions(gw, 0, 5.0)
    sids = []
    for _ in range(3):
        status, sid, body = _init(gw)
        assert status == 200 and sid, body
        sids.append(sid)
    status, sid, body = _init(gw)
    assert sid is None and body["error"]["code"] == -32000
    data = body["error"]["data"]
    assert data["code"] == "CAPACITY_REACHED" and data["active_sessions"] == 3 and data["max_sessions"] == 3
    # openenv/session/create on a session with no episode hits the same cap.
    _, bare, _ = _init(gw, "")
    assert bare
    e = _post(gw, _rpc("openenv/session/create", {"task_id": "multi_turn_base_0"}), bare)[2]["error"]
    assert e["data"]["code"] == "CAPACITY_REACHED"
    assert _delete(gw, sids.pop()) == 204
    assert len(gw.env.sessions) == 2
    r = _post(gw, _rpc("openenv/session/create", {"task_id": "multi_turn_base_1", "template": "pythonic"}), bare)[2]["result"]
    assert r["session_id"] and "User:" in r["observation"] and any(t["name"] == "end_turn" for t in r["tools"])
    # A stateless client steps it by session_id, then closes it (OpenEnv's convention).
    got = _post(gw, _rpc("tools/list", {"session_id": r["session_id"]}))[2]["result"]
    assert [t["name"] for t in got["tools"]] == [t["name"] for t in r["tools"]]
    assert _post(gw, _rpc("openenv/session/close", {"session_id": r["session_id"]}))[2]["result"]["closed"] is True
    for sid in [*sids, bare]:
        assert _delete(gw, sid) == 204
    assert len(gw.env.sessions) == 0


def test_websocket_mcp_and_closing_it_frees_the_slot(gw):
    _wait_sessions(gw, 0, 5.0)
    url = gw.http.url.replace("http://", "ws://") + "/mcp?task_id=multi_turn_base_0&template=hermes"
    with wsc.connect(url, open_timeout=10) as ws:

        def rpc(method, params=None, msg_id=1):
            ws.send(json.dumps(_rpc(method, params, msg_id)))
            return json.loads(ws.recv(timeout=60))

        assert rpc("initialize", INIT)["result"]["protocolVersion"] == "2025-06-18"
        names = [t["name"] for t in rpc("tools/list", msg_id=2)["result"]["tools"]]
        assert "ls" in names and "end_turn" in names
        r = rpc("tools/call", {"name": "ls", "arguments": {}}, msg_id=3)
        assert r["id"] == 3 and r["result"]["isError"] is False and "document" in r["result"]["content"][0]["text"]
        ws.send("{oops")
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == -32700  # the socket stays usable
        assert rpc("ping", msg_id=4) == {"jsonrpc": "2.0", "id": 4, "result": {}}
        assert len(gw.env.sessions) == 1
    _wait_sessions(gw, 0, 1.0)  # closed within 1 s of the socket
    assert len(gw.env.sessions) == 0


def test_tools_list_follows_the_turn(gw, bfcl_suite):
    # BFCL miss_func tasks hold a tool back until a later turn: tools/list offers it from that turn on.
    task = bfcl_suite.get("multi_turn_miss_func_0")
    (turn, held), = task.missed_function.items()
    _, sid, _ = _init(gw, f"?task_id={task.id}&template=hermes")
    names = lambda: {t["name"] for t in _post(gw, _rpc("tools/list"), sid)[2]["result"]["tools"]}  # noqa: E731
    assert not set(held) & names()
    for _ in range(int(turn)):
        assert _post(gw, _rpc("tools/call", {"name": "end_turn", "arguments": {}}), sid)[2]["result"]["isError"] is False
    assert set(held) <= names()
    assert _delete(gw, sid) == 204
