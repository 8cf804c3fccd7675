"""The worker pool: long-lived sandboxed workers, sessions bound to them, crash recovery.

Thread-safety: any number of threads may use one pool. Each worker serves one request at a
time (a per-worker lock); each session's operations are serialised (a per-session lock), so a
session's action log is exactly the order its calls ran in. Sessions are spread over workers,
least-loaded first.

Crash recovery: the pool keeps every session's spec (kind, config) and action log (each call
with its arguments, limits and result). When a worker dies (crash, killed, or killed by the
pool because a call ran past its limit) a replacement is started, and each session that lived
there is rebuilt on a live worker by replaying its log when it is next used; the call that was
in flight when the worker crashed is then retried (``retry_on_crash`` times), so the caller
gets an answer and no state is lost. Backends must be deterministic for this to be exact.

Each session lives in a process of its own inside its worker, forked from a clean zygote (see
:mod:`toolgym.env.sandbox.worker`): sessions never share module/class state, and requests of
different sessions on one worker run concurrently (a slow call holds up only its own session).
Calls that ran past a limit *inside the session's process* (in-process backends) are not
logged: that process is killed and the session alone is rebuilt without them, so such a call
has no effect on backend state and no other session notices. Code calls (``python``) run in
their own jailed process; their results, timeouts included, are logged and replayed like any
other call.

Hostile text: arguments holding lone surrogates (``"\ud800"``) are refused with a tool error
before anything runs; text coming back (output, errors, state) is made valid Unicode once,
here (:func:`toolgym.env.sandbox.protocol.safe_text`), with a marker where it was changed.

Step budget: :meth:`WorkerPool.step_deadline` gives a deadline ``config.step_wall_s`` ahead;
passing it to every :meth:`WorkerPool.call` of one action cuts the call that crosses it
(``timed_out``) and skips the rest (``not_run``, not ``timed_out``): one timeout per step.

Worker processes themselves (start, replace, least-loaded choice) are managed by the base
class, :class:`~toolgym.env.sandbox.workers.WorkerSet`; this module holds the sessions: their
specs and action logs, binding them to workers, replay, and the public API.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from toolgym.env.sandbox import protocol
from toolgym.env.sandbox.config import CallResult, SandboxConfig, SandboxError, SandboxLimits, SessionError
from toolgym.env.sandbox.handle import WorkerDied, WorkerHandle, WorkerTimeout
from toolgym.env.sandbox.memwatch import ServerWatch
from toolgym.env.sandbox.workers import WorkerSet

__all__ = ["WorkerPool", "WorkerSet"]

log = logging.getLogger(__name__)


@dataclass
class _LogEntry:
    name: str
    args: dict[str, Any]
    limits: dict[str, Any]
    result: dict[str, Any]


@dataclass
class _Session:
    sid: str
    kind: str
    config: dict[str, Any]
    lock: threading.Lock = field(default_factory=threading.Lock)
    worker: WorkerHandle | None = None
    names: list[str] = field(default_factory=list)
    isolated: bool = False
    log: list[_LogEntry] = field(default_factory=list)
    closed: bool = False
    opened: bool = False  # bound once already: a later bind is a rebuild


def _safe(value: Any) -> Any:
    """A JSON value with every string (keys too) made valid Unicode (see ``protocol.safe_text``)."""
    if isinstance(value, str):
        return protocol.safe_text(value)
    if isinstance(value, dict):
        return {_safe(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_safe(v) for v in value]
    return value


def _safe_result(r: CallResult) -> CallResult:
    if protocol.find_unencodable([r.output, r.error]) is None:
        return r
    return dataclasses.replace(r, output=protocol.safe_text(r.output), error=None if r.error is None else protocol.safe_text(r.error))


class WorkerPool(WorkerSet):
    """A pool of sandboxed workers serving tool sessions. See the module docstring.

    >>> with WorkerPool(SandboxConfig(workers=2)) as pool:       # doctest: +SKIP
    ...     sid = pool.open_session("python", {})
    ...     pool.call(sid, "python", {"code": "print(6*7)"}).output
    '42\\n'
    """

    def __init__(self, config: SandboxConfig | None = None, *, start: bool = True) -> None:
        super().__init__(config)
        self._sessions: dict[str, _Session] = {}
        self._memwatch: ServerWatch | None = None
        if start:
            self.start()
            if self.config.memory_total_bytes > 0:
                self._memwatch = ServerWatch(self._worker_roots, self.config.memory_total_bytes, on_kill=self._on_memkill).start()

    def _worker_roots(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._workers if w.alive]

    def _on_memkill(self, pid: int, rss: int) -> None:
        log.warning("sandbox: all workers together held more than %d bytes; killed pid %d (%d bytes resident)",
                    self.config.memory_total_bytes, pid, rss)
        self._count("memory_kills")

    def step_deadline(self) -> float:
        """A ``time.monotonic()`` deadline ``config.step_wall_s`` from now, for one step's calls."""
        return time.monotonic() + float(self.config.step_wall_s)

    # ------------------------------------------------------------------ sessions
    def _get(self, sid: str) -> _Session:
        with self._lock:
            s = self._sessions.get(sid)
        if s is None or s.closed:
            raise SessionError(f"no open session {sid!r}")
        return s

    def _limits(self, limits: SandboxLimits | dict | None) -> SandboxLimits:
        if limits is None:
            return self.config.limits
        if isinstance(limits, SandboxLimits):
            return limits
        return SandboxLimits.from_dict({**self.config.limits.to_dict(), **limits})

    def _timeout(self, s: _Session, lim: dict[str, Any]) -> float:
        # The worker enforces every call's wall time itself (it kills the session's process);
        # the pool only backs it up, for a worker that stopped answering altogether.
        return float(lim["wall_s"]) + self.config.call_grace_s + 1.0

    def _unbind(self, s: _Session) -> None:
        """Forget the session's binding (its process on the worker is gone); rebuilt when next used."""
        w, s.worker = s.worker, None
        if w is not None:
            with self._lock:
                w.load -= 1

    def _bind(self, s: _Session) -> None:
        """Open ``s`` on a live worker and replay its log. Caller holds ``s.lock``."""
        rebuild = s.opened
        last_err = "no worker available"
        for _attempt in range(3):
            w = self._pick_worker()
            try:
                resp = w.request({"op": "open", "session": s.sid, "kind": s.kind, "config": s.config,
                                  "timeout_s": self.config.start_timeout_s}, self.config.start_timeout_s + 1.0)
                if not resp.get("ok"):
                    with self._lock:
                        w.load -= 1
                    if resp.get("lost"):
                        last_err = str(resp.get("error"))
                        continue
                    raise SessionError(str(resp.get("error")))
                s.names = list(resp.get("names") or [])
                s.isolated = bool(resp.get("isolated"))
                replayed = True
                for entry in s.log:
                    r = w.request({"op": "call", "session": s.sid, "name": entry.name, "args": entry.args, "limits": entry.limits},
                                  self._timeout(s, entry.limits))
                    if r.get("tainted") or not r.get("ok"):
                        # Its process is gone (or this replay went wrong): try again from scratch.
                        last_err = f"replay of {entry.name} failed: {r.get('error') or (r.get('result') or {}).get('error')}"
                        w.request({"op": "close", "session": s.sid}, self.config.start_timeout_s)
                        with self._lock:
                            w.load -= 1
                        replayed = False
                        break
                    self._count("replayed_calls")
                    got = r.get("result") or {}
                    if (got.get("output"), got.get("error")) != (entry.result.get("output"), entry.result.get("error")):
                        self._count("replay_mismatches")
                if not replayed:
                    continue
                s.worker = w
                s.opened = True
                if rebuild:
                    with self._lock:
                        self._stats["rebuilds"] += 1
                return
            except (WorkerDied, WorkerTimeout) as e:
                last_err = str(e) or type(e).__name__
                self._worker_died(w, f"while rebuilding session {s.sid}: {last_err}")
        raise SandboxError(f"could not rebuild session {s.sid}: {last_err}")

    def _ensure_bound(self, s: _Session) -> WorkerHandle:
        w = s.worker
        if w is not None and not w.alive:
            self._worker_died(w, "found dead")  # idempotent: its reaper may be on it already
        if w is None or not w.alive:
            self._bind(s)
            w = s.worker
        assert w is not None
        return w

    def open_session(self, kind: str, config: dict[str, Any] | None = None) -> str:
        """Open a session of toolset ``kind`` (e.g. ``"python"``); returns its id."""
        if self._closed:
            raise SandboxError("the pool is closed")
        config = dict(config or {})
        try:
            config = json.loads(json.dumps(config))
        except (TypeError, ValueError) as e:
            raise SessionError(f"session config must be JSON: {e}") from None
        s = _Session(sid=uuid.uuid4().hex, kind=str(kind), config=config)
        with s.lock:
            self._bind(s)
        with self._lock:
            self._sessions[s.sid] = s
            self._stats["sessions_opened"] += 1
        return s.sid

    def call(self, session_id: str, name: str, args: dict[str, Any] | None = None, limits: SandboxLimits | dict | None = None,
             *, digest: bool = False, deadline: float | None = None) -> CallResult:
        """Call tool ``name`` with ``args`` in a session. Never raises for tool failures.

        ``digest=True`` also returns a hash of the session's state after the call
        (``CallResult.state_digest``), computed inside the worker. ``deadline``: the step's
        :meth:`step_deadline`; the call's wall limit is cut to what is left of it, and a call
        that starts with nothing left is not run (``not_run``).
        """
        s = self._get(session_id)
        lim = self._limits(limits).to_dict()
        args = {} if args is None else args
        t0 = time.monotonic()
        try:
            args = json.loads(json.dumps(args))
        except (TypeError, ValueError) as e:
            return CallResult(ok=False, output="", error=f"arguments are not JSON: {e}", duration_s=0.0)
        if not isinstance(args, dict):
            return CallResult(ok=False, output="", error="arguments must be a JSON object", duration_s=0.0)
        bad = protocol.find_unencodable(args)
        if bad is not None or protocol.unencodable_at(str(name)) is not None:
            where, i = bad if bad is not None else ("the tool name", protocol.unencodable_at(str(name)) or 0)
            return CallResult(ok=False, output="", error=(
                f"invalid text in {where}: a lone surrogate at index {i} (text must be valid Unicode; "
                "write the character itself or a valid escape); the call was not run"), duration_s=0.0)
        cut = False
        if deadline is not None:
            left = deadline - t0
            if left <= 0:
                self._count("not_run")
                return CallResult(ok=False, output="", error=(
                    f"not run: this step's wall-time budget ({self.config.step_wall_s:g} s for all its calls) was already spent"),
                    not_run=True)
            if left < float(lim["wall_s"]):
                lim = dict(lim, wall_s=left)
                cut = True
        msg = {"op": "call", "session": s.sid, "name": str(name), "args": args, "limits": lim}
        if digest:
            msg["digest"] = True
        with s.lock:
            if s.closed:
                raise SessionError(f"no open session {session_id!r}")
            r = self._call_locked(s, str(name), msg, lim, t0)
        if cut and r.timed_out:
            r = dataclasses.replace(r, error=f"{r.error} (cut by this step's wall-time budget of {self.config.step_wall_s:g} s for all its calls)")
        return _safe_result(r)

    def _call_locked(self, s: _Session, name: str, msg: dict[str, Any], lim: dict[str, Any], t0: float) -> CallResult:
        attempts = 0
        while True:
            w = self._ensure_bound(s)
            try:
                resp = w.request(msg, self._timeout(s, lim))
                if not resp.get("ok") and not resp.get("lost"):
                    # Tool failures come back inside "result"; a failed op means the worker
                    # itself is broken: treat it like a crash.
                    raise WorkerDied(f"worker error: {resp.get('error')}")
            except WorkerTimeout:
                self._worker_died(w, f"call {name} ran past its limit of {lim['wall_s']} s and the worker stopped answering")
                with self._lock:
                    self._stats["timeouts"] += 1
                return CallResult(
                    ok=False, output="", error=f"wall-time limit exceeded ({lim['wall_s']:g} s); the call was killed",
                    timed_out=True, duration_s=time.monotonic() - t0,
                )
            except WorkerDied as e:
                self._worker_died(w, f"died during call {name}: {e}")
                resp = None
            if resp is None or resp.get("lost"):
                # The worker or only this session's process died mid-call: rebuild, retry.
                if resp is not None:
                    self._unbind(s)
                with self._lock:
                    self._stats["crashes_in_call"] += 1
                attempts += 1
                if attempts > self.config.retry_on_crash:
                    return CallResult(ok=False, output="", error="the sandbox process died while running this call",
                                      duration_s=time.monotonic() - t0)
                continue
            result = dict(resp.get("result") or {})
            with self._lock:
                self._stats["calls"] += 1
                if result.get("timed_out"):
                    self._stats["timeouts"] += 1
            if resp.get("tainted"):
                # An in-process call hit a limit: its partial effects died with the session's
                # process (the worker and its other sessions are untouched).
                self._unbind(s)
                self._count("session_kills")
                log.info("sandbox session %s: call %s hit a limit; the session is rebuilt without it", s.sid, name)
            else:
                s.log.append(_LogEntry(name, msg["args"], lim, result))
            r = CallResult.from_dict(result)
            return dataclasses.replace(r, duration_s=time.monotonic() - t0)

    def state(self, session_id: str) -> dict[str, Any]:
        """The session's backend state snapshot (``Toolset.state()``)."""
        s = self._get(session_id)
        with s.lock:
            for _ in range(1 + self.config.retry_on_crash):
                w = self._ensure_bound(s)
                try:
                    resp = w.request({"op": "state", "session": s.sid, "timeout_s": self.config.start_timeout_s},
                                     self.config.start_timeout_s + 1.0)
                except (WorkerDied, WorkerTimeout) as e:
                    self._worker_died(w, f"during state(): {e or type(e).__name__}")
                    continue
                if resp.get("lost"):
                    self._unbind(s)
                    continue
                if not resp.get("ok"):
                    raise SessionError(f"state() failed: {resp.get('error')}")
                st = _safe(resp.get("state"))
                return st if isinstance(st, dict) else {"state": st}
        raise SandboxError(f"could not read the state of session {session_id}")

    def tool_names(self, session_id: str) -> list[str]:
        return list(self._get(session_id).names)

    def close_session(self, session_id: str) -> None:
        """Close a session and delete its workspace. Closing an unknown session is a no-op."""
        with self._lock:
            s = self._sessions.pop(session_id, None)
        if s is None:
            return
        with s.lock:
            s.closed = True
            w = s.worker
            s.worker = None
            if w is not None:
                with self._lock:
                    w.load -= 1
                if w.alive:
                    try:
                        w.request({"op": "close", "session": s.sid}, self.config.start_timeout_s)
                    except (WorkerDied, WorkerTimeout) as e:
                        self._worker_died(w, f"during close: {e or type(e).__name__}")

    def worker_pid(self, session_id: str) -> int:
        """Host pid of the session's worker process (the init of its sandbox).

        ``os.kill(pid, SIGKILL)`` simulates a crash: the worker never answers again, and the
        session's next call rebuilds it elsewhere.
        """
        s = self._get(session_id)
        with s.lock:
            return self._ensure_bound(s).worker_pid

    def session_pid(self, session_id: str) -> int | None:
        """The pid (in its worker's pid namespace) of the session's own process, if known."""
        s = self._get(session_id)
        with s.lock:
            w = self._ensure_bound(s)
        resp = w.request({"op": "ping", "session": s.sid}, self.config.start_timeout_s)
        pids = resp.get("pids") or {}
        return pids.get(s.sid)

    def action_log(self, session_id: str) -> list[dict[str, Any]]:
        s = self._get(session_id)
        with s.lock:
            return [{"name": e.name, "args": e.args, "result": e.result} for e in s.log]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            workers = list(self._workers)
            st = dict(self._stats)
            sessions = len(self._sessions)
        alive = sum(1 for w in workers if w.alive and w.proc.poll() is None)
        return {
            "workers": self.config.workers,
            "workers_alive": alive,
            "sessions": sessions,
            "restarts": st.get("restarts", 0),
            "rebuilds": st.get("rebuilds", 0),
            "worker_deaths": st.get("worker_deaths", 0),
            "crashes_in_call": st.get("crashes_in_call", 0),
            "timeouts": st.get("timeouts", 0),
            "calls": st.get("calls", 0),
            "replayed_calls": st.get("replayed_calls", 0),
            "replay_mismatches": st.get("replay_mismatches", 0),
            "workers_started": st.get("workers_started", 0),
            "session_kills": st.get("session_kills", 0),
            "memory_kills": st.get("memory_kills", 0),
            "not_run": st.get("not_run", 0),
            "sessions_opened": st.get("sessions_opened", 0),
            "worker_pids": [w.worker_pid for w in workers],
            "seccomp": bool(workers) and all(w.info.get("seccomp") for w in workers),
        }

    def close(self) -> None:
        """Stop every worker. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._memwatch is not None:
                self._memwatch.stop()
            workers = list(self._workers)
            self._workers.clear()
            self._sessions.clear()
        for w in workers:
            w.shutdown()
        self._spawner.shutdown(wait=False)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
