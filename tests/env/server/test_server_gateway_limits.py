"""The gateway's request limits on a real server on loopback: body size (413) on every POST route, an
oversize WebSocket frame (an error frame, the socket stays usable), requests in flight per client and
the per-client request rate (429 + Retry-After over HTTP, an error frame on /ws, a JSON-RPC error on MCP).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading

import pytest
import websockets.sync.client as wsc
from websockets.exceptions import ConnectionClosed

from toolgym.env.server.app import ServerConfig, start_server
from toolgym.env.server.http.limits import ClientLimiter
from toolgym.env.server.http.wire import WireError

FRAME_LIMIT = 1 << 16  # what the gateway takes with --max-output-chars 1000: twice it, at least 64 KiB
POST_ROUTES = ["/reset", "/step", "/close", "/tools/search", "/mcp"]


def _server(bfcl_suite, **kw):
    srv = start_server(ServerConfig(host="127.0.0.1", port=0, http_port=0, max_sessions=8, **kw), suite=bfcl_suite)
    return srv


@pytest.fixture(scope="module")
def small(bfcl_suite):
    srv = _server(bfcl_suite, max_output_chars=1000, max_message_bytes=1 << 20)
    yield srv
    srv.stop(0)


@pytest.fixture(scope="module")
def one_inflight(bfcl_suite):
    srv = _server(bfcl_suite, max_inflight_per_client=1)
    yield srv
    srv.stop(0)


@pytest.fixture(scope="module")
def rated(bfcl_suite):
    srv = _server(bfcl_suite, http_rate_limit=0.2, http_rate_burst=3)  # a token every 5 s: the test outruns the refill
    yield srv
    srv.stop(0)


class Http:
    """One keep-alive connection; ``post`` returns (status, headers, JSON body)."""

    def __init__(self, srv, source: str | None = None):
        self.c = http.client.HTTPConnection("127.0.0.1", srv.http.port, timeout=30,
                                            source_address=(source, 0) if source else None)

    def post(self, path, body, chunked=False):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        if chunked:
            self.c.request("POST", path, body=iter([raw[i:i + 8192] for i in range(0, len(raw), 8192)]), encode_chunked=True,
                           headers={"Content-Type": "application/json"})
        else:
            self.c.request("POST", path, body=raw, headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(data) if data else None

    def close(self):
        self.c.close()


def _ws(srv, path="/ws"):
    return wsc.connect(srv.http.url.replace("http://", "ws://") + path, open_timeout=10, max_size=None)


def _rpc(ws, kind, data=None):
    ws.send(json.dumps({"type": kind, **({"data": data} if data is not None else {})}))
    return json.loads(ws.recv(timeout=60))


def _mcp(h, method, params, msg_id=1):
    return h.post("/mcp", {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})


def _is_429(status, headers, body, limit):
    assert status == 429, (status, body)
    assert int(headers["retry-after"]) >= 1
    d = body["data"]
    assert body["type"] == "error" and d["code"] == "CAPACITY_REACHED" and d["limit"] == limit and d["retry_after_s"] > 0
    assert f"--{limit.replace('_', '-')}" in d["message"]
    return d


# ---------------------------------------------------------------------------- request size
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversize_body_is_413_on_every_post_route(small, chunked):
    h = Http(small)
    try:
        for path in POST_ROUTES:
            status, _, body = h.post(path, b"x" * (FRAME_LIMIT + 1), chunked=chunked)
            assert status == 413, (path, status, body)
            if path == "/mcp":  # MCP answers JSON-RPC
                assert body["jsonrpc"] == "2.0" and body["error"]["code"] == -32600 and "over the limit" in body["error"]["message"]
            else:
                assert body["type"] == "error" and body["data"]["code"] == "VALIDATION_ERROR"
                assert str(FRAME_LIMIT) in body["data"]["message"] and "--max-output-chars" in body["data"]["message"]
        # the same keep-alive connection then serves a request under the limit
        status, _, body = h.post("/step", {"session_id": "nope", "action": "x" * 100})
        assert status == 404 and body["data"]["code"] == "SESSION_ERROR"
    finally:
        h.close()


def test_body_at_the_limit_is_read(small):
    h = Http(small)
    try:
        pad = FRAME_LIMIT - len(json.dumps({"session_id": "nope", "action": ""}))
        status, _, body = h.post("/step", {"session_id": "nope", "action": "a" * pad})  # exactly the limit: parsed, not 413
        assert status != 413 and body["type"] == "error", (status, body)
    finally:
        h.close()


def test_oversize_ws_frame_is_an_error_frame_and_the_socket_stays_usable(small):
    with _ws(small) as ws:
        ws.send("x" * (FRAME_LIMIT + 1))
        e = json.loads(ws.recv(timeout=10))
        assert e["type"] == "error" and e["data"]["code"] == "VALIDATION_ERROR" and str(FRAME_LIMIT) in e["data"]["message"]
        ws.send(json.dumps({"type": "step", "data": {"action": "y" * FRAME_LIMIT}}))  # valid JSON, over the limit
        assert json.loads(ws.recv(timeout=10))["data"]["code"] == "VALIDATION_ERROR"
        assert _rpc(ws, "state")["type"] == "state"
        r = _rpc(ws, "reset", {"task_id": "simple_python_0", "template": "hermes"})
        assert r["type"] == "observation"
        assert _rpc(ws, "state")["data"]["session_id"] == r["data"]["metadata"]["session_id"]
    with _ws(small, "/mcp") as ws:  # MCP's socket: a JSON-RPC error, then it answers
        ws.send("x" * (FRAME_LIMIT + 1))
        e = json.loads(ws.recv(timeout=10))
        assert e["error"]["code"] == -32600 and "over the limit" in e["error"]["message"]
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"jsonrpc": "2.0", "id": 7, "result": {}}


def test_frame_over_max_message_bytes_closes_the_socket_with_1009(small):
    """Past --max-message-bytes the WebSocket protocol itself refuses to read the frame (no unbounded buffering)."""
    with _ws(small) as ws:
        ws.send("x" * ((1 << 20) + 1))
        with pytest.raises(ConnectionClosed) as e:
            ws.recv(timeout=10)
        assert e.value.rcvd is not None and e.value.rcvd.code == 1009
    with _ws(small) as ws:  # the server is fine
        assert _rpc(ws, "state")["type"] == "state"


# ---------------------------------------------------------------------------- in flight
def test_inflight_per_client_is_429_with_retry_after_everywhere(one_inflight, monkeypatch):
    srv = one_inflight
    gate, entered = threading.Event(), threading.Event()
    real = srv.env.step_reply

    def held(*a, **kw):
        entered.set()
        gate.wait(30)
        return real(*a, **kw)

    h = Http(srv)
    stack = contextlib.ExitStack()
    a, b = stack.enter_context(_ws(srv)), stack.enter_context(_ws(srv))
    try:
        r = _rpc(a, "reset", {"task_id": "simple_python_0", "template": "hermes"})
        sid = r["data"]["metadata"]["session_id"]
        monkeypatch.setattr(srv.env, "step_reply", held)
        a.send(json.dumps({"type": "step", "data": {"action": "I will not call anything."}}))  # in flight until the gate opens
        assert entered.wait(30)
        assert srv.http.gateway.limiter.inflight("http:127.0.0.1") == 1
        # HTTP: 429, Retry-After, the limit named
        d = _is_429(*h.post("/step", {"session_id": sid, "action": "x"}), "max_inflight_per_client")
        assert d["max_inflight_per_client"] == 1 and "1 requests in flight" in d["message"]
        _is_429(*h.post("/reset", {"task_id": "simple_python_1"}), "max_inflight_per_client")
        _is_429(*h.post("/tools/search", {"query": "weather"}), "max_inflight_per_client")
        # WS: an error frame with the same message; the socket answers state next
        e = _rpc(b, "reset", {"task_id": "simple_python_1"})
        assert e["type"] == "error" and e["data"]["code"] == "CAPACITY_REACHED" and e["data"]["message"] == d["message"]
        assert e["data"]["retry_after_s"] == 1.0
        assert _rpc(b, "state")["type"] == "state"
        # MCP: a JSON-RPC error carrying the gateway's code
        status, _, init = _mcp(h, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}})
        assert status == 200 and "result" in init
        status, _, m = _mcp(h, "openenv/step", {"session_id": sid, "action": "x"}, 2)
        assert status == 200 and m["error"]["data"]["code"] == "CAPACITY_REACHED" and m["error"]["data"]["limit"] == "max_inflight_per_client"
        # closing (freeing resources) and health are never limited
        assert h.post("/close", {"session_id": "not-a-session"})[:1] == (200,)
        c = http.client.HTTPConnection("127.0.0.1", srv.http.port, timeout=10)
        c.request("GET", "/health")
        assert c.getresponse().status == 200
        c.close()
    finally:
        gate.set()
    r = json.loads(a.recv(timeout=60))
    assert r["type"] == "observation" and r["data"]["done"] is True  # the held step finished normally
    monkeypatch.setattr(srv.env, "step_reply", real)
    assert srv.http.gateway.limiter.inflight("http:127.0.0.1") == 0
    status, _, r = h.post("/reset", {"task_id": "simple_python_1", "template": "hermes"})  # the slot is free again
    assert status == 200
    assert h.post("/close", {"session_id": r["observation"]["metadata"]["session_id"]})[2] == {"closed": True}
    stack.close()
    h.close()


# ---------------------------------------------------------------------------- rate
def test_rate_limit_is_429_with_retry_after_per_client(rated):
    srv = rated
    h = Http(srv)
    with contextlib.ExitStack() as stack:
        ws = stack.enter_context(_ws(srv))
        stack.callback(h.close)
        assert _rpc(ws, "reset", {"task_id": "simple_python_0", "template": "hermes"})["type"] == "observation"  # token 1 of 3
        assert h.post("/step", {"session_id": "nope", "action": "x"})[0] == 404  # 2: counted (it reached the env)
        assert h.post("/step", {"action": "x"})[0] == 422  # refused before any work: no token taken
        assert h.post("/step", {"session_id": "nope", "action": "x"})[0] == 404  # 3
        status, headers, body = h.post("/step", {"session_id": "nope", "action": "x"})
        d = _is_429(status, headers, body, "http_rate_limit")
        assert int(headers["retry-after"]) == 5 and 4.0 < d["retry_after_s"] <= 5.0  # one token per 5 s
        assert d["http_rate_limit"] == 0.2 and d["http_rate_burst"] == 3 and "0.2/s" in d["message"]
        _is_429(*h.post("/reset", {"task_id": "simple_python_1"}), "http_rate_limit")
        # the socket: an error frame, then it still answers (state is never limited) and keeps its episode
        e = _rpc(ws, "step", {"action": "I will not call anything."})
        assert e["type"] == "error" and e["data"]["code"] == "CAPACITY_REACHED" and e["data"]["limit"] == "http_rate_limit"
        st = _rpc(ws, "state")
        assert st["type"] == "state" and st["data"]["session_id"] and st["data"]["step_count"] == 0
        # MCP
        status, _, m = _mcp(h, "openenv/step", {"session_id": st["data"]["session_id"], "action": "x"})
        assert status == 200 and m["error"]["data"]["code"] == "CAPACITY_REACHED" and m["error"]["data"]["limit"] == "http_rate_limit"
        assert h.post("/close", {"session_id": "nope"})[:1] == (200,)  # never limited
        # another client (another source address) has its own bucket
        other = Http(srv, source="127.0.0.2")
        try:
            assert other.post("/step", {"session_id": "nope", "action": "x"})[0] == 404
        finally:
            other.close()


def test_client_limiter_bucket_and_inflight_accounting():
    now = [100.0]
    lim = ClientLimiter(max_inflight=2, rate=2.0, burst=0, clock=lambda: now[0])
    assert lim.burst == 2.0  # 0 = one second's worth
    lim.acquire("a")
    lim.acquire("a")
    with pytest.raises(WireError) as e:
        lim.acquire("a")
    assert e.value.http_status == 429 and e.value.extra["limit"] == "max_inflight_per_client"
    lim.release("a")
    lim.release("a")
    with pytest.raises(WireError) as e:  # two tokens spent, none refilled yet
        lim.acquire("a")
    assert e.value.extra["limit"] == "http_rate_limit" and e.value.extra["retry_after_s"] == 0.5
    lim.acquire("b")  # per client
    now[0] += 0.5
    lim.acquire("a")  # refilled one
    lim.release("a")
    lim.release("b")
    assert lim.inflight("a") == lim.inflight("b") == 0 and lim.rejected == {"inflight": 1, "rate": 1}
    off = ClientLimiter()
    for _ in range(1000):
        off.acquire("a")
    assert not off.active and off.inflight("a") == 0
    for bad in ({"max_inflight": -1}, {"rate": -1.0}, {"rate": float("nan")}, {"burst": -2}):
        with pytest.raises(ValueError):
            ClientLimiter(**bad)


# ---------------------------------------------------------------------------- what the fuzz found (500s before)
@pytest.mark.parametrize("raw, code, status", [
    (b"[" * 3000 + b"]" * 3000, "INVALID_JSON", 400),  # past the parser's recursion limit
    (b'{"session_id": "s", "action": "x", "step_index": ' + b"9" * 5000 + b"}", "INVALID_JSON", 400),  # > 4300 digits
    (b'{"session_id": "s", "action": "a\\ud800b"}', "VALIDATION_ERROR", 422),  # a lone surrogate escape
    (b'{"session_id": "s", "action": "x", "step_index": 18446744073709551616}', "VALIDATION_ERROR", 422),  # > int64
], ids=["deep", "long-int", "lone-surrogate", "int64-overflow"])
def test_malformed_json_is_an_error_reply_not_a_500(small, raw, code, status):
    h = Http(small)
    try:
        got = h.post("/step", raw)
        assert got[0] == status and got[2]["data"]["code"] == code, got
        m = h.post("/mcp", raw)
        assert m[0] == 400 and m[2]["jsonrpc"] == "2.0" and m[2]["error"]["code"] in (-32700, -32600), m
    finally:
        h.close()
    if b"step_index\": 1844" in raw:
        return  # a socket checks step_index only on a live episode (test_hardening_fuzz_gateway covers it there)
    with _ws(small) as ws:
        ws.send(raw.decode())
        e = json.loads(ws.recv(timeout=10))
        assert e["type"] == "error" and e["data"]["code"] == code, e
        assert _rpc(ws, "state")["type"] == "state"


def test_routing_errors_have_the_documented_shape(small):
    c = http.client.HTTPConnection("127.0.0.1", small.http.port, timeout=10)
    try:
        for method, path, status in [("GET", "/nope", 404), ("POST", "/health", 405), ("GET", "/reset", 405)]:
            c.request(method, path)
            r = c.getresponse()
            body = json.loads(r.read())
            assert r.status == status and body["type"] == "error" and body["data"]["code"] == "UNKNOWN_TYPE", body
            assert path in body["data"]["message"] and "detail" in body  # FastAPI's field is kept
            if status == 405:
                assert r.getheader("allow") and r.getheader("allow") in body["data"]["message"]
    finally:
        c.close()
