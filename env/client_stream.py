"""Blocking reset/step/close over ONE multiplexed ``EnvService.Sessions`` stream.

Why: a trainer running many episodes at once pays one unary RPC per step with ``ToolgymClient``;
the ``Sessions`` stream carries every session's resets, steps and closes on one HTTP/2 stream, so the
per-call overhead (headers, a new stream, a thread hop on the server) is paid once. This class keeps
``ToolgymClient``'s blocking ``reset``/``step``/``close_session`` signatures, so anything written for
the unary client (the trainer's ``RolloutEngine``, user loops) takes it unchanged and may call it
from many threads at once.

Requests are tagged; a reader thread hands each reply to the caller waiting on its tag (replies may
arrive out of order: see env.proto). An error reply raises :class:`StreamItemError` carrying the
status code the unary RPC would have had. If the stream itself ends (server gone, cancel), every
waiting call raises, and the next call opens a fresh stream — sessions live on the server, so a
new stream can keep stepping them (the server closes the sessions a dropped stream opened, so a
trainer should treat such an episode as lost).

    with ToolgymClient("127.0.0.1:50051") as unary, StreamSessions(unary) as env:
        r = env.reset("multi_turn_base_0", template="pythonic")
        s = env.step(r.session_id, "ls()", step_index=0)
"""

from __future__ import annotations

import itertools
import queue
import threading
from concurrent.futures import Future
from typing import Any, Iterator, Sequence

import grpc

from toolgym.env.client import ResetResult, StepResult, ToolgymClient, reset_request, step_result
from toolgym.v1 import env_pb2

__all__ = ["StreamSessions", "StreamItemError"]

_CODES = {c.value[0]: c for c in grpc.StatusCode}  # ItemError.code is the numeric status
_END = object()  # sentinel that ends the request iterator (and so the stream, half-closing it)


class StreamItemError(Exception):
    """The server answered one stream item with an error (``code`` is a ``grpc.StatusCode``)."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class _Stream:
    """One open ``Sessions`` call: a request queue, a reader thread and the futures waiting on tags."""

    def __init__(self, client: ToolgymClient, timeout: float | None):
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: dict[str, Future[env_pb2.SessionResponse]] = {}
        self._lock = threading.Lock()
        self._tags = itertools.count()
        self.alive = True
        self._call = client._env.Sessions(self._requests(), timeout=timeout, metadata=client.call_metadata)
        self._reader = threading.Thread(target=self._read, name="toolgym-stream-reader", daemon=True)
        self._reader.start()

    def _requests(self) -> Iterator[env_pb2.SessionRequest]:
        while True:
            item = self._q.get()
            if item is _END:
                return
            yield item

    def _read(self) -> None:
        err: BaseException | None = None
        try:
            for resp in self._call:
                with self._lock:
                    fut = self._pending.pop(resp.tag, None)
                if fut is not None:
                    fut.set_result(resp)
        except grpc.RpcError as exc:
            err = exc
        finally:
            with self._lock:
                self.alive = False
                waiting, self._pending = list(self._pending.values()), {}
            gone = ConnectionError(f"the Sessions stream ended before replying ({_rpc_text(err)})")
            for fut in waiting:
                fut.set_exception(gone)

    def submit(self, req: env_pb2.SessionRequest) -> Future[env_pb2.SessionResponse]:
        fut: Future[env_pb2.SessionResponse] = Future()
        with self._lock:
            if not self.alive:
                raise ConnectionError("the Sessions stream has ended")
            req.tag = str(next(self._tags))
            self._pending[req.tag] = fut
        self._q.put(req)
        return fut

    def close(self) -> None:
        self._q.put(_END)  # half-close: the server finishes in-flight items, then ends the call
        self._reader.join(timeout=5.0)
        if self._reader.is_alive():
            self._call.cancel()
            self._reader.join(timeout=1.0)


def _rpc_text(err: BaseException | None) -> str:
    if err is None:
        return "server closed it"
    code = getattr(err, "code", lambda: None)()
    details = getattr(err, "details", lambda: None)()
    return f"{getattr(code, 'name', code)}: {details}" if code is not None else str(err)


class StreamSessions:
    """``reset``/``step``/``close_session`` of :class:`ToolgymClient`, carried by one ``Sessions`` stream.

    ``client`` supplies the channel, credentials and token; ``timeout`` bounds each call's wait for its
    reply (the stream itself has no deadline). Thread-safe: calls from many threads share the stream.
    Every other ``ToolgymClient`` method (``score_batch``, ``list_tasks``, ...) is the unary client's, so
    this object stands in wherever a client is taken. With ``owns_client``, :meth:`close` closes it too.
    """

    def __init__(self, client: ToolgymClient, *, timeout: float | None = None, owns_client: bool = False):
        self.client = client
        self.timeout = client.timeout if timeout is None else timeout
        self._owns_client = owns_client
        self._lock = threading.Lock()
        self._stream: _Stream | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.client, name)

    def __enter__(self) -> StreamSessions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> _Stream:
        with self._lock:
            if self._stream is None or not self._stream.alive:
                self._stream = _Stream(self.client, None)
            return self._stream

    def _roundtrip(self, req: env_pb2.SessionRequest, timeout: float | None) -> env_pb2.SessionResponse:
        resp = self._open().submit(req).result(timeout=self.timeout if timeout is None else timeout)
        if resp.HasField("error"):
            code = _CODES.get(resp.error.code, grpc.StatusCode.UNKNOWN)
            raise StreamItemError(code, resp.error.message)
        return resp

    def reset(self, task_id: str | None = None, *, seed: int | None = None, template: str | None = None,
              randomize_template: bool = False, categories: Sequence[str] | None = None, max_steps: int | None = None,
              task: dict[str, Any] | None = None, reward_config: dict[str, Any] | None = None,
              on_parse_error: str | None = None, shaping: float = 0.0, timeout: float | None = None) -> ResetResult:
        req = reset_request(task_id, seed=seed, template=template, randomize_template=randomize_template,
                            categories=categories, max_steps=max_steps, task=task, reward_config=reward_config,
                            on_parse_error=on_parse_error, shaping=shaping)
        resp = self._roundtrip(env_pb2.SessionRequest(reset=req), timeout).reset
        return ResetResult(resp.session_id, resp.observation, self.client._learn_replica(resp.info_json))

    def step(self, session_id: str, action: str, *, step_index: int | None = None, timeout: float | None = None) -> StepResult:
        req = env_pb2.StepRequest(session_id=session_id, action=action)
        if step_index is not None:
            req.step_index = step_index
        return step_result(self._roundtrip(env_pb2.SessionRequest(step=req), timeout).step)

    def close_session(self, session_id: str, *, timeout: float | None = None) -> bool:
        req = env_pb2.CloseRequest(session_id=session_id)
        return self._roundtrip(env_pb2.SessionRequest(close=req), timeout).close.closed

    def close(self) -> None:
        """End the stream (the server then closes any session this stream still holds open)."""
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        if self._owns_client:
            self.client.close()
