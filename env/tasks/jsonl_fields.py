"""Fields of a JSONL task record: the error type, the field names, one checker per field.

:class:`TaskFormatError` and the message helpers (``_fail``: "field 'x': expected ..., got
<type> <value>"; ``_err``: "field 'x': <message>") are the single source of every error text of
the format; the checkers (``_turns``, ``_tools``, ``_answer``, ``_missed``, the ground-truth
shapes ...) each validate one field of a record and return it normalised, raising without a
location. Assembling whole records is :mod:`toolgym.env.tasks.jsonl_records`; files and line
numbers are :mod:`toolgym.env.tasks.jsonl`, which documents the format and re-exports the public
names.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, get_args

from toolgym.env.types import AnswerCheck, TaskKind, ToolSpec

KINDS: tuple[str, ...] = get_args(TaskKind)
ANSWER_MODES: tuple[str, ...] = ("exact", "contains", "regex", "numeric")
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
TASK_FIELDS: tuple[str, ...] = (
    "id",
    "kind",
    "turns",
    "question",
    "tools",
    "ground_truth",
    "optimal_steps",
    "answer",
    "weights",
    "penalties",
    "category",
    "language",
    "involved_classes",
    "initial_config",
    "missed_function",
    "metadata",
)
BFCL_FIELDS: tuple[str, ...] = (
    "id",
    "category",
    "language",
    "question",
    "function",
    "ground_truth",
    "initial_config",
    "involved_classes",
    "path",
    "missed_function",
    "excluded_function",
)


class TaskFormatError(ValueError):
    """A malformed task. ``path``/``line`` locate it (``None`` when parsing a bare dict)."""

    def __init__(self, path: str | os.PathLike[str] | None, line: int | None, message: str, field: str | None = None):
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.message = message
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path is not None and self.line is not None:
            return f"{self.path}:{self.line}: {self.message}"
        if self.path is not None:
            return f"{self.path}: {self.message}"
        if self.line is not None:
            return f"line {self.line}: {self.message}"
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.line, self.message, self.field))


# Public as ``toolgym.env.tasks.jsonl.TaskFormatError``: keep that name in tracebacks, reprs and
# pickles, exactly as before the module was split.
TaskFormatError.__module__ = "toolgym.env.tasks.jsonl"


# ---------------------------------------------------------------------------------------------
# helpers


def _show(value: Any, limit: int = 80) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jtype(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _fail(field: str, expected: str, got: Any) -> TaskFormatError:
    return TaskFormatError(None, None, f"field '{field}': expected {expected}, got {_jtype(got)} {_show(got)}", field)


def _err(field: str, message: str) -> TaskFormatError:
    return TaskFormatError(None, None, f"field '{field}': {message}", field)


def _str(d: Mapping[str, Any], key: str, default: str | None = None, *, nonempty: bool = False) -> str:
    if key not in d or d[key] is None:
        if default is None:
            raise TaskFormatError(None, None, f"missing required field '{key}'", key)
        return default
    v = d[key]
    if not isinstance(v, str) or (nonempty and not v):
        raise _fail(key, "a non-empty string" if nonempty else "a string", v)
    return v


def _str_list(value: Any, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise _fail(field, "a list of strings", value)
    return tuple(value)


def _obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(field, "an object", value)
    return value


def _turns(d: Mapping[str, Any]) -> tuple[tuple[dict[str, str], ...], ...]:
    key = "turns" if "turns" in d else "question" if "question" in d else None
    if key is None:
        raise TaskFormatError(
            None, None, "missing required field 'turns' (a list of turns, or 'question' as in BFCL)", "turns"
        )
    raw = d[key]
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise _fail(key, "a list of turns (each a list of {role, content} messages) or a string", raw)
    turns = []
    for i, turn in enumerate(raw):
        if isinstance(turn, str):
            turns.append(({"role": "user", "content": turn},))
            continue
        if isinstance(turn, dict):
            turn = [turn]
        if not isinstance(turn, list):
            raise _fail(f"{key}[{i}]", "a list of {role, content} messages or a string", turn)
        msgs = []
        for j, m in enumerate(turn):
            where = f"{key}[{i}][{j}]"
            if not isinstance(m, dict):
                raise _fail(where, 'a message object {"role": ..., "content": ...}', m)
            role = m.get("role")
            if role not in ROLES:
                raise _fail(f"{where}.role", f"one of {', '.join(ROLES)}", role)
            if not isinstance(m.get("content"), str):
                raise _fail(f"{where}.content", "a string", m.get("content"))
            msgs.append(dict(m))
        turns.append(tuple(msgs))
    return tuple(turns)


def _tool(raw: Any, field: str) -> ToolSpec:
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("function"), dict):
        raw = raw["function"]  # OpenAI wrapper
    if not isinstance(raw, dict):
        raise _fail(field, 'a tool object {"name", "description", "parameters"}', raw)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(f"{field}.name", "a non-empty string", name)
    desc = raw.get("description", "")
    if desc is None:
        desc = ""
    if not isinstance(desc, str):
        raise _fail(f"{field}.description", "a string", desc)
    params = raw.get("parameters")
    if params is None:
        params = {"type": "object", "properties": {}}
    if not isinstance(params, dict):
        raise _fail(f"{field}.parameters", "a JSON Schema object", params)
    if params.get("type", "object") != "object":
        raise _fail(
            f"{field}.parameters.type",
            '"object" (a JSON Schema object; BFCL "dict" schemas belong in BFCL-format lines)',
            params.get("type"),
        )
    if "properties" in params and not isinstance(params["properties"], dict):
        raise _fail(f"{field}.parameters.properties", "an object of parameter schemas", params["properties"])
    if "required" in params and not (
        isinstance(params["required"], list) and all(isinstance(x, str) for x in params["required"])
    ):
        raise _fail(f"{field}.parameters.required", "a list of parameter names", params["required"])
    return ToolSpec(name=name, description=desc, parameters=params)


def _tools(value: Any, field: str = "tools") -> tuple[ToolSpec, ...]:
    if not isinstance(value, list):
        raise _fail(field, "a list of tools", value)
    tools = tuple(_tool(t, f"{field}[{i}]") for i, t in enumerate(value))
    seen: set[str] = set()
    for i, t in enumerate(tools):
        if t.name in seen:
            raise _err(f"{field}[{i}].name", f"duplicate tool name {t.name!r}")
        seen.add(t.name)
    return tools


def _ast_ground_truth(value: Any, tools: Iterable[ToolSpec], field: str = "ground_truth") -> tuple[Any, ...]:
    shape = '{"function_name": {"param": [allowed values...]}}'
    if not isinstance(value, list) or not value:
        raise _fail(field, f"a non-empty list of expected calls, each {shape}", value)
    names = {t.name for t in tools}
    for i, call in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(call, dict) or len(call) != 1:
            raise _fail(where, f"an object with exactly one function name, {shape}", call)
        ((fname, params),) = call.items()
        if names and fname not in names:
            raise _err(where, f"calls {fname!r}, which is not among the task's tools ({', '.join(sorted(names))})")
        if not isinstance(params, dict):
            raise _fail(f"{where}.{fname}", "an object of param -> [allowed values]", params)
        for p, allowed in params.items():
            if not isinstance(allowed, list):
                raise _fail(f"{where}.{fname}.{p}", f"a list of allowed values (e.g. [{_show(allowed, 30)}])", allowed)
    return tuple(value)


def _multi_turn_ground_truth(value: Any, n_turns: int, field: str = "ground_truth") -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise _fail(field, "a list with one list of call strings per turn", value)
    for i, turn in enumerate(value):
        if not isinstance(turn, list) or not all(isinstance(c, str) for c in turn):
            raise _fail(f"{field}[{i}]", "a list of call strings such as \"cd(folder='docs')\"", turn)
    if value and len(value) != n_turns:
        raise _err(
            field, f"has {len(value)} turns of calls but the task has {n_turns} turns (expected one list per turn)"
        )
    return tuple(list(turn) for turn in value)


_CALL_NAME = re.compile(r"\s*([A-Za-z_][\w.]*)\s*\(")


def _check_call_names(ground_truth: tuple[Any, ...], tools: Iterable[ToolSpec], field: str = "ground_truth") -> None:
    """Each multi-turn call string must look like ``name(...)`` with ``name`` among the tools."""
    names = {t.name for t in tools}
    for i, turn in enumerate(ground_truth):
        for j, call in enumerate(turn):
            m = _CALL_NAME.match(call)
            if m is None or not call.rstrip().endswith(")"):
                raise _fail(f"{field}[{i}][{j}]", "a call string such as \"cd(folder='docs')\"", call)
            if names and m.group(1) not in names:
                raise _err(f"{field}[{i}][{j}]", f"calls {m.group(1)!r}, which is not among the task's tools")


def _numbers(value: Any, field: str, known: tuple[str, ...] | None) -> dict[str, float]:
    obj = _obj(value, field)
    out: dict[str, float] = {}
    for k, v in obj.items():
        if known is not None and k not in known:
            close = difflib.get_close_matches(k, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _err(f"{field}.{k}", f"unknown name{hint}; expected one of {', '.join(known)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _fail(f"{field}.{k}", "a finite number", v)
        out[k] = float(v)
    return out


def _reward_names() -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    try:  # imported lazily: the reward layer may import tasks
        from toolgym.env.reward.config import COMPONENTS, PENALTIES
    except Exception:  # pragma: no cover - reward layer absent
        return None, None
    return tuple(COMPONENTS), tuple(PENALTIES)


def _answer(value: Any) -> AnswerCheck:
    obj = _obj(value, "answer")
    for k in obj:
        if k not in ("mode", "expected", "tolerance"):
            raise _err(f"answer.{k}", "unknown field; expected mode, expected, tolerance")
    mode = obj.get("mode", "exact")
    if mode not in ANSWER_MODES:
        raise _fail("answer.mode", f"one of {', '.join(ANSWER_MODES)}", mode)
    expected = obj.get("expected")
    if isinstance(expected, str):
        expected = [expected]
    if not isinstance(expected, list) or not expected or not all(isinstance(x, str) for x in expected):
        raise _fail("answer.expected", "a string or a non-empty list of strings", obj.get("expected"))
    if mode == "numeric":
        for i, x in enumerate(expected):
            try:
                float(x)
            except ValueError:
                raise _fail(f"answer.expected[{i}]", "a number written as a string (mode numeric)", x) from None
    if mode == "regex":
        for i, x in enumerate(expected):
            try:
                re.compile(x)
            except re.error as exc:
                raise _err(f"answer.expected[{i}]", f"invalid regular expression {x!r}: {exc}") from None
    tol = obj.get("tolerance", 1e-6)
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0 or not math.isfinite(tol):
        raise _fail("answer.tolerance", "a finite number >= 0", tol)
    return AnswerCheck(mode=mode, expected=tuple(expected), tolerance=float(tol))


def _missed(value: Any, tools: tuple[ToolSpec, ...], n_turns: int) -> dict[str, tuple[str, ...]]:
    obj = _obj(value, "missed_function")
    names = {t.name for t in tools}
    out: dict[str, tuple[str, ...]] = {}
    for k, v in obj.items():
        where = f"missed_function.{k}"
        try:
            idx = int(k)
        except ValueError:
            raise _err(where, f'the key must be a turn index such as "3", got {k!r}') from None
        if not 0 <= idx < max(n_turns, 1):
            raise _err(where, f"turn index {idx} is out of range (the task has {n_turns} turns)")
        fns = _str_list(v, where)
        for f in fns:
            if f not in names:
                raise _err(where, f"{f!r} is not among the task's tools")
        out[str(idx)] = fns
    return out
