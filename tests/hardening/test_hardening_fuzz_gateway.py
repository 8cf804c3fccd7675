"""Fuzzing the OpenEnv HTTP/WebSocket gateway (and MCP on it) on a real server on loopback.

10,000 seeded cases (``TOOLGYM_FUZZ_RANDOM=1`` draws a new seed, printed on failure): random and
malformed HTTP requests to every route — bad JSON, wrong JSON types, unknown fields, huge values and
numbers, deep nesting, unicode and lone surrogates (escaped in JSON), invalid UTF-8, wrong methods,
unknown paths, junk query strings, missing, unknown and finished session ids, oversize bodies — and
random WebSocket frames over a few sockets: non-JSON, binary, unknown types, missing or mistyped
data, steps before reset and after done, oversize, reset/step/state/close sequences and sockets that
attach to sessions by id.

The oracle (the HTTP side of ``test_hardening_fuzz_env``'s "only documented errors, every one
actionable"): no 5xx ever; every error is JSON of the documented shape — ``{"type": "error",
"data": {"message", "code"}}`` with one of OpenEnv's codes, JSON-RPC 2.0 on ``/mcp`` — 413 is
VALIDATION_ERROR and 429 CAPACITY_REACHED; every frame gets exactly one reply within a deadline, and
after every error frame the socket still answers a ``state`` frame (nothing hangs, nothing is
dropped); ``/health`` stays healthy throughout; and at the end the open sessions are back to where
they were (nothing leaked by a socket, an error path or MCP).
"""

from __future__ import annotations

import collections
import http.client
import json
import random
import time
import urllib.parse

import pytest
import websockets.sync.client as wsc
from hardening_support import RANDOM, record_cases
from websockets.exceptions import ConnectionClosed

from toolgym.env.server.app import ServerConfig, start_server

CASES = 10_000
WS_SHARE = 0.35  # of the cases are WebSocket frames, the rest HTTP requests
SEED = random.SystemRandom().randrange(1 << 30) if RANDOM else 14
FRAME_LIMIT = 1 << 16  # the gateway's body/frame limit with --max-output-chars 1000 (twice it, at least 64 KiB)
MAX_SESSIONS = 24
DEADLINE_S = 30.0  # one reply; a step runs the sandbox at most --tool-wall-s per call
CODES = {"INVALID_JSON", "UNKNOWN_TYPE", "VALIDATION_ERROR", "EXECUTION_ERROR", "CAPACITY_REACHED", "FACTORY_ERROR", "SESSION_ERROR"}
LIGHT_TASKS = ["simple_python_0", "simple_python_1", "multiple_3", "parallel_5", "irrelevance_4", "live_simple_10-3-6"]
STATEFUL_TASKS = ["multi_turn_base_0", "multi_turn_base_5"]
TEMPLATES = ["hermes", "pythonic", "json", "xml", "qwen", "llama"]
RESET_FIELDS = ["task_id", "seed", "template", "randomize_template", "categories", "max_steps", "reward_config", "task_json",
                "on_parse_error", "shaping", "retrieval", "task"]
ROUTES = [("GET", "/health"), ("GET", "/schema"), ("GET", "/metadata"), ("GET", "/state"), ("POST", "/reset"), ("POST", "/step"),
          ("POST", "/close"), ("POST", "/tools/search"), ("POST", "/mcp"), ("DELETE", "/mcp"), ("GET", "/mcp"),
          ("GET", "/dashboard/data"), ("GET", "/metrics"), ("GET", "/dashboard/episode/x")]
ODD_PATHS = ["/", "/nope", "/reset/", "/reset/x", "//reset", "/ws", "/STEP", "/state/1", "/%ff", "/%00", "/r%C3%A9set",
             "/dashboard/static/../../etc/passwd", "/dashboard/static/dashboard.js", "/tools", "/tools/search/x", "/mcp/x",
             "/docs", "/openapi.json"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]

HOSTILE = ["", " ", "\x00", "null", "None", "\ud800", "\udfff\ud800", "a\udc80b", "é" * 50, "🙂" * 20, "\u202eevil", "\ufeff",
           "' OR 1=1 --", "../../etc/passwd", "%s%n%x", "{{7*7}}", "\\", "\n\r\t", "<script>", "A" * 1001, "x" * 5000,
           "<tool_call>{\"name\": \"ls\", \"arguments\": {}}</tool_call>", "[ls()]", "[calculate_triangle_area(base=10, height=5)]",
           "I will not call anything.", "Done with this request.", '{"name": "cd", "arguments": {"folder": 7}}', "<|im_end|>"]
BIG_INTS = [0, 1, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30]
FLOATS = [0.5, -0.0, 1e308, -1e308, 5e-324, float("nan"), float("inf"), float("-inf")]


# ---------------------------------------------------------------------------- random values
def rand_str(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        return rng.choice(HOSTILE)
    if r < 0.9:  # random code points, lone surrogates included (they travel escaped in JSON)
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x800), rng.randrange(0xD800, 0xE000),
                                        rng.randrange(0xE000, 0x10FFFF), rng.randrange(0, 32)])) for _ in range(rng.randrange(1, 40)))
    return rng.choice(LIGHT_TASKS + STATEFUL_TASKS + TEMPLATES)


def rand_value(rng: random.Random, depth: int = 0) -> object:
    r = rng.random()
    if r < 0.12:
        return None
    if r < 0.2:
        return rng.random() < 0.5
    if r < 0.35:
        return rng.choice(BIG_INTS + [rng.randrange(-100, 100)])
    if r < 0.42:
        return rng.choice(FLOATS)
    if r < 0.75 or depth > 2:
        return rand_str(rng)
    if r < 0.87:
        return [rand_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice(RESET_FIELDS + ["action", "session_id", "x", "", "\ud800"]): rand_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def dumps(v: object) -> str:
    return json.dumps(v)  # ensure_ascii: lone surrogates go out as \udXXX escapes; NaN/Infinity as Python writes them


WEIRD_DOCS = ["", " ", "{", "}", "[", '{"a":', "nul", "tru", '"unterminated', "{'single': 1}", '{"a" 1}', "[1,]", "{,}", "\ufeff{}",
              '{"a": 1}{"b": 2}', "1" * 5000, "-" + "9" * 4400, "1e99999", "[" * 3000 + "]" * 3000, '{"a":' * 2000 + "1" + "}" * 2000,
              "[" * 60000, "NaN", "Infinity", '"\\ud800"', '{"type": "\\udfff"}', '{"\\u0000": 1}', '"\\x41"', "\x00\x01"]


def rand_doc(rng: random.Random, obj: object) -> bytes:
    """``obj`` as a body: mostly JSON, sometimes broken JSON, bytes that are not UTF-8, or oversize."""
    r = rng.random()
    if r < 0.7:
        return dumps(obj).encode()
    if r < 0.85:
        return rng.choice(WEIRD_DOCS).encode("utf-8", "surrogatepass")
    if r < 0.93:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    if r < 0.97:  # just under, at and over the limit
        return dumps({"action": "a" * (FRAME_LIMIT - rng.choice([20, 16, 15, 0, -1, -1000]))}).encode()
    return b" " * rng.randrange(1, 100) + dumps(obj).encode() + b"\n" * rng.randrange(0, 3)


# ---------------------------------------------------------------------------- the model of the server
class Model:
    """What the fuzz has open (to steer towards live sessions, and to close at the end) and what it saw."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.live: list[str] = []  # sessions opened over HTTP (closed at the end)
        self.dead: list[str] = ["nope", "x" * 64]  # closed ones
        self.finished: list[str] = []  # finished episodes, closed on the next request that names them or at the end
        self.mcp_keys: list[str] = []  # Mcp-Session-Id headers issued
        self.hist: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []

    def sid(self) -> object:
        r = self.rng.random()
        if r < 0.4 and self.live:
            return self.rng.choice(self.live)
        if r < 0.5 and self.finished:  # steps after done
            return self.rng.choice(self.finished)
        if r < 0.65:
            return self.rng.choice(self.dead)
        if r < 0.75:
            return None
        return rand_value(self.rng)

    def trim(self, h: "Http", keep: int) -> None:
        """Close what the fuzz holds down to ``keep`` sessions, finished ones first."""
        while len(self.live) + len(self.finished) > keep:
            pool = self.finished or self.live
            sid = pool.pop(self.rng.randrange(len(pool)))
            h.request("POST", "/close", dumps({"session_id": sid}).encode(), {})
            self.dead.append(sid)

    def fail(self, what: str) -> None:
        self.failures.append(what[:600])

    def summary(self) -> str:
        return (f"seed {SEED}; {sum(self.hist.values())} outcomes; histogram {dict(sorted(self.hist.items()))}; "
                f"{len(self.failures)} failures, first ones:\n" + "\n".join(self.failures[:12]))


def reset_data(rng: random.Random, valid: bool) -> dict:
    if valid:
        task = rng.choice(LIGHT_TASKS) if rng.random() < 0.9 else rng.choice(STATEFUL_TASKS)
        return {"task_id": task, "template": rng.choice(["hermes", "pythonic"]), **({"seed": rng.randrange(1000)} if rng.random() < 0.5 else {})}
    d: dict = {}
    for _ in range(rng.randrange(0, 4)):
        f = rng.choice(RESET_FIELDS + ["colour", "session_id", "action"])
        d[f] = rand_value(rng)
    if rng.random() < 0.5:
        d["task_id"] = rng.choice(LIGHT_TASKS + ["no_such_task"])
    return d


def step_data(rng: random.Random, model: Model, sid: object) -> object:
    r = rng.random()
    if r < 0.6:
        d = {"action": rng.choice(HOSTILE[18:]) if rng.random() < 0.6 else rand_str(rng)}
    elif r < 0.8:
        d = {"action": rand_value(rng)}
    elif r < 0.9:
        d = {k: rand_value(rng) for k in rng.sample(["action", "step_index", "text", "session_id", ""], rng.randrange(0, 3))}
    else:
        return rand_value(rng)
    if rng.random() < 0.25:
        d["step_index"] = rng.choice([0, 1, 2, -1, 2**62, 2**64, 1.5, "0", None, True])
    if sid is not None:
        d["session_id"] = sid
    return d


# ---------------------------------------------------------------------------- HTTP
class Http:
    def __init__(self, port: int):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE_S)

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        for attempt in (0, 1):
            try:
                self.c.request(method, path, body=body, headers=headers)
                r = self.c.getresponse()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.c.close()  # a server that ended a keep-alive connection: once more on a new one
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE_S)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def check_http(model: Model, method: str, path: str, status: int, headers: dict[str, str], raw: bytes, case: str) -> object:
    """The oracle for one HTTP reply; returns the parsed JSON body (or None)."""
    route = path.split("?", 1)[0]
    model.hist[f"http {status}"] += 1
    if status >= 500:
        model.fail(f"{case}: HTTP {status} {raw[:300]!r}")
        return None
    if method == "HEAD" or status in (202, 204) or (route == "/mcp" and method == "GET" and status == 405):
        return None  # no body (HEAD, MCP notifications, DELETE, MCP's 405 for its SSE stream)
    ctype = headers.get("content-type", "")
    if status < 400 and "json" not in ctype:
        return None  # the dashboard page, its static files, /metrics
    try:
        body = json.loads(raw)
    except ValueError:
        model.fail(f"{case}: HTTP {status} body is not JSON: {raw[:300]!r}")
        return None
    if status < 400:
        return body
    if route == "/mcp" and isinstance(body, dict) and "jsonrpc" in body:  # MCP answers JSON-RPC (a 413 there too, any method)
        ok = (isinstance(body, dict) and body.get("jsonrpc") == "2.0" and isinstance(body.get("error"), dict)
              and isinstance(body["error"].get("code"), int) and isinstance(body["error"].get("message"), str) and body["error"]["message"])
        if not ok:
            model.fail(f"{case}: HTTP {status} from /mcp is not a JSON-RPC error: {raw[:300]!r}")
        return body
    d = body.get("data") if isinstance(body, dict) else None
    if not (isinstance(body, dict) and body.get("type") == "error" and isinstance(d, dict) and isinstance(d.get("message"), str)
            and len(d["message"]) >= 10 and d.get("code") in CODES):
        model.fail(f"{case}: HTTP {status} error body is not {{type: error, data: {{message, code}}}}: {raw[:300]!r}")
        return body
    model.hist[f"http {status} {d['code']}"] += 1
    if status == 413 and d["code"] != "VALIDATION_ERROR":
        model.fail(f"{case}: 413 with code {d['code']}")
    if status == 429:
        if d["code"] != "CAPACITY_REACHED":
            model.fail(f"{case}: 429 with code {d['code']}")
        if "limit" in d and "retry-after" not in headers:
            model.fail(f"{case}: 429 from a request limit without Retry-After")
    return body


def http_case(model: Model, h: Http, i: int) -> None:
    rng = model.rng
    r = rng.random()
    headers = {"Content-Type": rng.choice(["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded",
                                           "multipart/form-data; boundary=x", "application/json; charset=latin-1"])}
    if rng.random() < 0.05:
        headers["Authorization"] = "Bearer " + rng.choice(["x", "", "\u00e9".encode().decode("latin-1")])
    body: bytes | None = None
    if r < 0.2:  # reset
        method, path = "POST", "/reset"
        valid = rng.random() < 0.12
        body = dumps(reset_data(rng, True)).encode() if valid else rand_doc(rng, reset_data(rng, False))
    elif r < 0.45:  # step
        method, path = "POST", "/step"
        body = rand_doc(rng, step_data(rng, model, model.sid()))
    elif r < 0.52:  # close
        method, path = "POST", "/close"
        sid = model.sid()
        body = rand_doc(rng, {"session_id": sid} if rng.random() < 0.8 else rand_value(rng))
    elif r < 0.6:  # state
        sid = model.sid()
        method = "GET"
        path = "/state" + ("" if sid is None else "?session_id=" + urllib.parse.quote(str(sid).encode("utf-8", "surrogatepass")))
        if rng.random() < 0.2:
            path = "/state?" + rng.choice(["session_id=%ff%fe", "session_id=%00", "session_id", "session_id=&session_id=x", "=&&=",
                                           "session_id=" + "a" * 5000])
    elif r < 0.66:  # tool search
        method, path = "POST", "/tools/search"
        d = {k: rand_value(rng) for k in rng.sample(["query", "k", "retriever", "x"], rng.randrange(0, 4))}
        if rng.random() < 0.3:
            d = {"query": rng.choice(["weather", "list files", rand_str(rng)]), "k": rng.choice([1, 5, 0, -1, 10**9])}
        body = rand_doc(rng, d)
    elif r < 0.76:  # MCP over HTTP
        method, path, body, headers = mcp_case(model, headers)
    elif r < 0.88:  # any route, any method
        method, path = rng.choice(ROUTES)
        method = rng.choice(METHODS) if rng.random() < 0.6 else method
        if method in ("POST", "PUT", "PATCH") or rng.random() < 0.2:
            body = rand_doc(rng, rand_value(rng))
    else:  # odd paths and query strings
        method = rng.choice(METHODS)
        path = rng.choice(ODD_PATHS) + ("?" + rng.choice(["a=1", "%zz", "x=%ff", "task_id=simple_python_0"]) if rng.random() < 0.3 else "")
        if rng.random() < 0.5:
            body = rand_doc(rng, rand_value(rng))
    case = f"case {i}: {method} {path} body={body[:160] if body is not None else None!r}"
    try:
        status, rh, raw = h.request(method, path, body, headers)
    except (OSError, http.client.HTTPException) as e:
        model.fail(f"{case}: no reply ({type(e).__name__}: {e})")
        h.c.close()
        return
    got = check_http(model, method, path, status, rh, raw, case)
    learn_http(model, path, body, status, got, rh)


def learn_http(model: Model, path: str, body: bytes | None, status: int, got: object, headers: dict[str, str]) -> None:
    if status != 200 or not isinstance(got, dict):
        if path == "/mcp" and SESSION_HEADER in headers:
            model.mcp_keys.append(headers[SESSION_HEADER])
        return
    if path == "/reset":
        sid = got.get("observation", {}).get("metadata", {}).get("session_id")
        if sid:
            model.live.append(sid)
    elif path == "/step" and got.get("done"):
        sid = got["metadata"]["session_id"]
        if sid in model.live and model.rng.random() < 0.5:  # the others stay open a while: steps after done
            model.live.remove(sid)
            model.finished.append(sid)
    elif path == "/close" and got.get("closed"):
        try:
            sid = json.loads(body)["session_id"]
        except (ValueError, KeyError, TypeError):
            return
        for pool in (model.live, model.finished):
            if sid in pool:
                pool.remove(sid)
        model.dead.append(sid)
    if path == "/mcp":
        if SESSION_HEADER in headers:
            model.mcp_keys.append(headers[SESSION_HEADER])
        res = got.get("result")
        if isinstance(res, dict) and isinstance(res.get("session_id"), str):  # openenv/session/create: an episode to close
            model.live.append(res["session_id"])


SESSION_HEADER = "mcp-session-id"
MCP_METHODS = ["initialize", "ping", "tools/list", "tools/call", "openenv/step", "openenv/session/create", "openenv/session/close",
               "resources/list", "", "notifications/initialized"]


def mcp_case(model: Model, headers: dict[str, str]) -> tuple[str, str, bytes | None, dict[str, str]]:
    rng = model.rng
    headers = dict(headers)
    if model.mcp_keys and rng.random() < 0.5:
        headers["Mcp-Session-Id"] = rng.choice(model.mcp_keys)
    elif rng.random() < 0.1:
        headers["Mcp-Session-Id"] = "".join(c for c in rand_str(rng) if " " < c < "\x7f") or "k"  # a value HTTP can carry
    if rng.random() < 0.1:
        headers["MCP-Protocol-Version"] = rng.choice(["2025-06-18", "1999-01-01", ""])
    if rng.random() < 0.1 and model.mcp_keys:
        return "DELETE", "/mcp", None, headers
    method = rng.choice(MCP_METHODS)
    params: object = {k: rand_value(rng) for k in rng.sample(["name", "arguments", "action", "session_id", "task_id", "_meta"], rng.randrange(0, 3))}
    if method == "initialize":
        params = {"protocolVersion": rng.choice(["2025-06-18", "2025-03-26", "x"]), "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "0"}}
    elif method in ("tools/call", "openenv/step") and model.live and rng.random() < 0.5:
        params = {"session_id": rng.choice(model.live), "name": rng.choice(["end_turn", "ls", "x"]), "arguments": {"message": "hi"},
                  "action": "I will not call anything."}
    elif rng.random() < 0.1:
        params = rand_value(rng)
    msg: object = {"jsonrpc": "2.0", "id": rng.choice([1, "a", None, 1.5, True, [1]]) if rng.random() < 0.3 else 1, "method": method, "params": params}
    if rng.random() < 0.1:
        msg = rand_value(rng)
    elif rng.random() < 0.1:
        del msg["jsonrpc"]  # type: ignore[union-attr]
    return "POST", "/mcp", rand_doc(rng, msg), headers  # no episode is ever bound at initialize: /mcp has no query string here


# ---------------------------------------------------------------------------- WebSocket
class Sock:
    def __init__(self, url: str, attach: str | None = None):
        q = "" if attach is None else "?session_id=" + urllib.parse.quote(attach.encode("utf-8", "surrogatepass"))
        # entered as a context manager (websockets >= 17.1 warns otherwise), left by close()
        self.ws = wsc.connect(url + q, open_timeout=DEADLINE_S, max_size=None, close_timeout=5).__enter__()
        self.has_episode = False
        self.pending_attach = attach is not None

    def close(self) -> None:
        self.ws.close()


def check_frame(model: Model, frame: dict, case: str) -> None:
    t = frame.get("type") if isinstance(frame, dict) else None
    if t == "error":
        d = frame.get("data")
        if not (isinstance(d, dict) and isinstance(d.get("message"), str) and len(d["message"]) >= 10 and d.get("code") in CODES):
            model.fail(f"{case}: error frame of the wrong shape: {str(frame)[:300]}")
            return
        model.hist[f"ws error {d['code']}"] += 1
        if d["code"] == "EXECUTION_ERROR" and "inside the server" in d["message"]:
            model.fail(f"{case}: a server bug surfaced as an error frame: {d['message'][:300]}")
    elif t in ("observation", "state"):
        model.hist[f"ws {t}"] += 1
        if not isinstance(frame.get("data"), dict):
            model.fail(f"{case}: {t} frame without data: {str(frame)[:300]}")
    else:
        model.fail(f"{case}: unknown reply frame {str(frame)[:300]}")


def ws_frame(model: Model, sock: Sock) -> tuple[str | bytes, str]:
    """A frame to send, and what it is (for the case's name)."""
    rng = model.rng
    r = rng.random()
    if r < 0.1:
        return rng.choice(WEIRD_DOCS), "weird"
    if r < 0.15:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 32))), "binary"
    if r < 0.2:
        return dumps(rand_value(rng)), "value"
    if r < 0.25:
        return dumps({"type": rand_str(rng) if rng.random() < 0.7 else rand_value(rng), "data": rand_value(rng)}), "type"
    if r < 0.28:
        return dumps({"type": "step", "data": {"action": "a" * (FRAME_LIMIT + rng.randrange(0, 5000))}}), "oversize"
    if r < 0.3:
        return "x" * (FRAME_LIMIT + 1), "oversize-text"
    if r < 0.45:
        valid = rng.random() < 0.2
        data = reset_data(rng, valid) if valid or rng.random() < 0.8 else rand_value(rng)
        frame = {"type": "reset", "data": data} if rng.random() < 0.9 else {"type": "reset"}
        return dumps(frame), "reset-valid" if valid else "reset"
    if r < 0.8:
        frame: dict = {"type": "step"}
        if rng.random() < 0.9:
            frame["data"] = step_data(rng, model, None)
        if rng.random() < 0.1:
            frame["extra"] = rand_value(rng)
        return dumps(frame), "step"
    if r < 0.93:
        return dumps({"type": "state", **({"data": rand_value(rng)} if rng.random() < 0.3 else {})}), "state"
    return dumps({"type": "close"}), "close"


def ws_cases(model: Model, url: str, n: int) -> int:
    rng = model.rng
    socks = [Sock(url) for _ in range(3)]
    frames = 0
    try:
        for i in range(n):
            k = rng.randrange(len(socks))
            s = socks[k]
            if rng.random() < 0.01:  # a new socket, sometimes attached to an open session (or a junk id)
                s.close()
                attach = rng.choice(model.live) if model.live and rng.random() < 0.5 else (rand_str(rng) if rng.random() < 0.5 else None)
                s = socks[k] = Sock(url, attach)
                if s.pending_attach:
                    try:  # a junk id: an error frame first; a good one: nothing
                        check_frame(model, json.loads(s.ws.recv(timeout=0.5)), f"ws attach {attach!r}")
                    except TimeoutError:
                        pass
            payload, what = ws_frame(model, s)
            case = f"ws case {i} ({what}): {payload[:160]!r}"
            try:
                s.ws.send(payload)
                frames += 1
                if what == "close":
                    try:
                        extra = s.ws.recv(timeout=DEADLINE_S)
                        model.fail(f"{case}: a reply to close: {str(extra)[:200]}")
                    except ConnectionClosed:
                        model.hist["ws closed"] += 1
                    socks[k] = Sock(url)
                    continue
                frame = json.loads(s.ws.recv(timeout=DEADLINE_S))
                check_frame(model, frame, case)
                if frame.get("type") == "error":  # the socket must still answer
                    s.ws.send(dumps({"type": "state"}))
                    st = json.loads(s.ws.recv(timeout=DEADLINE_S))
                    if st.get("type") != "state":
                        model.fail(f"{case}: after the error, state answered {str(st)[:200]}")
            except TimeoutError:
                model.fail(f"{case}: no reply within {DEADLINE_S} s (hung socket)")
                s.close()
                socks[k] = Sock(url)
            except ConnectionClosed as e:
                model.fail(f"{case}: the server closed the socket ({e})")
                socks[k] = Sock(url)
    finally:
        for s in socks:
            s.close()
    return frames


# ---------------------------------------------------------------------------- the test
@pytest.fixture(scope="module")
def gateway(suite):
    srv = start_server(ServerConfig(host="127.0.0.1", port=0, http_port=0, max_sessions=MAX_SESSIONS, max_output_chars=1000,
                                    max_message_bytes=1 << 20, sandbox_workers=2), suite=suite)
    yield srv
    srv.stop(0)


def _healthy(h: Http) -> bool:
    status, _, raw = h.request("GET", "/health", None, {})
    return status == 200 and json.loads(raw) == {"status": "healthy"}


def _wait_sessions(srv, at_most: int, within: float) -> int:
    deadline = time.monotonic() + within
    while len(srv.env.sessions) > at_most and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(srv.env.sessions)


def test_fuzz_gateway_10k_cases(gateway):
    srv = gateway
    baseline = len(srv.env.sessions)
    rng = random.Random(SEED)
    model = Model(rng)
    h = Http(srv.http.port)
    n_ws = int(CASES * WS_SHARE)
    n_http = CASES - n_ws
    t0 = time.perf_counter()
    for i in range(n_http):
        http_case(model, h, i)
        if i % 500 == 0 and not _healthy(h):
            model.fail(f"after HTTP case {i}: /health is not healthy")
        if rng.random() < 0.2:  # keep room for new resets (CAPACITY_REACHED is met too)
            model.trim(h, MAX_SESSIONS // 2)
        assert len(model.failures) < 50, model.summary()
    t_http = time.perf_counter() - t0
    record_cases("gateway/HTTP", n_http, t_http)
    model.trim(h, 4)  # room for the sockets' episodes (a few stay open: sockets attach to them)
    t1 = time.perf_counter()
    frames = ws_cases(model, srv.http.url.replace("http://", "ws://") + "/ws", n_ws)
    t_ws = time.perf_counter() - t1
    record_cases("gateway/WebSocket", frames, t_ws)
    assert _healthy(h), model.summary()
    # no leaks: what the fuzz opened over HTTP or MCP it closes; sockets closed theirs themselves
    for sid in model.live + model.finished + model.dead:
        h.request("POST", "/close", dumps({"session_id": sid}).encode(), {})
    for key in set(model.mcp_keys):
        h.request("DELETE", "/mcp", None, {"Mcp-Session-Id": key})
    left = _wait_sessions(srv, baseline, 10.0)
    h.c.close()
    summary = model.summary() + f"\nHTTP {n_http} cases in {t_http:.1f} s, WebSocket {frames} frames in {t_ws:.1f} s"
    print(summary)
    assert not model.failures, summary
    assert left == baseline, f"{left - baseline} sessions leaked (open: {left}, before: {baseline}); " + summary
    assert frames + n_http >= CASES - 1, summary
