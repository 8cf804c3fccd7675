"""EnvService: Reset/Step/Close over gRPC, plus a multiplexed bidirectional session stream."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import threading
from concurrent import futures
from typing import Any, Iterator

import grpc

from toolgym.env.episode import PARSE_ERROR_MODES, Episode, EpisodeOptions, select_task, select_template
from toolgym.env.executor import ToolExecutor
from toolgym.env.parsers import TEMPLATES
from toolgym.env.reward.config import RewardConfig
from toolgym.env.server.convert import json_text, reward_config_from_proto, score_to_proto
from toolgym.env.types import utf8_safe
from toolgym.env.server.errors import (RequestError, code_number, exhausted, invalid, not_found, precondition, rpc_errors,
                                       unavailable)
from toolgym.env.server.resolve import resolve_task
from toolgym.env.server.retrieval_rpc import retrieval_options, retrieve_tools, warm_retriever
from toolgym.env.retrieval.source import RetrievalSource
from toolgym.env.server.guard import current_client
from toolgym.env.sessions import errors as session_errors
from toolgym.env.sessions.manager import SessionLimits, SessionManager
from toolgym.env.sessions.records import SessionSpec
from toolgym.env.sessions.replies import score_from_dict
from toolgym.env.sessions.open_url import open_store
from toolgym.env.tasks.suite import Suite
from toolgym.v1 import env_pb2, env_pb2_grpc, reward_pb2

log = logging.getLogger("toolgym.server.env")


def _json(d: dict[str, Any]) -> str:
    return json_text(d)


@contextlib.contextmanager
def _session_errors() -> Iterator[None]:
    """The session layer's error types as gRPC statuses (the HTTP gateway maps the same types)."""
    try:
        yield
    except session_errors.SessionNotFound as e:
        raise not_found(e.args[0]) from None
    except session_errors.SessionLimitError as e:
        raise exhausted(str(e)) from None
    except (session_errors.StepIndexError, session_errors.EpisodeOver) as e:
        raise precondition(str(e)) from None
    except session_errors.StoreUnavailable as e:  # SessionBusy too: retrying the same step_index is safe
        raise unavailable(str(e)) from None
    except session_errors.RestoreMismatch as e:
        raise RequestError(grpc.StatusCode.DATA_LOSS, str(e)) from None


def _step_response(reply: dict[str, Any]) -> env_pb2.StepResponse:
    resp = env_pb2.StepResponse(observation=reply["observation"], reward=reply["reward"], terminated=reply["terminated"],
                                truncated=reply["truncated"], info_json=_json(reply["info"]), step_index=reply["step_index"])
    if reply.get("score") is not None:
        resp.score.CopyFrom(score_to_proto(score_from_dict(reply["score"])))
    return resp


def _parse_error_mode(mode: str) -> str:
    if mode and mode not in PARSE_ERROR_MODES:
        raise invalid(f"on_parse_error must be one of {list(PARSE_ERROR_MODES)} (empty = \"observe\"), got {mode!r}")
    return mode or "observe"


#: Largest accepted ``ResetRequest.shaping``: beyond it the per-step penalties would dwarf the
#: terminal contract reward, which is bounded to [-1.5, 1] (see the README's reward contract).
MAX_SHAPING = 10.0


def _shaping(value: float) -> float:
    if not math.isfinite(value) or value < 0 or value > MAX_SHAPING:
        raise invalid(f"shaping must be a finite number in [0, {MAX_SHAPING:g}] (0 = terminal reward only), got {value!r}")
    return float(value)


class _Counter:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.value += n


class StreamSessions:
    """The sessions one Sessions stream opened; :meth:`end` closes those still open (once).

    Expressed as session-store calls only (``close``), so any protocol adapter whose connection
    can drop (the HTTP/WebSocket gateway too) can scope its sessions the same way.
    """

    def __init__(self, store: SessionManager, counter: _Counter):
        self._store = store
        self._counter = counter
        self._ids: set[str] = set()
        self._lock = threading.Lock()
        self._ended = False

    def add(self, sid: str) -> None:
        with self._lock:
            if not self._ended:
                self._ids.add(sid)
                return
        self._close([sid], "reset finished after its stream ended")  # never leak a late reset

    def end(self, context: Any = None) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
            ids, self._ids = list(self._ids), set()
        self._close(ids, "stream ended")

    def _close(self, ids: list[str], why: str) -> None:
        n = sum(1 for sid in ids if sid in self._store and self._store.close(sid))
        if n:
            self._counter.add(n)
            log.info("Sessions %s: closed %d open session(s) it had reset (%d so far)", why, n, self._counter.value)


class EnvServicer(env_pb2_grpc.EnvServiceServicer):
    def __init__(self, suite: Suite, cfg: Any, executor: ToolExecutor | None = None, retrieval: RetrievalSource | None = None):
        self._suite = suite
        self._cfg = cfg
        self._executor = executor or ToolExecutor()
        # Built on the first retrieval episode or RetrieveTools call, then shared by both.
        self.retrieval = retrieval or RetrievalSource(lambda: list(suite))
        self._replica = str(getattr(cfg, "replica_id", "") or "")
        self.advertise_address = str(getattr(cfg, "advertise_address", "") or "")  # set by the app once bound
        limits = SessionLimits(max_sessions=cfg.max_sessions, ttl_s=cfg.session_ttl_s,
                               max_per_owner=int(getattr(cfg, "max_sessions_per_client", 0) or 0),
                               lease_s=float(getattr(cfg, "session_lease_s", 10.0)), lease_wait_s=float(getattr(cfg, "session_lease_s", 10.0)),
                               rollout_max_count=int(getattr(cfg, "rollout_max_count", 0) or 0),
                               rollout_max_age_s=float(getattr(cfg, "rollout_max_age_s", 0.0) or 0.0))
        store = open_store(str(getattr(cfg, "session_store", "") or "memory"))  # StoreConfigError: one line, exit 2
        self._sessions = SessionManager(store, self._episode_for, limits, id_prefix=self._replica)
        # The stream multiplexer runs sessions' steps concurrently on its own pool.
        self._stream_closed = _Counter()  # sessions closed because their Sessions stream ended
        self._steps = _Counter()  # steps answered over gRPC and the gateway alike (the dashboard's steps/s, /metrics)
        self._stream_pool = futures.ThreadPoolExecutor(max_workers=max(4, cfg.max_workers), thread_name_prefix="toolgym-stream")

    @property
    def sessions(self) -> SessionManager:
        return self._sessions

    @property
    def suite(self) -> Suite:
        """The task suite this service serves (read-only use: the gateway's MCP tools/list)."""
        return self._suite

    @property
    def config(self) -> Any:
        """The ServerConfig it was built from (the dashboard shows its safe fields)."""
        return self._cfg

    def _episode_for(self, spec: SessionSpec) -> Episode:
        """A fresh episode for a stored spec (a new session, or a restore replaying its log)."""
        # A stored spec keeps an inline task's own id beside its JSON; the JSON is the task (the both-set
        # refusal is for requests).
        task = resolve_task(self._suite, "" if spec.task_json else spec.task_id, spec.task_json)
        opts = EpisodeOptions(**{**spec.options, "categories": tuple(spec.options.get("categories") or ())})
        return Episode(task, spec.template, opts, RewardConfig.from_dict(spec.reward), self._executor,
                       gt_replay=self._executor.ground_truth, retrieval=self.retrieval)

    # ------------------------------------------------------------------ core operations
    def stats(self) -> dict[str, Any]:
        """Session and sandbox accounting (the server's --stats-file and the soak bench read it)."""
        st = self._sessions
        return {"sessions_open": len(st), "sessions_created": st.created, "sessions_closed": st.closed,
                "sessions_expired": st.expired, "sessions_restored": st.restored, "sessions_live": st.live,
                "sessions_closed_stream_end": self._stream_closed.value,
                "steps_total": self._steps.value,
                "session_store": st.store.url, "sandbox": self._executor.stats()}

    def do_reset(self, req: env_pb2.ResetRequest, owner: str = "") -> env_pb2.ResetResponse:
        if req.template and req.template not in TEMPLATES:
            raise invalid(f"unknown template {req.template!r}; use one of {list(TEMPLATES)} or leave it empty")
        try:
            reward = reward_config_from_proto(req.reward_config if req.HasField("reward_config") else None, self._cfg.reward)
        except ValueError as e:
            raise invalid(f"reward_config: {e}") from None
        seed = req.seed if req.HasField("seed") else None
        retrieval = retrieval_options(req.retrieval if req.HasField("retrieval") else None)
        if retrieval["retrieval"] != "none":
            warm_retriever(self.retrieval, str(retrieval["retriever"]))
        opts = EpisodeOptions(
            task_id=req.task_id or None,
            categories=tuple(req.categories),
            seed=seed,
            template=req.template or None,
            randomize_template=req.randomize_template,
            max_steps=req.max_steps if req.max_steps > 0 else self._cfg.max_steps,
            on_parse_error=_parse_error_mode(req.on_parse_error),
            shaping=_shaping(req.shaping),
            **retrieval,
        )
        if req.max_steps < 0:
            raise invalid(f"max_steps must be >= 0 (0 = server default {self._cfg.max_steps}), got {req.max_steps}")
        if req.max_steps > self._cfg.max_steps_limit:
            raise invalid(f"max_steps {req.max_steps} is above this server's limit of {self._cfg.max_steps_limit}; "
                          f"ask for at most {self._cfg.max_steps_limit} (0 = server default {self._cfg.max_steps}) "
                          f"or start the server with a larger --max-steps-limit")
        if seed is not None and seed < 0:  # numpy's generators (task/template choice) take non-negative seeds only
            raise invalid(f"seed must be >= 0 (it seeds numpy's default_rng, as in the local env), got {seed}")
        if req.task_id or req.task_json:
            task = resolve_task(self._suite, req.task_id, req.task_json)
        else:
            try:
                pool = self._suite.filter(categories=list(req.categories) or None)
            except ValueError as e:
                raise not_found(str(e)) from None
            if len(pool) == 0:
                raise not_found(f"no task in categories {list(req.categories)}; known categories: {sorted(self._suite.categories())}")
            task = select_task(list(pool), seed if seed is not None else 0)
        template = select_template(seed if seed is not None else 0, opts.template, opts.randomize_template, self._cfg.default_template)
        spec = SessionSpec(task_id=task.id, template=template, options=dataclasses.asdict(opts), reward=reward.to_dict(),
                           task_json=req.task_json, category=task.category)
        with _session_errors():
            session = self._sessions.create(spec, owner=owner)
        obs, info = session.observation, session.info
        if self._replica:
            # Where this session lives: clients pin its Steps to this address (see ServerConfig.replica_id).
            info = {**info, "replica": {"id": self._replica, "address": self.advertise_address}}
        return env_pb2.ResetResponse(session_id=session.session_id, observation=utf8_safe(obs), info_json=_json(info))

    def _check_owner(self, sid: str, owner: str) -> None:
        """Another client's session answers NOT_FOUND, like a missing one: a leaked id neither
        works nor confirms that it exists (issue 11 item 9)."""
        with _session_errors():
            stored = self._sessions.store.load(sid) if sid else None
        if stored is not None and stored.owner != owner:
            raise not_found(f"no open session {sid!r} for this client (sessions belong to the client that reset them); "
                            "call Reset for a new one")

    def do_step(self, req: env_pb2.StepRequest, owner: str = "") -> env_pb2.StepResponse:
        return _step_response(self.step_reply(req, owner))

    def step_reply(self, req: env_pb2.StepRequest, owner: str = "") -> dict[str, Any]:
        """The step as the session layer records it (observation, reward, terminated, truncated,
        info, step_index, score): gRPC wraps it in a StepResponse, the gateway writes it as JSON
        directly (no proto and info-JSON round trip on its hot path)."""
        if len(req.action) > self._cfg.max_output_chars:
            raise exhausted(f"action is {len(req.action)} characters; at most {self._cfg.max_output_chars} are accepted")
        if req.HasField("step_index") and req.step_index < 0:
            raise invalid(f"step_index must be >= 0 (the 0-based index of this step in its episode), got {req.step_index}; "
                          "leave it unset to apply the action as the next step")
        self._check_owner(req.session_id, owner)
        with _session_errors():
            reply = self._sessions.step(req.session_id, req.action, req.step_index if req.HasField("step_index") else -1)
        self._steps.add(1)
        return reply

    def do_close(self, req: env_pb2.CloseRequest, owner: str = "") -> env_pb2.CloseResponse:
        if not req.session_id:
            raise invalid("session_id is empty; pass the id returned by Reset")
        self._check_owner(req.session_id, owner)
        with _session_errors():
            closed = self._sessions.close(req.session_id)
        if not closed:
            raise not_found(f"no open session {req.session_id!r} (already closed or expired)")
        return env_pb2.CloseResponse(closed=True)

    # ------------------------------------------------------------------ unary RPCs
    @rpc_errors
    def ListTasks(self, request: env_pb2.ListTasksRequest, context: grpc.ServicerContext) -> env_pb2.ListTasksResponse:
        if request.limit < 0 or request.offset < 0:
            raise invalid(f"limit and offset must be >= 0, got limit={request.limit} offset={request.offset}")
        try:
            sel = self._suite.filter(categories=list(request.categories) or None, kinds=list(request.kinds) or None)
        except ValueError as e:
            raise not_found(str(e)) from None
        tasks = sorted(sel, key=lambda t: t.id)
        total = len(tasks)
        tasks = tasks[request.offset:]
        if request.limit:
            tasks = tasks[: request.limit]
        return env_pb2.ListTasksResponse(
            total=total,
            tasks=[env_pb2.TaskInfo(id=t.id, category=t.category, kind=t.kind, num_turns=len(t.turns), num_tools=len(t.tools)) for t in tasks],
        )

    @rpc_errors
    def RetrieveTools(self, request: env_pb2.RetrieveToolsRequest, context: grpc.ServicerContext) -> env_pb2.RetrieveToolsResponse:
        return retrieve_tools(self.retrieval, request)

    @rpc_errors
    def Reset(self, request: env_pb2.ResetRequest, context: grpc.ServicerContext) -> env_pb2.ResetResponse:
        return self.do_reset(request, current_client())

    @rpc_errors
    def Step(self, request: env_pb2.StepRequest, context: grpc.ServicerContext) -> env_pb2.StepResponse:
        return self.do_step(request, current_client())

    @rpc_errors
    def Close(self, request: env_pb2.CloseRequest, context: grpc.ServicerContext) -> env_pb2.CloseResponse:
        return self.do_close(request, current_client())

    # ------------------------------------------------------------------ stream
    def _handle(self, req: env_pb2.SessionRequest, owner: str = "", opened: "StreamSessions | None" = None) -> env_pb2.SessionResponse:
        op = req.WhichOneof("op")
        try:
            if op == "reset":
                resp = self.do_reset(req.reset, owner)
                if opened is not None:
                    opened.add(resp.session_id)
                return env_pb2.SessionResponse(tag=req.tag, reset=resp)
            if op == "step":
                return env_pb2.SessionResponse(tag=req.tag, step=self.do_step(req.step, owner))
            if op == "close":
                return env_pb2.SessionResponse(tag=req.tag, close=self.do_close(req.close, owner))
            raise invalid("SessionRequest carries no operation; set one of reset, step, close")
        except RequestError as e:
            return env_pb2.SessionResponse(tag=req.tag, error=reward_pb2.ItemError(code=code_number(e.code), message=e.message))
        except Exception as e:
            log.exception("stream op %s failed", op)
            return env_pb2.SessionResponse(tag=req.tag, error=reward_pb2.ItemError(
                code=code_number(grpc.StatusCode.INTERNAL), message=f"{op} failed inside the server: {type(e).__name__}: {e}"))

    def Sessions(self, request_iterator: Iterator[env_pb2.SessionRequest], context: grpc.ServicerContext) -> Iterator[env_pb2.SessionResponse]:
        """Requests are dispatched concurrently and answered as they complete (match by tag).

        Steps of the same session still apply in arrival order: each session's lock is taken
        in the order its requests arrive because dispatch is per-request FIFO per session.

        Sessions reset on a stream belong to it: when the stream ends for any reason (the client
        finishes or cancels, its connection drops, the server fails) the ones still open are
        closed at once, instead of holding their slots until the idle TTL.
        """
        import queue

        out: queue.Queue = queue.Queue()
        owner = current_client()  # read on the handler thread: the stream's workers run outside the RPC's context
        inflight = [0]
        lock = threading.Lock()
        done_reading = threading.Event()
        chains: dict[str, futures.Future] = {}
        opened = StreamSessions(self._sessions, self._stream_closed)
        # Runs when the RPC terminates, however it ends (a cancel or a dropped connection
        # included); off gRPC's thread because closing waits for a step in progress.
        context.add_callback(lambda: threading.Thread(target=opened.end, args=(context,), name="toolgym-stream-close", daemon=True).start())

        def submit(req: env_pb2.SessionRequest) -> None:
            sid = req.step.session_id if req.WhichOneof("op") == "step" else (req.close.session_id if req.WhichOneof("op") == "close" else "")
            prev = chains.get(sid) if sid else None

            def job() -> None:
                if prev is not None:
                    prev.exception()  # wait: same-session operations keep their order
                out.put(self._handle(req, owner, opened))

            fut = self._stream_pool.submit(job)
            if sid:
                chains[sid] = fut
                # Forget finished chains so a long-lived stream does not grow without bound.
                fut.add_done_callback(lambda f, s=sid: chains.pop(s, None) if chains.get(s) is f else None)

        def reader() -> None:
            try:
                for req in request_iterator:
                    with lock:
                        inflight[0] += 1
                    submit(req)
            except grpc.RpcError:
                pass  # client went away mid-stream; in-flight work still completes and is dropped
            finally:
                done_reading.set()
                out.put(None)

        threading.Thread(target=reader, name="toolgym-stream-reader", daemon=True).start()
        try:
            yield from self._answers(out, lock, inflight, context)
        finally:
            opened.end(context)

    @staticmethod
    def _answers(out: Any, lock: threading.Lock, inflight: list[int], context: grpc.ServicerContext) -> Iterator[env_pb2.SessionResponse]:
        finished_reader = False
        while True:
            item = out.get()
            if item is None:
                finished_reader = True
            else:
                with lock:
                    inflight[0] -= 1
                yield item
            with lock:
                if finished_reader and inflight[0] == 0:
                    return
            if not context.is_active():
                return

    def close(self) -> None:
        self._sessions.close_all()
        self._stream_pool.shutdown(wait=True, cancel_futures=True)
        self._executor.close()
