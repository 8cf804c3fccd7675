"""BFCL's stateful multi-turn backends as a toolgym toolset (kind ``bfcl_multi_turn``).

The backends are BFCL v4's own pure-Python classes (``bfcl_eval`` wheel,
``eval_checker/multi_turn_eval/func_source_code``): ``GorillaFileSystem``, ``MathAPI``,
``MessageAPI``, ``TwitterAPI`` (posting), ``TicketAPI``, ``TradingBot``, ``TravelAPI`` and
``VehicleControlAPI``. They run in memory only: nothing here touches the file system or the
network, so the toolset is safe in the sandbox's read-only worker.

Semantics follow BFCL's ``multi_turn_utils.execute_multi_turn_func_call`` without its
``eval``: a call is a name and keyword arguments (positional ones under ``"__arg0"``,
``"__arg1"``... as :func:`toolgym.env.parsers.pythonic.parse_python_calls` stores them),
dispatched with ``getattr`` to the involved class that serves that public method.

- Every involved class is instantiated once per toolset; a stateful one loads its part of
  ``initial_config`` with ``_load_scenario(deepcopy(config), long_context=...)``.
- A result is rendered as BFCL renders it: a ``str`` as is, a ``dict`` as ``json.dumps``
  (``str`` if that fails), anything else as ``str()``.
- An exception raised by a backend, an unknown tool and arguments that do not fit the
  method's signature raise :class:`~toolgym.env.tools.registry.ToolError` whose message is
  the text BFCL shows for a failed call, ``"Error during execution: <message>"``.
- :meth:`BfclMultiTurnToolset.state` is what BFCL's ``state_checker`` compares: per class,
  every public (non-``_``) instance attribute, as a type-keeping JSON image
  (:mod:`toolgym.env.tools.state_codec`) that compares like the live objects.

:func:`replay_ground_truth` drives a fresh toolset with a task's ground-truth calls and
records per-turn results and states for :func:`toolgym.env.reward.multi_turn.check_multi_turn`.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import inspect
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from toolgym.env.reward.multi_turn import GroundTruthReplay
from toolgym.env.tools import state_codec as _codec
from toolgym.env.tools.registry import ToolError
from toolgym.env.types import ToolCall

__all__ = [
    "BACKEND_MODULES",
    "ERROR_PREFIX",
    "BfclMultiTurnToolset",
    "GroundTruthReplay",
    "canonical_json",
    "parse_ground_truth_call",
    "render_result",
    "replay_cache_key",
    "replay_ground_truth",
    "to_jsonable",
]

_PREFIX = "bfcl_eval.eval_checker.multi_turn_eval.func_source_code"

#: The multi-turn backend classes and their modules (BFCL's ``CLASS_FILE_PATH_MAPPING``
#: without the web-search and memory classes, which toolgym leaves out).
BACKEND_MODULES: dict[str, str] = {
    "GorillaFileSystem": f"{_PREFIX}.gorilla_file_system",
    "MathAPI": f"{_PREFIX}.math_api",
    "MessageAPI": f"{_PREFIX}.message_api",
    "TwitterAPI": f"{_PREFIX}.posting_api",
    "TicketAPI": f"{_PREFIX}.ticket_api",
    "TradingBot": f"{_PREFIX}.trading_bot",
    "TravelAPI": f"{_PREFIX}.travel_booking",
    "VehicleControlAPI": f"{_PREFIX}.vehicle_control",
}

#: Classes BFCL never loads a scenario into (``STATELESS_CLASSES``).
STATELESS_CLASSES: frozenset[str] = frozenset({"MathAPI"})

#: The prefix BFCL puts before the message of a call that raised.
ERROR_PREFIX = "Error during execution: "

#: Names BFCL refuses to execute whatever class serves them (none of the backends has one).
_BLOCKED_NAMES = frozenset({"kill", "exit", "quit", "remove", "unlink", "popen", "Popen", "run"})

_POSITIONAL_KEY = re.compile(r"__arg(\d+)\Z")


# --------------------------------------------------------------------------- rendering


def render_result(result: Any) -> str:
    """A backend's return value as the text BFCL shows (``execute_multi_turn_func_call``)."""
    if type(result) is str:  # noqa: E721 - BFCL tests the exact type
        return result
    if type(result) is dict:  # noqa: E721
        try:
            return json.dumps(result)
        except Exception:  # BFCL falls back to str() for what json cannot encode
            return str(result)
    return str(result)


def to_jsonable(value: Any) -> Any:
    """A deterministic, type-keeping JSON image of a backend attribute.

    See :mod:`toolgym.env.tools.state_codec`: plain JSON stays as is; tuples, sets, dicts with
    non-``str`` keys (``TwitterAPI.tweets`` is keyed by ``int``), non-finite floats, the file
    system's ``File`` / ``Directory`` (what their ``__eq__`` compares: name and content /
    contents, never the ``parent`` back link) and other objects become ``{"__py__": ...}``
    records, so :func:`~toolgym.env.tools.state_codec.python_equal` on two images is BFCL's
    ``==`` on the originals (``2 == 2.0``, ``"2" != 2``).
    """
    return _codec.encode(value)


def canonical_json(value: Any) -> str:
    """Deterministic compact JSON text of a JSON-able value (e.g. a :meth:`state` snapshot)."""
    return _codec.canonical_json(value)


# --------------------------------------------------------------------------- toolset


def _load_class(class_name: str) -> type:
    module_name = BACKEND_MODULES.get(class_name)
    if module_name is None:
        raise ValueError(f"unknown BFCL backend class {class_name!r} (known: {', '.join(sorted(BACKEND_MODULES))})")
    return getattr(importlib.import_module(module_name), class_name)


def preload_backends() -> None:
    """Import every backend module and nothing more: no class is instantiated, no method runs.

    The sandbox calls this in its backend zygote, the clean process every session's process is
    forked from (:mod:`toolgym.env.sandbox.zygote`). The backends keep state at module, class
    and function-default level (``TwitterAPI.post_tweet``'s ``mentions=[]`` list, mutated by
    ``mention()``), so they must be imported there but never used there: each session then
    starts from exactly what a fresh process that imported them holds, and pays no import.
    """
    for class_name in BACKEND_MODULES:
        _load_class(class_name)


def _signature_text(name: str, sig: inspect.Signature) -> str:
    return f"{name}({', '.join(str(p) for p in sig.parameters.values())})"


class BfclMultiTurnToolset:
    """BFCL's multi-turn backends for one session (see the module docstring).

    ``config``: ``{"involved_classes": [...], "initial_config": {ClassName: {...}},
    "long_context": bool}`` (other keys are ignored). ``workspace`` is not used: the
    backends keep all their state in memory.
    """

    #: For the sandbox's backend zygote (see :func:`preload_backends`).
    preload = staticmethod(preload_backends)

    def __init__(self, config: dict, workspace: str = "") -> None:
        if not isinstance(config, Mapping):
            raise ValueError("config must be an object")
        involved = config.get("involved_classes")
        if not isinstance(involved, Sequence) or isinstance(involved, str) or not involved:
            raise ValueError("config.involved_classes must be a non-empty list of class names")
        initial_config = config.get("initial_config")
        if initial_config is None:
            initial_config = {}
        if not isinstance(initial_config, Mapping):
            raise ValueError("config.initial_config must be an object")
        self.workspace = workspace
        self.long_context = bool(config.get("long_context", False))
        self.involved_classes: tuple[str, ...] = tuple(dict.fromkeys(str(c) for c in involved))
        self._instances: dict[str, Any] = {}
        self._methods: dict[str, Any] = {}
        self._signatures: dict[str, inspect.Signature] = {}
        for class_name in self.involved_classes:
            instance = _load_class(class_name)()
            if class_name not in STATELESS_CLASSES:
                class_config = initial_config.get(class_name, {})
                if not isinstance(class_config, Mapping):
                    raise ValueError(f"config.initial_config.{class_name} must be an object")
                instance._load_scenario(copy.deepcopy(class_config), long_context=self.long_context)
            # Some backends alias module-level data into the instance (e.g. TravelAPI's
            # long-context credit cards); one deepcopy of the whole __dict__ makes the
            # instance own its state while keeping internal aliases (the file system's
            # current directory inside its tree).
            instance.__dict__.update(copy.deepcopy(instance.__dict__))
            self._instances[class_name] = instance
            for method_name, method in inspect.getmembers(instance, predicate=inspect.ismethod):
                if method_name.startswith("_") or method_name in _BLOCKED_NAMES:
                    continue
                # As in BFCL, a later class wins a name two classes share (none do).
                self._methods[method_name] = method

    # -- protocol ---------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._methods)

    def call(self, name: str, args: dict) -> str:
        """Execute one call; the rendered result, or :class:`ToolError` with BFCL's error text."""
        method = self._methods.get(name) if isinstance(name, str) else None
        if method is None:
            raise ToolError(f"{ERROR_PREFIX}no such tool {name!r}")
        positional, keywords = self._split_args(name, args)
        sig = self._signature(name)
        try:
            sig.bind(*positional, **keywords)
        except TypeError as e:
            raise ToolError(f"{ERROR_PREFIX}bad arguments for {_signature_text(name, sig)}: {e}") from None
        # The backend may keep an argument in its state: give it its own copy.
        positional = copy.deepcopy(positional)
        keywords = copy.deepcopy(keywords)
        try:
            result = method(*positional, **keywords)
        except Exception as e:  # every backend failure is an observation for the model
            raise ToolError(f"{ERROR_PREFIX}{e}") from e
        return render_result(result)

    def state(self) -> dict:
        """Per involved class, its public attributes as :func:`to_jsonable` images (sorted)."""
        out: dict[str, Any] = {}
        for class_name in sorted(self._instances):
            attrs = vars(self._instances[class_name])
            out[class_name] = {k: to_jsonable(attrs[k]) for k in sorted(attrs) if not k.startswith("_")}
        return out

    def fingerprint(self) -> str:
        """A hash of every instance attribute, private ones included.

        :meth:`state` holds only what BFCL's state check compares; whether a call *changed*
        anything (the redundant-call rule) must also see private state such as the file
        system's current directory, or ``cd('..')`` between two identical calls would go unseen.
        """
        out: dict[str, Any] = {}
        for class_name in sorted(self._instances):
            attrs = vars(self._instances[class_name])
            out[class_name] = {k: to_jsonable(attrs[k]) for k in sorted(attrs)}
        return hashlib.blake2b(canonical_json(out).encode(), digest_size=16).hexdigest()

    # -- helpers ----------------------------------------------------------------------

    def execute(self, name: str, args: dict) -> str:
        """Like :meth:`call` but a failure comes back as its error text (what BFCL records)."""
        try:
            return self.call(name, args)
        except ToolError as e:
            return str(e)

    def owner(self, name: str) -> str | None:
        """The involved class that serves tool ``name`` (None if none does)."""
        method = self._methods.get(name)
        return type(method.__self__).__name__ if method is not None else None

    def signature(self, name: str) -> str:
        """``name(param: type, ...)`` of a served tool (``KeyError`` if not served)."""
        if name not in self._methods:
            raise KeyError(name)
        return _signature_text(name, self._signature(name))

    def _signature(self, name: str) -> inspect.Signature:
        sig = self._signatures.get(name)
        if sig is None:
            sig = self._signatures[name] = inspect.signature(self._methods[name])
        return sig

    def _split_args(self, name: str, args: Any) -> tuple[list[Any], dict[str, Any]]:
        """Positional (``__argN``) and keyword arguments of a call."""
        if args is None:
            return [], {}
        if not isinstance(args, Mapping):
            raise ToolError(f"{ERROR_PREFIX}arguments of {name} must be an object, not {type(args).__name__}")
        indexed: dict[int, Any] = {}
        keywords: dict[str, Any] = {}
        for key, value in args.items():
            if not isinstance(key, str):
                raise ToolError(f"{ERROR_PREFIX}argument names of {name} must be strings, not {key!r}")
            m = _POSITIONAL_KEY.match(key)
            if m:
                indexed[int(m.group(1))] = value
            else:
                keywords[key] = value
        if sorted(indexed) != list(range(len(indexed))):
            given = ", ".join(f"__arg{i}" for i in sorted(indexed))
            raise ToolError(f"{ERROR_PREFIX}bad arguments for {name}: positional arguments must be __arg0, __arg1, ... without gaps, got {given}")
        return [indexed[i] for i in range(len(indexed))], keywords


# --------------------------------------------------------------------------- ground truth


def parse_ground_truth_call(text: str) -> ToolCall:
    """One BFCL ground-truth call string (``"cd(folder='document')"``) as a :class:`ToolCall`.

    Parsed, never evaluated; positional arguments stay under ``"__arg0"``... .
    """
    from toolgym.env.parsers.pythonic import parse_python_calls

    calls = parse_python_calls(text, allow_positional=True)
    if len(calls) != 1:
        raise ValueError(f"ground-truth entry {text!r} holds {len(calls)} calls, expected 1")
    return calls[0]


def _field(task: Any, name: str, default: Any = None) -> Any:
    if isinstance(task, Mapping):
        return task.get(name, default)
    return getattr(task, name, default)


def _is_long_context(task: Any) -> bool:
    explicit = _field(task, "long_context")
    if explicit is None:
        metadata = _field(task, "metadata") or {}
        explicit = metadata.get("long_context") if isinstance(metadata, Mapping) else None
    if explicit is not None:
        return bool(explicit)
    # BFCL's rule: the category (the id without its trailing number) names it.
    category = str(_field(task, "id", "") or "").rsplit("_", 1)[0]
    return "long_context" in category or "composite" in category


def _toolset_config(task: Any) -> dict[str, Any]:
    return {
        "involved_classes": list(_field(task, "involved_classes") or ()),
        "initial_config": _field(task, "initial_config") or {},
        "long_context": _is_long_context(task),
    }


def replay_cache_key(task: Any, toolset: tuple[str, Mapping[str, Any]] | None = None) -> str:
    """A digest of everything a ground-truth replay depends on, never the task id alone.

    ``toolset``: the ``(kind, config)`` the replay runs on (the env's
    :func:`~toolgym.env.executor.toolset_of`); default: this module's toolset for the task's
    ``involved_classes`` / ``initial_config`` / long-context flag. The ground truth (each turn's
    call strings) and the category (which decides long-context loading) are hashed with it, so
    two tasks share a replay exactly when replaying them must give the same result, whatever
    their ids say.
    """
    kind, config = toolset if toolset is not None else ("bfcl_multi_turn", _toolset_config(task))
    turns = _field(task, "ground_truth") or ()
    payload = {
        "toolset": [str(kind), _codec.encode(config)],
        "ground_truth": [[c if isinstance(c, str) else repr(c) for c in (t if not isinstance(t, str) else [t])] for t in turns],
        "category": str(_field(task, "category", "") or ""),
        "long_context": _is_long_context(task),
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def replay_ground_truth(task: Any) -> GroundTruthReplay:
    """Execute a stateful task's ground truth on a fresh toolset, turn by turn.

    ``task``: a BFCL entry merged with its possible answer, or anything with the same
    fields: ``id``, ``involved_classes``, ``initial_config``, ``ground_truth`` (one list of
    call strings per user turn; :class:`~toolgym.env.types.Task` qualifies) and optionally
    ``long_context`` (else taken from ``metadata["long_context"]``, else BFCL's rule: the
    id's category contains ``long_context`` or ``composite``). Deterministic.
    """
    turns = _field(task, "ground_truth")
    if turns is None:
        raise ValueError("task has no ground_truth")
    toolset = BfclMultiTurnToolset(_toolset_config(task), workspace="")
    initial_state = toolset.state()
    turn_calls: list[tuple[ToolCall, ...]] = []
    turn_results: list[tuple[str, ...]] = []
    turn_states: list[dict[str, Any]] = []
    for turn in turns:
        if isinstance(turn, str):
            raise ValueError("ground_truth must hold one list of call strings per turn")
        calls = tuple(c if isinstance(c, ToolCall) else parse_ground_truth_call(c) for c in turn)
        turn_calls.append(calls)
        turn_results.append(tuple(toolset.execute(c.name, c.arguments) for c in calls))
        turn_states.append(toolset.state())
    return GroundTruthReplay(
        task_id=str(_field(task, "id", "") or ""),
        turn_calls=tuple(turn_calls),
        turn_results=tuple(turn_results),
        turn_states=tuple(turn_states),
        initial_state=initial_state,
        long_context=_is_long_context(task),
    )
