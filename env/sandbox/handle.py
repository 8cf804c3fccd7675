"""Host-side handle on one sandboxed worker process: request/answer over its pipes, kill.

Requests are multiplexed: each carries an ``id``, a reader thread hands each answer to the
thread waiting for that id, so any number of sessions' requests are in flight on one worker at
once (the worker runs them concurrently, one process per session).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import select
import signal
import subprocess
import threading
from typing import Any, Callable

from toolgym.env.sandbox import protocol

log = logging.getLogger("toolgym.env.sandbox.pool")


class WorkerDied(Exception):
    pass


class WorkerTimeout(Exception):
    pass


class _Waiter:
    __slots__ = ("event", "resp")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.resp: dict[str, Any] | None = None


class WorkerHandle:
    """Host-side handle on one sandboxed worker process."""

    def __init__(self, proc: subprocess.Popen, wid: int, max_frame: int, info_fd: int | None = None,
                 on_dead: Callable[[WorkerHandle], None] | None = None) -> None:
        self.proc = proc
        self.pid = proc.pid  # bwrap's (outer) process
        self.worker_pid = proc.pid  # the worker itself, once bwrap's info says so
        self._info_fd = info_fd
        self.wid = wid
        self.lock = threading.Lock()  # the handle's life cycle (reap), not requests
        self._wlock = threading.Lock()  # one frame written at a time
        self._waiters: dict[int, _Waiter] = {}
        self._ids = 0
        self._answers: threading.Thread | None = None
        self._on_dead = on_dead  # called (from the answer thread) once its pipe closes
        self.alive = True
        self.load = 0  # sessions bound here (guarded by the pool lock)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self._wfd = proc.stdin.fileno()
        self._reader = protocol.FrameReader(proc.stdout.fileno(), max_frame)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=200)
        self._drain = threading.Thread(target=self._drain_stderr, name=f"sandbox-worker-{wid}-stderr", daemon=True)
        self._drain.start()
        self.info: dict[str, Any] = {}

    def _drain_stderr(self) -> None:
        f = self.proc.stderr
        assert f is not None
        try:
            for raw in iter(f.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                self.stderr_tail.append(line)
                log.debug("sandbox worker %s: %s", self.wid, line)
        except (OSError, ValueError):
            pass

    def stderr_text(self, n: int = 30) -> str:
        return "\n".join(list(self.stderr_tail)[-n:])

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        try:
            msg = self._reader.read(timeout)
        except protocol.FrameTimeout:
            raise WorkerTimeout() from None
        except (protocol.FrameError, OSError) as e:
            raise WorkerDied(str(e)) from None
        if not (isinstance(msg, dict) and msg.get("ready")):
            raise WorkerDied(f"unexpected first frame: {msg!r}")
        self.info = msg
        self._read_child_pid()
        self._answers = threading.Thread(target=self._read_answers, name=f"sandbox-worker-{self.wid}-answers", daemon=True)
        self._answers.start()
        return msg

    def _read_answers(self) -> None:
        """Hand each answer to the thread waiting for its id; on EOF wake every waiter."""
        try:
            while True:
                resp = self._reader.read(None)
                if not isinstance(resp, dict):
                    break
                with self._wlock:
                    waiter = self._waiters.pop(resp.pop("id", None), None)
                if waiter is not None:
                    waiter.resp = resp
                    waiter.event.set()
        except (protocol.FrameError, OSError, ValueError):
            pass
        self.alive = False
        with self._wlock:
            waiters, self._waiters = list(self._waiters.values()), {}
        for waiter in waiters:
            waiter.event.set()
        if self._on_dead is not None:
            self._on_dead(self)

    def _read_child_pid(self) -> None:
        """bwrap wrote ``{"child-pid": N, ...}`` before starting the worker (--info-fd)."""
        if self._info_fd is None:
            return
        try:
            data = b""
            while select.select([self._info_fd], [], [], 1.0)[0]:
                chunk = os.read(self._info_fd, 4096)
                if not chunk:
                    break
                data += chunk
                if b"}" in data:
                    break
            pid = json.loads(data.decode()).get("child-pid")
            if isinstance(pid, int) and pid > 0:
                self.worker_pid = pid
        except (OSError, ValueError, AttributeError):
            pass  # keep bwrap's pid: killing it kills the worker too, only less promptly
        finally:
            os.close(self._info_fd)
            self._info_fd = None

    def request(self, msg: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        """Send one request and wait for its answer. Thread-safe; requests run concurrently."""
        if not self.alive:
            raise WorkerDied("worker is gone")
        waiter = _Waiter()
        with self._wlock:
            self._ids += 1
            rid = self._ids
            self._waiters[rid] = waiter
            try:
                protocol.write_frame(self._wfd, dict(msg, id=rid))
            except OSError as e:
                self._waiters.pop(rid, None)
                self.alive = False
                raise WorkerDied(str(e)) from None
        if not waiter.event.wait(timeout):
            with self._wlock:
                self._waiters.pop(rid, None)
            if waiter.resp is None:
                raise WorkerTimeout()
        if waiter.resp is None:
            raise WorkerDied("the worker closed its pipe")
        return waiter.resp

    def kill(self) -> None:
        """Mark dead and SIGKILL the worker. Safe without the lock: it touches no descriptor,
        so a thread blocked in :meth:`request` simply sees the pipe close."""
        self.alive = False
        # The worker first (it stops at once), but only while bwrap, which reaps it, is still
        # running: once bwrap is gone the worker's pid may already belong to another process.
        pids = [self.worker_pid, self.pid] if self.proc.poll() is None else []
        for pid in dict.fromkeys(pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def reap(self) -> None:
        """Wait for the process and close its pipes. Call with ``self.lock`` held (or when no
        other thread can use this handle): a descriptor closed under a reader could be reused."""
        self.kill()
        if self._info_fd is not None:
            os.close(self._info_fd)
            self._info_fd = None
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        self._drain.join(timeout=1.0)  # the pipe's write end died with the process
        if self._answers is not None and self._answers is not threading.current_thread():
            self._answers.join(timeout=1.0)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass

    def shutdown(self, timeout: float = 1.0) -> None:
        if self.alive:
            try:
                self.request({"op": "exit"}, timeout)
            except (WorkerDied, WorkerTimeout, OSError):
                pass
        self.kill()
        with self.lock:
            self.reap()
