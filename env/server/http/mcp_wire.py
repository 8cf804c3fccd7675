"""JSON-RPC 2.0 / MCP framing for the gateway's ``/mcp`` routes (no I/O here).

What MCP clients send and expect (spec 2025-06-18, the Streamable HTTP transport answering with
JSON bodies), and how toolgym's values map to it: a toolgym tool spec becomes an MCP tool, a step
reply becomes a ``tools/call`` result, and the gateway's :class:`~toolgym.env.server.http.wire.WireError`
becomes a JSON-RPC error object whose ``data`` keeps the gateway's code name (``CAPACITY_REACHED``...),
so MCP and OpenEnv clients read the same error vocabulary.
"""

from __future__ import annotations

import json
from typing import Any

from toolgym.env.server.http import wire
from toolgym.env.server.http.wire import WireError
from toolgym.v1 import env_pb2

# JSON-RPC 2.0's standard codes, and the first of its implementation-defined range (OpenEnv's
# SERVER_ERROR: capacity, a step after the episode ended, a store that is down).
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR, SERVER_ERROR = (
    -32700, -32600, -32601, -32602, -32603, -32000)

# Revisions whose tools/* wire is what we serve; an unknown client offer gets LATEST (the client decides).
SUPPORTED_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")
LATEST_VERSION = "2025-06-18"

# The meta-tool that ends a user turn: a plain-text reply is no tool call, yet MCP clients only make
# tool calls. Stepping its message as the template's final answer is exactly what ends the turn.
END_TURN = "end_turn"
END_TURN_TOOL = {
    "name": END_TURN,
    "description": "Reply to the user in plain text, with no tool call: this ends your turn. The result is the next user "
                   "message, or, after the last turn, the episode's reward and its breakdown (toolgym meta-tool).",
    "inputSchema": {"type": "object", "properties": {"message": {"type": "string", "description": "Your reply to the user."}}},
}


class RpcError(Exception):
    """A JSON-RPC error reply; ``http_status`` is what a POST answers it with (200 for method-level errors)."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None, http_status: int = 200):
        super().__init__(message)
        self.code, self.message, self.data, self.http_status = code, message, data, http_status

    def error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **({"data": self.data} if self.data is not None else {})}


def from_wire_error(e: WireError) -> RpcError:
    """The gateway's error as JSON-RPC: bad input or an unknown session/task is invalid params (what
    OpenEnv answers for an unknown session_id); capacity, state and availability are server errors."""
    if e.http_status in (400, 404, 413, 422):
        code = INVALID_PARAMS
    elif e.http_status in (401, 403, 409, 429, 503):
        code = SERVER_ERROR
    else:
        code = INTERNAL_ERROR
    return RpcError(code, e.message, e.data(), http_status=401 if e.http_status == 401 else 200)


def session_error(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message, {"code": wire.SESSION_ERROR, "message": message})


def response(msg_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "result": result}


def error_response(msg_id: Any, e: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "error": e.error()}


def parse_message(raw: str | bytes) -> Any:

    try:
        return wire.parse_json(raw, "the body")  # deep nesting, huge integers, lone surrogates: an error, not a 500
    except WireError as e:
        raise RpcError(PARSE_ERROR if e.code == wire.INVALID_JSON else INVALID_REQUEST,
                       f"Parse error: {e.message}; send one JSON-RPC 2.0 object "
                       "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ..., \"params\": {...}}", http_status=400) from None


def classify(msg: Any) -> tuple[str, Any, str, dict[str, Any]]:
    """(kind, id, method, params) of one message; kind is request, notification or response.

    Raises RpcError INVALID_REQUEST (with the id when one could be read) for anything else."""
    if isinstance(msg, list):
        raise RpcError(INVALID_REQUEST, "JSON-RPC batches are not accepted (MCP 2025-06-18 removed them): send one message "
                                        "per request", http_status=400)
    if not isinstance(msg, dict):
        raise RpcError(INVALID_REQUEST, f"a JSON-RPC message is a JSON object, got {type(msg).__name__}", http_status=400)
    msg_id = msg.get("id")
    if "id" in msg and (isinstance(msg_id, bool) or not isinstance(msg_id, (str, int))):
        raise RpcError(INVALID_REQUEST, f"'id' must be a string or an integer, got {json.dumps(msg_id)}", http_status=400)
    if msg.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, "'jsonrpc' must be \"2.0\"", http_status=400)
    if "method" not in msg and ("result" in msg or "error" in msg):
        return "response", msg_id, "", {}  # a client's answer to a server request; we send none, so nothing waits on it
    method = msg.get("method")
    if not isinstance(method, str) or not method:
        raise RpcError(INVALID_REQUEST, "a request needs 'method', a non-empty string (e.g. \"tools/list\")", http_status=400)
    params = msg.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, f"'params' of {method} must be a JSON object, got {type(params).__name__}")
    return ("request" if "id" in msg else "notification"), msg_id, method, params


def negotiate(params: dict[str, Any]) -> str:
    """The protocol version answered to ``initialize``: the client's when we serve it, else our latest."""
    offered = params.get("protocolVersion")
    if not isinstance(offered, str):
        raise RpcError(INVALID_PARAMS, "initialize needs params.protocolVersion, the MCP revision the client speaks "
                                       f"(e.g. \"{LATEST_VERSION}\")")
    return offered if offered in SUPPORTED_VERSIONS else LATEST_VERSION


# ---------------------------------------------------------------------------------------- episodes
_RESET_FIELDS = {f.name: f for f in env_pb2.ResetRequest.DESCRIPTOR.fields}
_STRING = 9  # FieldDescriptor.TYPE_STRING


def reset_from_query(items: list[tuple[str, str]]) -> dict[str, Any]:
    """``/mcp?task_id=...&template=...`` as a reset's data: strings stay strings, other fields are read
    as JSON (``seed=3``, ``randomize_template=true``, ``reward_config={...}``), ``categories`` repeats
    or takes commas. Unknown keys are refused, as in a reset frame."""
    data: dict[str, Any] = {}
    for key, value in items:
        if key == "task":
            data[key] = _json_value(key, value)
            continue
        f = _RESET_FIELDS.get(key)
        if f is None:
            raise RpcError(INVALID_PARAMS, f"unknown query parameter {key!r} on /mcp; accepted: {', '.join(sorted(_RESET_FIELDS))} "
                                           "and 'task' (the fields of a reset)",
                           {"code": wire.VALIDATION_ERROR, "message": f"unknown query parameter {key!r}"})
        if f.is_repeated:
            data.setdefault(key, []).extend(v for v in value.split(",") if v)
        else:
            data[key] = value if f.type == _STRING else _json_value(key, value)
    return data


def _json_value(key: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value  # the reset's own validation names the field and what it expects


def mcp_tool(spec: dict[str, Any]) -> dict[str, Any]:
    """A toolgym tool spec (``ToolSpec.to_dict``) as an MCP tool; MCP requires an object schema at the root."""
    schema = dict(spec.get("parameters") or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return {"name": spec["name"], "description": spec.get("description", ""), "inputSchema": schema}


def call_result(payload: dict[str, Any], is_error: bool) -> dict[str, Any]:
    """A step payload (:func:`wire.step_payload`) as a ``tools/call`` result: the observation as text,
    and reward/done/the breakdown in ``structuredContent`` and ``_meta`` (clients read one or the other)."""
    obs, meta = payload["observation"], payload["metadata"]
    step = {"session_id": meta["session_id"], "step_index": meta["step_index"], "reward": payload["reward"],
            "done": payload["done"], "terminated": meta["terminated"], "truncated": meta["truncated"],
            "turn": meta["info"].get("turn")}
    signals = obs.get("reward_signals")
    if signals is not None:
        step["reward_signals"] = signals
    return {"content": [{"type": "text", "text": obs["text"]}], "structuredContent": step, "isError": is_error,
            "_meta": {f"toolgym/{k}": v for k, v in step.items()}}


def step_failed(name: str, info: dict[str, Any], observation: str) -> bool:
    """Whether the call did not run cleanly: not parsed as one call of that name, not offered this turn,
    or the sandbox/tool reported an error (BFCL tools answer ``{"error": ...}``)."""
    if info.get("parse_issues") or info.get("unoffered_calls") or info.get("calls") != [name]:
        return True
    return any(m in observation for m in ('{"error":', '{\\"error\\":', "the sandbox failed to run this call"))
