"""The worker side of the pool: starting, replacing and choosing sandboxed worker processes.

:class:`WorkerSet` keeps ``config.workers`` live :class:`~toolgym.env.sandbox.handle.WorkerHandle`
objects: it starts them in parallel, discards a worker that died (or was killed) and starts a
replacement, and hands out the least-loaded live worker, starting one (or waiting for one being
started) when none is alive. It knows nothing of sessions; :class:`~toolgym.env.sandbox.pool.WorkerPool`
builds on it and shares its lock, which also guards the pool's session table and worker loads.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from toolgym.env.sandbox import bwrap
from toolgym.env.sandbox.config import SandboxConfig, SandboxError, SandboxUnavailable
from toolgym.env.sandbox.handle import WorkerDied, WorkerHandle, WorkerTimeout

# The logger of the module this was split from, so log configuration and filters keep working.
log = logging.getLogger("toolgym.env.sandbox.pool")


class WorkerSet:
    """Live sandboxed workers and their replacement; the base of ``WorkerPool`` (module docstring)."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._plan = bwrap.plan_worker(self.config)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a worker was added or a spawn ended
        self._spawning = 0  # workers being started right now (count toward the target)
        self._workers: list[WorkerHandle] = []
        self._next_wid = 0
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")
        self._closed = False
        self._stats = collections.Counter()

    # ------------------------------------------------------------------ workers
    def start(self) -> None:
        """Start the configured number of workers (in parallel); raise if none comes up."""
        with self._lock:
            missing = self.config.workers - len([w for w in self._workers if w.alive])
        if missing <= 0:
            return
        threads = [threading.Thread(target=self._add_worker_safe) for _ in range(missing)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with self._lock:
            alive = [w for w in self._workers if w.alive]
        if not alive:
            err = self._last_start_error or "unknown error"
            raise SandboxUnavailable(f"could not start a sandbox worker: {err}\n{bwrap.INSTALL_HINT}")

    _last_start_error: str | None = None

    def _add_worker_safe(self) -> None:
        try:
            self._reserve_spawn(force=True)
            self._add_worker()
        except SandboxError as e:
            self._last_start_error = str(e)
            log.error("sandbox worker failed to start: %s", e)

    def _reserve_spawn(self, force: bool = False) -> bool:
        """Count a spawn toward the target, if the target is not met yet (or ``force``)."""
        with self._lock:
            if not force and len(self._workers) + self._spawning >= self.config.workers:
                return False
            self._spawning += 1
            return True

    def _add_worker(self) -> WorkerHandle:
        """Start one worker; the caller reserved it with :meth:`_reserve_spawn`."""
        try:
            return self._start_worker()
        finally:
            with self._lock:
                self._spawning -= 1
                self._changed.notify_all()

    def _start_worker(self) -> WorkerHandle:
        if self._closed:
            raise SandboxError("the pool is closed")
        with self._lock:
            wid = self._next_wid
            self._next_wid += 1
        # Popen from one long-lived thread: bwrap's --die-with-parent is a parent-death signal,
        # which Linux sends when the *thread* that forked it exits.
        proc, info_fd = self._spawner.submit(bwrap.spawn, self._plan).result()
        w = WorkerHandle(proc, wid, self.config.max_frame_bytes, info_fd, on_dead=self._on_dead)
        try:
            w.wait_ready(self.config.start_timeout_s)
        except (WorkerDied, WorkerTimeout) as e:
            w.reap()  # not shared yet
            detail = w.stderr_text() or str(e) or type(e).__name__
            raise SandboxUnavailable(f"worker did not start: {detail}") from None
        with self._lock:
            if self._closed:
                w.reap()
                raise SandboxError("the pool is closed")
            self._workers.append(w)
            self._stats["workers_started"] += 1
            self._changed.notify_all()
        return w

    def _on_dead(self, w: WorkerHandle) -> None:
        """A worker's pipe closed (it died, or was killed): replace it now, not when next used."""
        if not self._closed:
            threading.Thread(target=self._worker_died, args=(w, "its pipe closed"), name="sandbox-reaper", daemon=True).start()

    def _worker_died(self, w: WorkerHandle, reason: str) -> None:
        """Discard ``w`` and start a replacement. Sessions on it rebuild when next used.

        Other threads may be inside requests on ``w``: the kill makes them fail (their answer
        reader sees the pipe close), then the pipes are closed under ``w.lock``.
        """
        w.kill()
        with self._lock:
            if w not in self._workers:
                return  # another thread got here first
            self._workers.remove(w)
            self._stats["worker_deaths"] += 1
            closed = self._closed
        with w.lock:
            w.reap()
        log.warning("sandbox worker %s (pid %s) discarded: %s %s", w.wid, w.pid, reason, w.stderr_text(5))
        if not closed and self._reserve_spawn():
            # In the background: the caller (and every other session) goes on with the live
            # workers meanwhile; _pick_worker waits for it only when none is left.
            threading.Thread(target=self._replace, name="sandbox-replace", daemon=True).start()

    def _replace(self) -> None:
        try:
            self._add_worker()
            with self._lock:
                self._stats["restarts"] += 1
        except Exception as e:  # noqa: BLE001 - a background thread: report, never a bare traceback
            with self._lock:
                closed = self._closed
            if not closed:  # a pool closing (or an interpreter exiting) under the spawn is not an error
                log.error("could not replace sandbox worker: %s: %s", type(e).__name__, e)

    def _pick_worker(self) -> WorkerHandle:
        """The least-loaded live worker; if none, start one (or wait for one being started)."""
        deadline = time.monotonic() + self.config.start_timeout_s
        while True:
            with self._lock:
                if self._closed:
                    raise SandboxError("the pool is closed")
                alive = [w for w in self._workers if w.alive]
                if alive:
                    w = min(alive, key=lambda w: (w.load, w.wid))
                    w.load += 1
                    return w
                if self._spawning:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise SandboxUnavailable("no sandbox worker became available in time")
                    self._changed.wait(left)
                    continue
                self._spawning += 1  # nothing alive, nothing coming: start one here
            self._add_worker()

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[key] += n
