"""A Python client for the toolgym server, with deadlines on every call.

This and the generated ``toolgym.v1`` stubs are the boundary: trainers, evals and user code
talk to the environment through it and never import server internals or the sandbox.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from toolgym.env.reward.trajectory import ScoreResult
from toolgym.env.server.convert import reward_config_to_proto, score_from_proto
from toolgym.v1 import env_pb2, env_pb2_grpc, reward_pb2, reward_pb2_grpc

__all__ = ["ToolgymClient", "ScoreResult", "TaskInfo", "ResetResult", "StepResult", "ScoreItemError"]


@dataclass(frozen=True)
class TaskInfo:
    id: str
    category: str
    kind: str
    num_turns: int
    num_tools: int


@dataclass(frozen=True)
class ResetResult:
    session_id: str
    observation: str
    info: dict[str, Any]


@dataclass(frozen=True)
class StepResult:
    observation: str
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    score: ScoreResult | None = None
    step_index: int = 0


class ScoreItemError(Exception):
    """One batch item could not be scored (``code`` is the grpc.StatusCode it would have had)."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


_CODES = {c.value[0]: c for c in grpc.StatusCode}


def _score_request(item: dict[str, Any]) -> reward_pb2.ScoreRequest:
    unknown = set(item) - {"output", "task_id", "task", "template", "reward_config", "request_id"}
    if unknown:
        raise TypeError(f"unknown score item key(s) {sorted(unknown)}; expected output, task_id or task, template, reward_config, request_id")
    req = reward_pb2.ScoreRequest(output=item.get("output", ""), template=item.get("template") or "", request_id=str(item.get("request_id", "")))
    task = item.get("task")
    if task is not None:
        req.task_json = task if isinstance(task, str) else json.dumps(task, ensure_ascii=False)
    elif item.get("task_id"):
        req.task_id = item["task_id"]
    rc = reward_config_to_proto(item.get("reward_config"))
    if rc is not None:
        req.reward_config.CopyFrom(rc)
    return req


@dataclass
class ToolgymClient:
    """Blocking client. ``timeout`` is the deadline (seconds) of each call unless overridden.

    Use as a context manager or call :meth:`close`. Thread-safe (gRPC channels are).
    """

    address: str
    timeout: float = 30.0
    options: Sequence[tuple[str, Any]] = field(default=(("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)))
    credentials: grpc.ChannelCredentials | None = None

    def __post_init__(self) -> None:
        opts = list(self.options)
        self._channel = (grpc.secure_channel(self.address, self.credentials, options=opts) if self.credentials
                         else grpc.insecure_channel(self.address, options=opts))
        self._reward = reward_pb2_grpc.RewardServiceStub(self._channel)
        self._env = env_pb2_grpc.EnvServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def __enter__(self) -> ToolgymClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        grpc.channel_ready_future(self._channel).result(timeout=timeout)

    def _t(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    # ------------------------------------------------------------------ health
    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        resp = self._health.Check(health_pb2.HealthCheckRequest(service=service), timeout=self._t(timeout))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    # ------------------------------------------------------------------ reward
    def score(self, output: str, *, task_id: str | None = None, task: dict[str, Any] | str | None = None,
              template: str | None = None, reward_config: dict[str, Any] | None = None, timeout: float | None = None) -> ScoreResult:
        req = _score_request({"output": output, "task_id": task_id, "task": task, "template": template, "reward_config": reward_config})
        return score_from_proto(self._reward.Score(req, timeout=self._t(timeout)).result)

    def score_batch(self, items: Sequence[dict[str, Any]], *, timeout: float | None = None,
                    raise_on_error: bool = True) -> list[ScoreResult | ScoreItemError]:
        """Score many outputs in one RPC. Items take score()'s keyword names.

        With ``raise_on_error`` the first failed item raises :class:`ScoreItemError`; otherwise
        failed items come back as ScoreItemError values in their place.
        """
        resp = self._reward.ScoreBatch(reward_pb2.ScoreBatchRequest(items=[_score_request(i) for i in items]), timeout=self._t(timeout))
        out: list[ScoreResult | ScoreItemError] = []
        for r in resp.results:
            if r.HasField("error"):
                err = ScoreItemError(_CODES.get(r.error.code, grpc.StatusCode.UNKNOWN), r.error.message)
                if raise_on_error:
                    raise err
                out.append(err)
            else:
                out.append(score_from_proto(r.result))
        return out

    def score_stream(self, items: Iterable[dict[str, Any]], *, timeout: float | None = None) -> Iterator[ScoreResult | ScoreItemError]:
        for r in self._reward.ScoreStream((_score_request(i) for i in items), timeout=self._t(timeout)):
            if r.HasField("error"):
                yield ScoreItemError(_CODES.get(r.error.code, grpc.StatusCode.UNKNOWN), r.error.message)
            else:
                yield score_from_proto(r.result)

    # ------------------------------------------------------------------ env
    def list_tasks(self, categories: Sequence[str] | None = None, kinds: Sequence[str] | None = None, limit: int = 0,
                   offset: int = 0, *, timeout: float | None = None) -> list[TaskInfo]:
        resp = self._env.ListTasks(env_pb2.ListTasksRequest(categories=list(categories or ()), kinds=list(kinds or ()), limit=limit, offset=offset),
                                   timeout=self._t(timeout))
        return [TaskInfo(t.id, t.category, t.kind, t.num_turns, t.num_tools) for t in resp.tasks]

    def reset(self, task_id: str | None = None, *, seed: int | None = None, template: str | None = None,
              randomize_template: bool = False, categories: Sequence[str] | None = None, max_steps: int | None = None,
              task: dict[str, Any] | None = None, reward_config: dict[str, Any] | None = None,
              timeout: float | None = None) -> ResetResult:
        req = env_pb2.ResetRequest(task_id=task_id or "", template=template or "", randomize_template=randomize_template,
                                   categories=list(categories or ()), max_steps=max_steps or 0)
        if seed is not None:
            req.seed = int(seed)
        if task is not None:
            req.task_json = json.dumps(task, ensure_ascii=False)
        rc = reward_config_to_proto(reward_config)
        if rc is not None:
            req.reward_config.CopyFrom(rc)
        resp = self._env.Reset(req, timeout=self._t(timeout))
        return ResetResult(resp.session_id, resp.observation, json.loads(resp.info_json or "{}"))

    def step(self, session_id: str, action: str, *, step_index: int | None = None, timeout: float | None = None) -> StepResult:
        """Apply one action. Pass ``step_index`` (0-based) to make retries safe: a repeated index
        returns the recorded reply instead of applying the action twice."""
        req = env_pb2.StepRequest(session_id=session_id, action=action)
        if step_index is not None:
            req.step_index = step_index
        resp = self._env.Step(req, timeout=self._t(timeout))
        return _step_result(resp)

    def close_session(self, session_id: str, *, timeout: float | None = None) -> bool:
        return self._env.Close(env_pb2.CloseRequest(session_id=session_id), timeout=self._t(timeout)).closed

    def sessions_stream(self, requests: Iterable[env_pb2.SessionRequest], *, timeout: float | None = None) -> Iterator[env_pb2.SessionResponse]:
        """Raw access to the multiplexed session stream (see env.proto ``Sessions``)."""
        return self._env.Sessions(iter(requests), timeout=timeout)


def _step_result(resp: env_pb2.StepResponse) -> StepResult:
    return StepResult(
        observation=resp.observation,
        reward=resp.reward,
        terminated=resp.terminated,
        truncated=resp.truncated,
        info=json.loads(resp.info_json or "{}"),
        score=score_from_proto(resp.score) if resp.HasField("score") else None,
        step_index=resp.step_index,
    )
