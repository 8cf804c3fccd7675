"""The env's view of the sandbox: open a toolset session, call tools, read state.

One :class:`ToolExecutor` (one worker pool) is shared by every episode of a process; the
pool is started lazily, on the first episode that needs executable tools, so scoring-only
servers and single-turn suites never fork a worker. Ground-truth replays of stateful tasks
also run in the sandbox (backend code is still code) and are cached per task: backends are
deterministic.
"""

from __future__ import annotations

import threading
from typing import Any

from toolgym.env.parsers.pythonic import parse_python_calls
from toolgym.env.reward.multi_turn import GroundTruthReplay
from toolgym.env.sandbox import CallResult, SandboxConfig, WorkerPool
from toolgym.env.types import Task


class ToolSession:
    """One toolset instance living in a sandbox worker."""

    def __init__(self, pool: WorkerPool, session_id: str):
        self._pool = pool
        self.session_id = session_id

    def call(self, name: str, args: dict[str, Any], *, digest: bool = False) -> CallResult:
        return self._pool.call(self.session_id, name, args, digest=digest)

    def state(self) -> dict[str, Any]:
        return self._pool.state(self.session_id)

    def close(self) -> None:
        self._pool.close_session(self.session_id)


class ToolExecutor:
    def __init__(self, config: SandboxConfig | None = None):
        self._config = config
        self._pool: WorkerPool | None = None
        self._lock = threading.Lock()
        self._replays: dict[str, GroundTruthReplay] = {}

    @property
    def pool(self) -> WorkerPool:
        with self._lock:
            if self._pool is None:
                self._pool = WorkerPool(self._config or SandboxConfig())
            return self._pool

    def open(self, kind: str, config: dict[str, Any]) -> ToolSession:
        return ToolSession(self.pool, self.pool.open_session(kind, config))

    def ground_truth(self, task: Task) -> GroundTruthReplay:
        """Execute the task's ground-truth calls turn by turn in a fresh sandbox session."""
        cached = self._replays.get(task.id)
        if cached is not None:
            return cached
        from toolgym.env.episode import toolset_of

        spec = toolset_of(task)
        if spec is None:
            raise ValueError(f"task {task.id!r} has no executable toolset to replay its ground truth on")
        session = self.open(*spec)
        try:
            initial = session.state()
            calls_per_turn, results_per_turn, states = [], [], []
            for turn in task.ground_truth:
                calls = tuple(c for s in (turn or ()) for c in parse_python_calls(s, allow_positional=True))
                results = []
                for call in calls:
                    r = session.call(call.name, call.arguments)
                    results.append(r.output if r.ok else (r.error or "error"))
                calls_per_turn.append(calls)
                results_per_turn.append(tuple(results))
                states.append(session.state())
        finally:
            session.close()
        replay = GroundTruthReplay(
            task_id=task.id,
            turn_calls=tuple(calls_per_turn),
            turn_results=tuple(results_per_turn),
            turn_states=tuple(states),
            initial_state=initial,
            long_context="long_context" in task.category,
        )
        self._replays[task.id] = replay
        return replay

    def stats(self) -> dict[str, Any]:
        return self._pool.stats() if self._pool is not None else {"workers_alive": 0, "sessions": 0}

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


_shared: ToolExecutor | None = None
_shared_lock = threading.Lock()


def shared_executor() -> ToolExecutor:
    """The process-wide executor used by in-process envs (one worker pool per process)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ToolExecutor()
        return _shared
