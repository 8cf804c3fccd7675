"""A Python client for the toolgym server, with deadlines on every call.

This and the generated ``toolgym.v1`` stubs are the boundary: trainers, evals and user code
talk to the environment through it and never import server internals or the sandbox.

Security and resilience options (all off by default; environment variables fill them in, so
trainers and evals pick them up without code changes):

- ``token`` (``$TOOLGYM_AUTH_TOKEN``): sent as ``authorization: Bearer <token>`` on every call.
- ``tls_ca`` (``$TOOLGYM_TLS_CA``, a PEM path) or ``tls=True`` (system roots): a TLS channel;
  ``tls_cert``/``tls_key`` (``$TOOLGYM_TLS_CERT``/``$TOOLGYM_TLS_KEY``) add a client certificate
  (mTLS); ``tls_server_name`` overrides the name checked against the server's certificate.
- ``retry``: a :class:`RetryPolicy` retries calls that fail UNAVAILABLE (server restarting,
  unreachable) or CANCELLED by a server shutting down, with exponential backoff and jitter. Steps stay safe to retry: the
  client sends ``step_index`` (it counts each session's steps), so a Step whose reply was
  lost is answered from the server's record instead of being applied twice.
- Several replicas: an address such as ``ipv4:10.0.0.1:50051,10.0.0.2:50051`` or
  ``dns:///toolgym:50051`` uses gRPC's ``round_robin`` for stateless calls and Resets; each
  session's Step/Close go to the replica that created it (named in Reset's ``info["replica"]``).
  On a shared session store (``--session-store redis://``) that is only an optimisation (any
  replica serves any session); with private stores it is what makes steps find their session.
"""

from __future__ import annotations

import collections
import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from toolgym.env.reward.trajectory import ScoreResult
from toolgym.env.server.convert import reward_config_to_proto, score_from_proto
from toolgym.env.types import utf8_safe
from toolgym.v1 import env_pb2, env_pb2_grpc, reward_pb2, reward_pb2_grpc

__all__ = ["ToolgymClient", "ScoreResult", "TaskInfo", "ResetResult", "StepResult", "ScoreItemError", "RetryPolicy", "RetrievedTool"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetrievedTool:
    """One ``RetrieveTools`` hit: the tool's name, catalogue id, retriever score and spec."""

    name: str
    id: str
    score: float
    spec: dict[str, Any]


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


@dataclass(frozen=True)
class RetryPolicy:
    """Retry calls that fail with one of ``codes``, sleeping ``initial_backoff_s * multiplier**n``
    (capped, with ±50% jitter).

    UNAVAILABLE: the server is down, restarting or unreachable. CANCELLED: this client never
    cancels its blocking calls, so a CANCELLED reply comes from a server shutting down — gRPC
    cancels calls it had received but not yet dispatched (grpc/grpc#41785) instead of refusing
    them. Retrying both is safe because every call the client retries is idempotent (see
    :meth:`ToolgymClient.step`)."""

    max_attempts: int = field(default=8, metadata={"help": "Tries per call, the first included."})
    initial_backoff_s: float = field(default=0.1, metadata={"help": "Sleep before the first retry."})
    max_backoff_s: float = field(default=5.0, metadata={"help": "Longest sleep between tries."})
    multiplier: float = field(default=2.0, metadata={"help": "Backoff growth per retry."})
    max_elapsed_s: float = field(default=120.0, metadata={"help": "Give up once this much time has passed since the first try."})
    codes: tuple[grpc.StatusCode, ...] = field(default=(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED),
                                               metadata={"help": "Status codes worth retrying."})

    def delays(self) -> Iterator[float]:
        d = self.initial_backoff_s
        for _ in range(max(0, self.max_attempts - 1)):
            yield min(self.max_backoff_s, d) * random.uniform(0.5, 1.5)
            d *= self.multiplier


_CODES = {c.value[0]: c for c in grpc.StatusCode}


def _text(value: Any, what: str) -> str:
    """Model text for a protobuf string field: lone surrogates (not UTF-8) become U+FFFD, as the env does."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    return utf8_safe(value)


def _score_request(item: dict[str, Any]) -> reward_pb2.ScoreRequest:
    unknown = set(item) - {"output", "task_id", "task", "template", "reward_config", "request_id", "retrieval"}
    if unknown:
        raise TypeError(f"unknown score item key(s) {sorted(unknown)}; expected output, task_id or task, template, reward_config, "
                        "request_id, retrieval")
    req = reward_pb2.ScoreRequest(output=_text(item.get("output", ""), "output"), template=item.get("template") or "",
                                  request_id=str(item.get("request_id", "")))
    task = item.get("task")
    if task is not None:
        req.task_json = task if isinstance(task, str) else json.dumps(task, ensure_ascii=False)
    elif item.get("task_id"):
        req.task_id = item["task_id"]
    rc = reward_config_to_proto(item.get("reward_config"))
    if rc is not None:
        req.reward_config.CopyFrom(rc)
    if item.get("retrieval"):
        req.retrieval.CopyFrom(retrieval_to_proto(item["retrieval"]))
    return req


def _read_pem(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as e:
        raise ValueError(f"{what} {path!r}: {e.strerror}") from None


@dataclass
class ToolgymClient:
    """Blocking client. ``timeout`` is the deadline (seconds) of each call unless overridden.

    Use as a context manager or call :meth:`close`. Thread-safe (gRPC channels are).
    See the module docstring for ``token``, TLS, ``retry`` and replicas.
    """

    address: str
    timeout: float = 30.0
    options: Sequence[tuple[str, Any]] = field(default=(("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)))
    credentials: grpc.ChannelCredentials | None = None
    token: str | None = field(default=None, repr=False)  # never printed with the client
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_server_name: str | None = None
    retry: RetryPolicy | None = None
    load_balancing: str | None = None

    def __post_init__(self) -> None:
        env = os.environ
        self.token = self.token if self.token is not None else (env.get("TOOLGYM_AUTH_TOKEN", "").strip() or None)
        self.tls_ca = self.tls_ca or env.get("TOOLGYM_TLS_CA") or None
        self.tls_cert = self.tls_cert or env.get("TOOLGYM_TLS_CERT") or None
        self.tls_key = self.tls_key or env.get("TOOLGYM_TLS_KEY") or None
        self.tls_server_name = self.tls_server_name or env.get("TOOLGYM_TLS_SERVER_NAME") or None
        self._metadata = (("authorization", f"Bearer {self.token}"),) if self.token else None
        self._lock = threading.Lock()
        self._replica_addr: dict[str, str] = {}
        self._pinned: dict[str, tuple[grpc.Channel, env_pb2_grpc.EnvServiceStub]] = {}
        self._next_step: collections.OrderedDict[str, int] = collections.OrderedDict()
        opts = list(self.options)
        lb = self.load_balancing or ("round_robin" if ("," in self.address or self.address.startswith("dns:")) else None)
        self._channel = self._open(self.address, opts + ([("grpc.lb_policy_name", lb)] if lb else []))
        self._reward = reward_pb2_grpc.RewardServiceStub(self._channel)
        self._env = env_pb2_grpc.EnvServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def _creds(self) -> grpc.ChannelCredentials | None:
        if self.credentials is not None:
            return self.credentials
        if not (self.tls or self.tls_ca or self.tls_cert):
            return None
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("a client certificate needs both tls_cert and tls_key (PEM paths)")
        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.tls_ca, "tls_ca") if self.tls_ca else None,
            private_key=_read_pem(self.tls_key, "tls_key") if self.tls_key else None,
            certificate_chain=_read_pem(self.tls_cert, "tls_cert") if self.tls_cert else None,
        )

    def _open(self, target: str, opts: list[tuple[str, Any]]) -> grpc.Channel:
        creds = self._creds()
        if creds is None:
            return grpc.insecure_channel(target, options=opts)
        if self.tls_server_name:
            opts = opts + [("grpc.ssl_target_name_override", self.tls_server_name)]
        return grpc.secure_channel(target, creds, options=opts)

    def __enter__(self) -> ToolgymClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()
        with self._lock:
            pinned, self._pinned = list(self._pinned.values()), {}
        for ch, _ in pinned:
            ch.close()

    @property
    def channel(self) -> grpc.Channel:
        """The channel this client opened (TLS, load balancing and options applied): other
        services' stubs (e.g. ``EvalService``) can share it instead of opening their own."""
        return self._channel

    @property
    def call_metadata(self) -> tuple[tuple[str, str], ...] | None:
        """The metadata every call must carry (the bearer token, when one is set)."""
        return self._metadata

    def wait_ready(self, timeout: float = 10.0) -> None:
        grpc.channel_ready_future(self._channel).result(timeout=timeout)

    def _t(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    def _call(self, fn: Callable[..., T], request: Any, timeout: float | None, *, retry: bool = True) -> T:
        """One unary call with metadata, deadline and (if configured and ``retry``) retries."""
        if self.retry is None or not retry:
            return fn(request, timeout=self._t(timeout), metadata=self._metadata)
        start = time.monotonic()
        delays = self.retry.delays()
        while True:
            try:
                return fn(request, timeout=self._t(timeout), metadata=self._metadata)
            except grpc.RpcError as e:
                if e.code() not in self.retry.codes:
                    raise
                delay = next(delays, None)
                if delay is None or time.monotonic() - start + delay > self.retry.max_elapsed_s:
                    raise
                time.sleep(delay)

    # ------------------------------------------------------------------ replicas
    def _env_for(self, session_id: str) -> env_pb2_grpc.EnvServiceStub:
        """The EnvService stub of the replica holding ``session_id`` (the shared channel if unknown)."""
        replica = session_id.rsplit(".", 1)[0] if "." in session_id else ""
        addr = self._replica_addr.get(replica) if replica else None
        if not addr:
            return self._env
        with self._lock:
            pinned = self._pinned.get(addr)
            if pinned is None:
                ch = self._open(addr, list(self.options) + [("grpc.lb_policy_name", "pick_first")])
                pinned = self._pinned[addr] = (ch, env_pb2_grpc.EnvServiceStub(ch))
        return pinned[1]

    def _track(self, session_id: str, next_index: int | None) -> None:
        with self._lock:
            if next_index is None:
                self._next_step.pop(session_id, None)
                return
            self._next_step[session_id] = next_index
            self._next_step.move_to_end(session_id)
            while len(self._next_step) > 100_000:  # sessions abandoned without close/terminal step
                self._next_step.popitem(last=False)

    # ------------------------------------------------------------------ health
    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        resp = self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service), timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    # ------------------------------------------------------------------ reward
    def score(self, output: str, *, task_id: str | None = None, task: dict[str, Any] | str | None = None,
              template: str | None = None, reward_config: dict[str, Any] | None = None, retrieval: dict[str, Any] | None = None,
              timeout: float | None = None) -> ScoreResult:
        """Score one output. ``retrieval``: score it as a retrieval episode's only step
        ({"tool_pool", "retrieval": "none" | "pre_retrieved", "retriever", "retrieval_k"})."""
        req = _score_request({"output": output, "task_id": task_id, "task": task, "template": template,
                              "reward_config": reward_config, "retrieval": retrieval})
        return score_from_proto(self._call(self._reward.Score, req, timeout).result)

    def score_batch(self, items: Sequence[dict[str, Any]], *, timeout: float | None = None,
                    raise_on_error: bool = True) -> list[ScoreResult | ScoreItemError]:
        """Score many outputs in one RPC. Items take score()'s keyword names.

        With ``raise_on_error`` the first failed item raises :class:`ScoreItemError`; otherwise
        failed items come back as ScoreItemError values in their place.
        """
        resp = self._call(self._reward.ScoreBatch, reward_pb2.ScoreBatchRequest(items=[_score_request(i) for i in items]), timeout)
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
        for r in self._reward.ScoreStream((_score_request(i) for i in items), timeout=self._t(timeout), metadata=self._metadata):
            if r.HasField("error"):
                yield ScoreItemError(_CODES.get(r.error.code, grpc.StatusCode.UNKNOWN), r.error.message)
            else:
                yield score_from_proto(r.result)

    # ------------------------------------------------------------------ env
    def retrieve_tools(self, query: str, k: int = 10, *, retriever: str = "", timeout: float | None = None) -> list[RetrievedTool]:
        """Search the server's tool catalogue: best first, one entry per tool name."""
        req = env_pb2.RetrieveToolsRequest(query=_text(query, "query"), k=k, retriever=retriever)
        resp = self._call(self._env.RetrieveTools, req, timeout)
        return [RetrievedTool(t.name, t.id, t.score, json.loads(t.spec_json)) for t in resp.tools]

    def list_tasks(self, categories: Sequence[str] | None = None, kinds: Sequence[str] | None = None, limit: int = 0,
                   offset: int = 0, *, timeout: float | None = None) -> list[TaskInfo]:
        req = env_pb2.ListTasksRequest(categories=list(categories or ()), kinds=list(kinds or ()), limit=limit, offset=offset)
        resp = self._call(self._env.ListTasks, req, timeout)
        return [TaskInfo(t.id, t.category, t.kind, t.num_turns, t.num_tools) for t in resp.tasks]

    def reset(self, task_id: str | None = None, *, seed: int | None = None, template: str | None = None,
              randomize_template: bool = False, categories: Sequence[str] | None = None, max_steps: int | None = None,
              task: dict[str, Any] | None = None, reward_config: dict[str, Any] | None = None,
              on_parse_error: str | None = None, shaping: float = 0.0, retrieval: dict[str, Any] | None = None,
              timeout: float | None = None) -> ResetResult:
        """Start an episode. With ``retry``, a Reset whose reply was lost may leave an unused
        session on the server; it is reclaimed by the server's idle TTL."""
        req = reset_request(task_id, seed=seed, template=template, randomize_template=randomize_template,
                            categories=categories, max_steps=max_steps, task=task, reward_config=reward_config,
                            on_parse_error=on_parse_error, shaping=shaping, retrieval=retrieval)
        resp = self._call(self._env.Reset, req, timeout)
        info = self._learn_replica(resp.info_json)
        if self.retry is not None:
            self._track(resp.session_id, 0)
        return ResetResult(resp.session_id, resp.observation, info)

    def step(self, session_id: str, action: str, *, step_index: int | None = None, timeout: float | None = None) -> StepResult:
        """Apply one action. Pass ``step_index`` (0-based) to make retries safe: a repeated index
        returns the recorded reply instead of applying the action twice. With ``retry`` the
        client fills it in for sessions it reset; a Step without one is never retried."""
        req = env_pb2.StepRequest(session_id=session_id, action=_text(action, "action"))
        if step_index is None and self.retry is not None:
            step_index = self._next_step.get(session_id)
        if step_index is not None:
            req.step_index = step_index
        resp = self._call(self._env_for(session_id).Step, req, timeout, retry=step_index is not None)
        result = step_result(resp)
        if self.retry is not None:
            self._track(session_id, None if (result.terminated or result.truncated) else result.step_index + 1)
        return result

    def close_session(self, session_id: str, *, timeout: float | None = None) -> bool:
        """Close a session. Retried on UNAVAILABLE: a retry that finds it already closed is NOT_FOUND."""
        self._track(session_id, None)
        return self._call(self._env_for(session_id).Close, env_pb2.CloseRequest(session_id=session_id), timeout).closed

    def sessions_stream(self, requests: Iterable[env_pb2.SessionRequest], *, timeout: float | None = None) -> Iterator[env_pb2.SessionResponse]:
        """Raw access to the multiplexed session stream (see env.proto ``Sessions``).

        A stream lives on one replica: every session it resets is held there, so its Steps on
        the same stream always reach the right replica."""
        call = self._env.Sessions(iter(requests), timeout=timeout, metadata=self._metadata)
        try:
            for resp in call:
                if resp.HasField("reset"):
                    self._learn_replica(resp.reset.info_json)  # so close_session() reaches the right replica
                yield resp
        finally:
            call.cancel()  # a consumer that stops early ends the stream (a no-op once it completed)

    def _learn_replica(self, info_json: str) -> dict[str, Any]:
        info = json.loads(info_json or "{}")
        replica = info.get("replica") if isinstance(info, dict) else None
        if isinstance(replica, dict) and replica.get("id") and replica.get("address"):
            self._replica_addr[str(replica["id"])] = str(replica["address"])
        return info


def reset_request(task_id: str | None = None, *, seed: int | None = None, template: str | None = None,
                  randomize_template: bool = False, categories: Sequence[str] | None = None, max_steps: int | None = None,
                  task: dict[str, Any] | None = None, reward_config: dict[str, Any] | None = None,
                  on_parse_error: str | None = None, shaping: float = 0.0,
                  retrieval: dict[str, Any] | None = None) -> env_pb2.ResetRequest:
    """The ``ResetRequest`` for :meth:`ToolgymClient.reset`'s arguments (shared by the unary and stream clients).
    ``retrieval``: {"tool_pool", "retrieval", "retriever", "retrieval_k"} (any subset; README "Tool retrieval")."""
    req = env_pb2.ResetRequest(task_id=task_id or "", template=template or "", randomize_template=randomize_template,
                               categories=list(categories or ()), max_steps=max_steps or 0,
                               on_parse_error=on_parse_error or "", shaping=float(shaping or 0.0))
    if seed is not None:
        req.seed = int(seed)
    if task is not None:
        req.task_json = json.dumps(task, ensure_ascii=False)
    rc = reward_config_to_proto(reward_config)
    if rc is not None:
        req.reward_config.CopyFrom(rc)
    if retrieval:
        req.retrieval.CopyFrom(retrieval_to_proto(retrieval))
    return req


def retrieval_to_proto(retrieval: dict[str, Any]) -> reward_pb2.RetrievalOptions:
    """The ``RetrievalOptions`` message for a retrieval settings dict (unknown keys are an error)."""
    unknown = set(retrieval) - {"tool_pool", "retrieval", "retriever", "retrieval_k"}
    if unknown:
        raise ValueError(f"unknown retrieval option(s) {sorted(unknown)}; use tool_pool, retrieval, retriever, retrieval_k")
    return reward_pb2.RetrievalOptions(tool_pool=str(retrieval.get("tool_pool") or ""),
                                       mode=str(retrieval.get("retrieval") or ""),
                                       retriever=str(retrieval.get("retriever") or ""),
                                       k=int(retrieval.get("retrieval_k") or 0))


def step_result(resp: env_pb2.StepResponse) -> StepResult:
    return StepResult(
        observation=resp.observation,
        reward=resp.reward,
        terminated=resp.terminated,
        truncated=resp.truncated,
        info=json.loads(resp.info_json or "{}"),
        score=score_from_proto(resp.score) if resp.HasField("score") else None,
        step_index=resp.step_index,
    )
