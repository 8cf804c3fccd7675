"""The Toolset protocol and the static registry of toolset kinds.

A *toolset* is the code that actually serves tool calls for one session: the ``python``
code tool, BFCL's stateful multi-turn backends, ... Toolsets only ever run **inside a
sandbox worker** (:mod:`toolgym.env.sandbox`); the server never instantiates one itself.

Contract (what a toolset must do):

- ``__init__(config, workspace)``: ``config`` is the JSON object from the session spec (it
  crossed a process boundary as JSON, so only JSON types); ``workspace`` is a private,
  initially empty directory the session may use for files. It persists for the session's
  life and is gone afterwards.
- ``call(name, args) -> str``: the result text shown to the model (JSON text for structured
  results). Raise :class:`ToolError` for a refusal / failure whose message the model should
  see as the observation. Any other exception is also reported as an error observation.
- ``state() -> dict``: a JSON-able snapshot of backend state, used by completion checks.
- ``names() -> list[str]``: the tool names it serves.
- **Deterministic**: the same ``(config, sequence of calls)`` must yield the same results and
  state. The sandbox relies on this: when a worker dies it rebuilds each session on a fresh
  worker by replaying its action log.

Optional extensions a toolset may have (the worker checks with ``hasattr``):

- ``call_limited(name, args, limits) -> dict``: used instead of ``call`` when present; gets
  the per-call limits (a :class:`~toolgym.env.sandbox.SandboxLimits` dict) and returns a
  CallResult dict (``ok``, ``output``, ``error``, ``timed_out``, ``truncated``). The ``python``
  toolset uses it to run each call in its own jail.
- ``isolated_calls = True``: calls enforce their own wall time (so the pool only backs it up
  instead of killing the worker at the limit).
- ``close()``: called when the session is closed.

Without them a toolset runs in the worker process itself: the worker applies the CPU and
memory limits around ``call`` and the pool the wall time; a call that hits one of them is
discarded together with the worker, and the session is rebuilt without it.

Registration is *static*: :data:`KINDS` maps each kind name to ``"module:Class"`` and
:func:`create` imports the module lazily on first use. The worker process knows the whole
map without importing every toolset. :func:`register` exists for the ``@register(kind)``
decorator style (and for tests in a single process), but a kind that only a decorator
registered is unknown to a freshly started worker unless the worker imports that module —
add new kinds to :data:`KINDS`.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, Callable, Protocol, runtime_checkable

__all__ = ["ToolError", "Toolset", "KINDS", "register", "create", "resolve", "known_kinds"]


class ToolError(Exception):
    """A tool refused or failed; its message is shown to the model as the observation."""


@runtime_checkable
class Toolset(Protocol):
    """What a toolset class provides (see the module docstring for the contract)."""

    def __init__(self, config: dict, workspace: str) -> None: ...

    def call(self, name: str, args: dict) -> str: ...

    def state(self) -> dict: ...

    def names(self) -> list[str]: ...


KINDS: dict[str, str] = {
    "python": "toolgym.env.tools.python_tool:PythonToolset",
    "bfcl_multi_turn": "toolgym.env.tools.bfcl_backends:BfclMultiTurnToolset",
}
"""Static map kind -> ``"module:Class"``; the single source of truth for workers."""

_classes: dict[str, type] = {}
_lock = threading.Lock()


def register(kind: str) -> Callable[[type], type]:
    """Class decorator: bind ``kind`` to the decorated Toolset class in this process.

    If ``kind`` is also in :data:`KINDS`, the class must be the one named there (so the
    decorator and the static map can never disagree).
    """

    def deco(cls: type) -> type:
        target = KINDS.get(kind)
        if target is not None:
            mod, _, name = target.partition(":")
            if (cls.__module__, cls.__qualname__) != (mod, name):
                raise ValueError(f"toolset kind {kind!r} is bound to {target} in KINDS, not {cls.__module__}:{cls.__qualname__}")
        with _lock:
            _classes[kind] = cls
        return cls

    return deco


def known_kinds() -> list[str]:
    """All kind names: the static map plus any registered in this process."""
    with _lock:
        return sorted(set(KINDS) | set(_classes))


def resolve(kind: str) -> type:
    """The Toolset class for ``kind``, importing its module if needed."""
    with _lock:
        cls = _classes.get(kind)
    if cls is not None:
        return cls
    target = KINDS.get(kind)
    if target is None:
        raise KeyError(f"unknown toolset kind {kind!r} (known: {', '.join(known_kinds())})")
    mod_name, _, cls_name = target.partition(":")
    module = importlib.import_module(mod_name)
    cls = getattr(module, cls_name)
    with _lock:
        _classes.setdefault(kind, cls)
    return cls


def create(kind: str, config: dict | None, workspace: str) -> Any:
    """Instantiate the toolset ``kind`` with ``config`` in ``workspace``."""
    return resolve(kind)(dict(config or {}), workspace)
