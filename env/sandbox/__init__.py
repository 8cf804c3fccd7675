"""The sandbox: the only place where tool calls and model-written code run.

- :class:`WorkerPool` keeps long-lived worker processes, each inside bubblewrap (no network,
  no host filesystem beyond read-only Python and toolgym, a non-root uid, a private pid
  namespace). Sessions (a toolset instance plus a private workspace) live in workers; a
  worker that dies is replaced and its sessions are rebuilt by replaying their action logs.
- Code tools run each call in a fresh jail forked from the worker's zygote: own user, mount,
  pid and ipc namespaces, only the session's workspace visible, rlimits, all capabilities
  dropped (see :mod:`toolgym.env.sandbox.jail`).
- :class:`SandboxLimits`: per-call limits; :class:`CallResult`: the answer to one call.

Names are imported lazily so that the worker process (which imports
``toolgym.env.sandbox.worker``) does not load the host-side pool machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["CallResult", "SandboxConfig", "SandboxError", "SandboxLimits", "SandboxUnavailable", "SessionError", "WorkerPool"]

if TYPE_CHECKING:  # pragma: no cover
    from toolgym.env.sandbox.config import CallResult, SandboxConfig, SandboxError, SandboxLimits, SandboxUnavailable, SessionError
    from toolgym.env.sandbox.pool import WorkerPool


def __getattr__(name: str) -> Any:
    if name == "WorkerPool":
        from toolgym.env.sandbox.pool import WorkerPool

        return WorkerPool
    if name in __all__:
        from toolgym.env.sandbox import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
