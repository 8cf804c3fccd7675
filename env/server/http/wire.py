"""OpenEnv's wire format <-> toolgym's env requests and replies (no I/O here).

The gateway speaks what OpenEnv clients send (openenv-core 0.3.x ``GenericEnvClient``, openenv 0.10.x):

- a reset's ``data`` carries the same fields as gRPC's ``ResetRequest`` (``task_id``, ``seed``,
  ``template``, ``categories``, ``max_steps``, ``reward_config``, ...; an inline task as ``task``, a
  JSON object). It is parsed into that very protobuf message, so the validation, defaults and error
  texts of a Reset are those of gRPC's, field for field;
- a step's ``data`` is ``{"action": "<raw model text>"}`` (the action schema has exactly one
  required string field, so verifiers' openenv taskset sends raw model text) with an optional
  ``step_index`` for idempotent retries;
- every reply is ``{"observation": {...}, "reward": float|null, "done": bool, "metadata": {...}}``.
  The observation holds the text the model sees next (``text``) and ``metadata`` with the
  session, the step's info and, on the terminal step, ``reward_signals``: the total, each component,
  each applied penalty, ``valid`` and ``feedback`` (TRL's ``get_rubric_scores`` reads
  ``observation.metadata["reward_signals"]``). ``reward_signals`` is also a key of the observation
  itself and the payload's top-level ``metadata`` repeats the observation's (0.10.x reads it there).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import grpc
from google.protobuf import json_format

from toolgym.env.server.errors import RequestError
from toolgym.v1 import env_pb2

# OpenEnv's error codes (openenv.core.env_server.types.WSErrorCode).
INVALID_JSON = "INVALID_JSON"
UNKNOWN_TYPE = "UNKNOWN_TYPE"
VALIDATION_ERROR = "VALIDATION_ERROR"
EXECUTION_ERROR = "EXECUTION_ERROR"
CAPACITY_REACHED = "CAPACITY_REACHED"
FACTORY_ERROR = "FACTORY_ERROR"
SESSION_ERROR = "SESSION_ERROR"

# gRPC status of a toolgym RequestError -> (OpenEnv code, HTTP status).
_BY_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: (VALIDATION_ERROR, 422),
    grpc.StatusCode.NOT_FOUND: (SESSION_ERROR, 404),
    grpc.StatusCode.FAILED_PRECONDITION: (SESSION_ERROR, 409),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (CAPACITY_REACHED, 429),
    grpc.StatusCode.UNAVAILABLE: (EXECUTION_ERROR, 503),
    grpc.StatusCode.DATA_LOSS: (SESSION_ERROR, 500),
    grpc.StatusCode.PERMISSION_DENIED: (SESSION_ERROR, 403),
    grpc.StatusCode.UNAUTHENTICATED: (SESSION_ERROR, 401),
}


class WireError(Exception):
    """An error reply: OpenEnv ``code``, the HTTP status it maps to, and extra fields for ``data``."""

    def __init__(self, code: str, message: str, http_status: int = 400, **extra: Any):
        super().__init__(message)
        self.code, self.message, self.http_status, self.extra = code, message, http_status, extra

    def data(self) -> dict[str, Any]:
        return {"message": self.message, "code": self.code, **self.extra}


def from_request_error(e: RequestError) -> WireError:
    code, status = _BY_STATUS.get(e.code, (EXECUTION_ERROR, 500))
    return WireError(code, e.message, status)


# ---------------------------------------------------------------------------------------- requests
def parse_json(raw: str | bytes, what: str = "request body") -> Any:
    """``json.loads`` that fails only with a WireError the client can act on (module docstring)."""
    try:
        doc = json.loads(raw)
    except RecursionError:
        raise WireError(INVALID_JSON, f"{what} nests JSON deeper than this server parses (about "
                        f"{sys.getrecursionlimit()} levels): flatten it", 400) from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, "Exceeds the limit (4300 digits)..."
        raise WireError(INVALID_JSON, f"Invalid JSON: {what} is not JSON ({e})", 400) from None
    try:
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise WireError(VALIDATION_ERROR, f"{what} holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without "
                        "its pair), which is not Unicode text: replace it (e.g. decode model output with "
                        "errors='replace') before sending", 422) from None
    except (ValueError, RecursionError):
        raise WireError(INVALID_JSON, f"{what} nests JSON deeper than this server handles: flatten it", 400) from None
    return doc


_RESET_FIELDS = sorted(f.name for f in env_pb2.ResetRequest.DESCRIPTOR.fields)


def reset_request(data: Any) -> env_pb2.ResetRequest:
    """A reset frame's ``data`` as a ``ResetRequest`` (unknown fields are a VALIDATION_ERROR)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise WireError(VALIDATION_ERROR, f"reset data must be a JSON object of ResetRequest fields, got {type(data).__name__}", 422)
    data = dict(data)
    task = data.pop("task", None)
    if task is not None:
        if not isinstance(task, dict):
            raise WireError(VALIDATION_ERROR, f"'task' must be a JSON object (a toolgym JSONL task), got {type(task).__name__}", 422)
        if "task_json" in data:
            raise WireError(VALIDATION_ERROR, "send the inline task once: as 'task' (an object) or 'task_json' (its text), not both", 422)
        data["task_json"] = json.dumps(task, ensure_ascii=False)
    req = env_pb2.ResetRequest()
    try:
        json_format.ParseDict(data, req)
    except json_format.ParseError as e:
        raise WireError(VALIDATION_ERROR, f"reset data: {e}; accepted fields: {', '.join(_RESET_FIELDS)} (and 'task')", 422) from None
    return req


def retrieve_request(data: Any) -> env_pb2.RetrieveToolsRequest:
    """``POST /tools/search``'s body (``{"query": str, "k"?: int, "retriever"?: str}``) as a ``RetrieveToolsRequest``."""
    if not isinstance(data, dict):
        raise WireError(VALIDATION_ERROR, f"search data must be a JSON object {{\"query\": ..., \"k\": 10}}, got {type(data).__name__}", 422)
    req = env_pb2.RetrieveToolsRequest()
    try:
        json_format.ParseDict(data, req)
    except json_format.ParseError as e:
        raise WireError(VALIDATION_ERROR, f"search data: {e}; accepted fields: query, k, retriever", 422) from None
    return req


def step_request(session_id: str, data: Any) -> env_pb2.StepRequest:
    """A step frame's ``data`` (``{"action": str, "step_index"?: int}``) as a ``StepRequest``."""
    if not isinstance(data, dict):
        raise WireError(VALIDATION_ERROR, f"step data must be a JSON object {{\"action\": \"<model text>\"}}, got {type(data).__name__}", 422)
    unknown = sorted(set(data) - {"action", "step_index"})
    if unknown:
        raise WireError(VALIDATION_ERROR, f"step data has unknown field(s) {unknown}; send {{\"action\": \"<model text>\"}} "
                                          "and optionally \"step_index\" (0-based, for retries)", 422)
    action = data.get("action")
    if isinstance(action, (bool, int, float, list, dict)):
        # verifiers' openenv taskset sends a reply that is itself JSON (a bare `338350`) decoded:
        # the model wrote that text, so it is stepped as its JSON text, not refused.
        action = json.dumps(action, ensure_ascii=False)
    if not isinstance(action, str):
        got = "nothing" if action is None else type(action).__name__
        raise WireError(VALIDATION_ERROR, f"step data needs 'action', the model's raw output text (a string); got {got}", 422)
    req = env_pb2.StepRequest(session_id=session_id, action=action)
    idx = data.get("step_index")
    if idx is not None:
        if type(idx) is not int:
            raise WireError(VALIDATION_ERROR, f"'step_index' must be an integer, got {type(idx).__name__}", 422)
        if not -(2**63) <= idx < 2**63:  # protobuf's int64 would raise ValueError (a 500)
            raise WireError(VALIDATION_ERROR, f"'step_index' {idx} is out of range: send the 0-based index of this step", 422)
        req.step_index = idx
    return req


# ---------------------------------------------------------------------------------------- replies
def _payload(text: str, reward: float | None, done: bool, meta: dict[str, Any], signals: dict[str, Any] | None) -> dict[str, Any]:
    obs_meta = dict(meta)
    obs: dict[str, Any] = {"text": text}
    if signals is not None:
        obs_meta["reward_signals"] = signals
        obs["reward_signals"] = signals
    obs["metadata"] = obs_meta
    return {"observation": obs, "reward": reward, "done": done, "metadata": obs_meta}


def reset_payload(resp: env_pb2.ResetResponse) -> dict[str, Any]:
    info = json.loads(resp.info_json or "{}")
    meta = {"session_id": resp.session_id, "episode_id": resp.session_id, "step_count": 0, "info": info}
    return _payload(resp.observation, None, False, meta, None)


def step_payload(session_id: str, reply: dict[str, Any]) -> dict[str, Any]:
    """A step's observation payload from the session layer's reply dict (what ``EnvServicer.step_reply`` returns)."""
    score = reply.get("score")
    signals = None
    if score is not None:
        comps = dict(score["components"])
        signals = {"total": score["total"], **comps, "components": comps, "penalties": dict(score["penalties"]),
                   "valid": score["valid"], "feedback": score["feedback"]}
    idx = reply["step_index"]
    meta = {"session_id": session_id, "episode_id": session_id, "step_index": idx, "step_count": idx + 1,
            "terminated": reply["terminated"], "truncated": reply["truncated"], "info": reply["info"]}
    return _payload(reply["observation"], reply["reward"], reply["terminated"] or reply["truncated"], meta, signals)


def state_payload(session_id: str | None, step_count: int, done: bool) -> dict[str, Any]:
    return {"episode_id": session_id, "session_id": session_id, "step_count": step_count, "done": done}


# ---------------------------------------------------------------------------------------- schema
ACTION_SCHEMA = {
    "title": "ToolgymAction", "type": "object", "additionalProperties": False, "required": ["action"],
    "properties": {
        "action": {"type": "string", "description": "The model's raw output text; the episode's template parser reads its tool calls."},
        "step_index": {"type": "integer", "minimum": 0, "description": "0-based index of this step: a retry with the same index gets the recorded reply."},
    },
}
_SIGNALS = {"type": "object", "description": "Terminal step only: total, each component, penalties applied, valid, feedback.",
            "properties": {"total": {"type": "number"}, "components": {"type": "object", "additionalProperties": {"type": "number"}},
                           "penalties": {"type": "object", "additionalProperties": {"type": "number"}},
                           "valid": {"type": "boolean"}, "feedback": {"type": "string"}}}
OBSERVATION_SCHEMA = {
    "title": "ToolgymObservation", "type": "object", "required": ["text", "metadata"],
    "properties": {
        "text": {"type": "string", "description": "After a reset: the rendered prompt with the tool specs. After a step: the tool results or errors, or the next user message (a delta)."},
        "reward_signals": _SIGNALS,
        "metadata": {"type": "object", "properties": {
            "session_id": {"type": "string"}, "episode_id": {"type": "string"}, "step_index": {"type": "integer"},
            "step_count": {"type": "integer"}, "terminated": {"type": "boolean"}, "truncated": {"type": "boolean"},
            "info": {"type": "object"}, "reward_signals": _SIGNALS}},
    },
}
STATE_SCHEMA = {
    "title": "ToolgymState", "type": "object", "required": ["episode_id", "step_count"],
    "properties": {"episode_id": {"type": ["string", "null"]}, "session_id": {"type": ["string", "null"]},
                   "step_count": {"type": "integer", "minimum": 0}, "done": {"type": "boolean"}},
}
