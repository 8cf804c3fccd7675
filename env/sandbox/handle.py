"""Host-side handle on one sandboxed worker process: request/answer over its pipes, kill."""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import threading
from typing import Any

from toolgym.env.sandbox import protocol

log = logging.getLogger("toolgym.env.sandbox.pool")


class WorkerDied(Exception):
    pass


class WorkerTimeout(Exception):
    pass


class WorkerHandle:
    """Host-side handle on one sandboxed worker process."""

    def __init__(self, proc: subprocess.Popen, wid: int, max_frame: int) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.wid = wid
        self.lock = threading.Lock()
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
        return msg

    def request(self, msg: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        """Send one request and wait for its answer. Caller holds ``self.lock``."""
        if not self.alive:
            raise WorkerDied("worker is gone")
        try:
            protocol.write_frame(self._wfd, msg)
            resp = self._reader.read(timeout)
        except protocol.FrameTimeout:
            raise WorkerTimeout() from None
        except (protocol.FrameError, OSError) as e:
            self.alive = False
            raise WorkerDied(str(e)) from None
        if not isinstance(resp, dict):
            self.alive = False
            raise WorkerDied(f"malformed answer {resp!r:.200}")
        return resp

    def kill(self) -> None:
        self.alive = False
        try:
            os.kill(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        self._drain.join(timeout=1.0)  # the pipe's write end died with the process
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass

    def shutdown(self, timeout: float = 1.0) -> None:
        if self.alive and self.lock.acquire(timeout=timeout):
            try:
                self.request({"op": "exit"}, timeout)
            except (WorkerDied, WorkerTimeout, OSError):
                pass
            finally:
                self.lock.release()
        self.kill()
