"""The env's view of the sandbox: open a toolset session, call tools, read state.

One :class:`ToolExecutor` (one worker pool) is shared by every episode of a process; the
pool is started lazily, on the first episode that needs executable tools, so scoring-only
servers and single-turn suites never fork a worker. Ground-truth replays of stateful tasks
also run in the sandbox (backend code is still code) and are cached by the task's content (its
toolset, ground truth and category, see :func:`~toolgym.env.tools.bfcl_backends.replay_cache_key`):
backends are deterministic, and a task id alone says nothing about what an inline task holds.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from toolgym.env.parsers.pythonic import parse_python_calls
from toolgym.env.reward.multi_turn import GroundTruthReplay
from toolgym.env.sandbox import CallResult, SandboxConfig, WorkerPool
from toolgym.env.types import Task


#: Ground-truth replays kept per executor (least recently used go first).
MAX_CACHED_REPLAYS = 4096


def toolset_of(task: Task) -> tuple[str, dict[str, Any]] | None:
    """Which sandboxed toolset serves the task's calls, if any."""
    spec = task.metadata.get("toolset") if task.metadata else None
    if isinstance(spec, dict) and spec.get("kind"):
        return str(spec["kind"]), dict(spec.get("config") or {})
    if task.kind == "multi_turn":
        return "bfcl_multi_turn", {
            "involved_classes": list(task.involved_classes),
            "initial_config": task.initial_config,
            "long_context": "long_context" in task.category,
        }
    if any(t.name == "python" for t in task.tools):
        return "python", {}
    return None


class ToolSession:
    """One toolset instance living in a sandbox worker."""

    def __init__(self, pool: WorkerPool, session_id: str):
        self._pool = pool
        self.session_id = session_id

    def call(self, name: str, args: dict[str, Any], *, digest: bool = False, deadline: float | None = None) -> CallResult:
        if deadline is None:
            return self._pool.call(self.session_id, name, args, digest=digest)
        return self._pool.call(self.session_id, name, args, digest=digest, deadline=deadline)

    def names(self) -> list[str]:
        """Every tool name the toolset implements (offered or not: the episode decides)."""
        return self._pool.tool_names(self.session_id)

    def step_deadline(self) -> float | None:
        """The wall-time deadline for one step's calls, when the pool enforces a step budget."""
        deadline = getattr(self._pool, "step_deadline", None)
        return deadline() if callable(deadline) else None

    def state(self) -> dict[str, Any]:
        return self._pool.state(self.session_id)

    def close(self) -> None:
        self._pool.close_session(self.session_id)


class ToolExecutor:
    def __init__(self, config: SandboxConfig | None = None):
        self._config = config
        self._pool: WorkerPool | None = None
        self._lock = threading.Lock()
        # Bounded: every distinct inline task adds an entry, and clients choose how many they send.
        self._replays: OrderedDict[str, GroundTruthReplay] = OrderedDict()
        self._replays_lock = threading.Lock()  # server threads share the cache

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
        from toolgym.env.tools.bfcl_backends import replay_cache_key

        spec = toolset_of(task)
        if spec is None:
            raise ValueError(f"task {task.id!r} has no executable toolset to replay its ground truth on")
        # Keyed by content, not id: an inline task reusing a suite id (or two users' inline
        # tasks sharing one) must never change how another task is scored.
        key = replay_cache_key(task, toolset=spec)
        with self._replays_lock:
            cached = self._replays.get(key)
            if cached is not None:
                self._replays.move_to_end(key)
                return cached
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
        with self._replays_lock:
            self._replays[key] = replay
            while len(self._replays) > MAX_CACHED_REPLAYS:
                self._replays.popitem(last=False)
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
