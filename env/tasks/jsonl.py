"""toolgym's JSONL task format: bring your own tasks and tools.

A task file holds one JSON object per line (UTF-8). Blank lines are skipped; ids must be unique
within a file. Errors name the file, the line, the field, what came and what was expected, e.g.
``tasks.jsonl:3: field 'answer.mode': expected one of exact, contains, regex, numeric, got string "fuzzy"``.

Fields
------

====================  =======================  ===============================================
field                 type                     meaning
====================  =======================  ===============================================
``id``                string, required         unique task id
``kind``              string                   ``ast`` | ``irrelevance`` | ``relevance`` |
                                               ``multi_turn`` | ``final_answer`` (inferred
                                               when absent, see below)
``turns``             list of turns, required  each turn a list of messages ``{"role":
                                               "system"|"user"|"assistant"|"tool", "content":
                                               "..."}``; a turn may be a plain string (one
                                               user message) and the whole field a string (one
                                               turn); ``question`` is accepted as BFCL's name
``tools``             list of tools            ``{"name", "description", "parameters"}``,
                                               ``parameters`` a JSON Schema object; OpenAI's
                                               ``{"type": "function", "function": {...}}``
                                               wrapper is accepted; names are unique
``ground_truth``      list                     ``ast``: BFCL possible answers, one object per
                                               expected call, ``{"fn": {"param": [allowed
                                               values...]}}`` (``""`` among the allowed values
                                               marks an optional parameter); ``multi_turn``:
                                               one list of call strings per turn, e.g.
                                               ``[["cd(folder='docs')"], []]``, each calling
                                               one of ``tools``; other kinds: empty
``optimal_steps``     integer >= 1             best number of steps; default 1, for
                                               ``multi_turn`` the number of ground-truth calls
``answer``            object                   ``final_answer`` check: ``{"mode": "exact" |
                                               "contains" | "regex" | "numeric", "expected":
                                               "42" or ["42", "forty-two"], "tolerance":
                                               1e-6}``
``weights``           object name → number     per-task reward weight overrides
``penalties``         object name → number     per-task penalty overrides (usually negative)
``category``          string                   free label (used by suite filters)
``language``          string                   ``python`` (default), ``java``, ``javascript``
``involved_classes``  list of strings          ``multi_turn``: backend classes (e.g.
                                               ``GorillaFileSystem``); when ``tools`` is
                                               omitted the BFCL docs of these classes are used
                                               (minus ``metadata.excluded_function``)
``initial_config``    object                   ``multi_turn``: class name → initial state
``missed_function``   object turn → names      ``multi_turn``: tools withheld until that turn
                                               (``{"3": ["sort"]}``); each must be in
                                               ``tools``
``metadata``          object                   anything else you want carried along
====================  =======================  ===============================================

Unknown fields are an error (with a "did you mean" hint); put extras under ``metadata``.

``kind`` inference when absent: ``answer`` present → ``final_answer``; otherwise from
``category`` (contains ``irrelevance`` → ``irrelevance``, ``relevance`` → ``relevance``,
``multi_turn`` → ``multi_turn``); otherwise ``involved_classes`` present → ``multi_turn``;
otherwise a non-empty ``ground_truth`` → ``ast``; otherwise it is an error.

BFCL-format lines
-----------------

A line with no ``kind``, ``tools`` or ``turns`` but a BFCL ``function`` list (or, for
multi-turn, ``involved_classes``) is read as a BFCL record — the format of
``toolgym score --tasks``: ``id``, ``category`` (default: derived from the id the way BFCL does,
``live_simple_3-2-0`` → ``live_simple``), ``question``, ``function`` (BFCL types: ``dict``,
``float``, ``tuple``, ``any`` ... mapped to JSON Schema) and ``ground_truth`` (BFCL possible
answers; multi-turn: call strings per turn, plus ``initial_config``, ``involved_classes``,
``path``, ``missed_function``, ``excluded_function``; ``tools`` then come from the BFCL docs of
those classes). The kind comes from the category as above; other fields (``source``,
``num_hops`` ...) are kept in ``metadata``. Both kinds of lines may be mixed in one file. A BFCL
record's tools keep their BFCL type names as ``x-bfcl-type``, so :func:`task_to_dict` writes
them back losslessly.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, get_args

from toolgym.env.tasks import bfcl as _bfcl
from toolgym.env.types import AnswerCheck, Task, TaskKind, ToolSpec

__all__ = [
    "TASK_FIELDS",
    "TaskFormatError",
    "dump_jsonl",
    "is_bfcl_record",
    "load_jsonl",
    "parse_line",
    "task_from_bfcl_record",
    "task_from_dict",
    "task_to_dict",
]

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


def _infer_kind(d: Mapping[str, Any]) -> str:
    if d.get("answer") is not None:
        return "final_answer"
    category = d.get("category")
    if isinstance(category, str) and category:
        k = _bfcl.kind_for_category(category)
        if k != "ast":
            return k
    if d.get("involved_classes"):
        return "multi_turn"
    if d.get("ground_truth"):
        return "ast"
    raise TaskFormatError(
        None, None, f"missing field 'kind' and it cannot be inferred; expected one of {', '.join(KINDS)}", "kind"
    )


# ---------------------------------------------------------------------------------------------
# public API


def is_bfcl_record(d: Mapping[str, Any]) -> bool:
    """True for a BFCL-format line (no ``kind``/``tools``; a ``function`` list or multi-turn fields)."""
    if "kind" in d or "tools" in d or "turns" in d:
        return False
    return "function" in d or ("involved_classes" in d and "question" in d)


def task_from_dict(d: Mapping[str, Any]) -> Task:
    """Parse one toolgym-format task (see the module docstring); raises :class:`TaskFormatError`.

    BFCL-format records are handed to :func:`task_from_bfcl_record`.
    """
    if not isinstance(d, Mapping):
        raise TaskFormatError(None, None, f"expected a task object, got {_jtype(d)} {_show(d)}")
    if is_bfcl_record(d):
        return task_from_bfcl_record(d)
    for k in d:
        if k not in TASK_FIELDS:
            close = difflib.get_close_matches(k, TASK_FIELDS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise _err(
                k, f"unknown field ({hint}extra data belongs under 'metadata'); known fields: {', '.join(TASK_FIELDS)}"
            )
    if "turns" in d and "question" in d:
        raise _err("question", "give either 'turns' or 'question' (BFCL's name), not both")

    task_id = _str(d, "id", nonempty=True)
    kind = d["kind"] if "kind" in d else _infer_kind(d)
    if kind not in KINDS:
        raise _fail("kind", f"one of {', '.join(KINDS)}", kind)
    turns = _turns(d)
    if not turns:
        raise _err("turns", "must hold at least one turn")
    category = _str(d, "category", "")
    language = _str(d, "language", "python", nonempty=True)

    involved: tuple[str, ...] = ()
    if d.get("involved_classes") is not None:
        involved = _str_list(d["involved_classes"], "involved_classes")
    metadata = _obj(d["metadata"], "metadata") if d.get("metadata") is not None else {}

    if d.get("tools") is not None:
        tools = _tools(d["tools"])
    elif kind == "multi_turn" and involved:
        try:
            tools = _bfcl.multi_turn_tools(involved, metadata.get("excluded_function") or ())
        except (ValueError, ModuleNotFoundError) as exc:
            raise _err("tools", f"omitted, and the docs of involved_classes could not be used: {exc}") from None
    else:
        tools = ()

    gt_raw = d.get("ground_truth")
    if gt_raw is None:
        gt_raw = []
    if kind == "ast":
        if not tools:
            raise _err("tools", "an 'ast' task needs at least one tool")
        ground_truth = _ast_ground_truth(gt_raw, tools)
    elif kind == "multi_turn":
        if not involved:
            raise _err(
                "involved_classes", "a 'multi_turn' task needs its backend classes (a non-empty list of strings)"
            )
        ground_truth = _multi_turn_ground_truth(gt_raw, len(turns))
        _check_call_names(ground_truth, tools)
    else:
        if gt_raw not in ([], ()):
            raise _fail("ground_truth", f"an empty list (or no field) for kind {kind!r}", gt_raw)
        ground_truth = ()

    answer = _answer(d["answer"]) if d.get("answer") is not None else None
    if kind == "final_answer" and answer is None:
        raise _err("answer", "a 'final_answer' task needs an answer check {mode, expected, tolerance}")

    if d.get("optimal_steps") is not None:
        steps = d["optimal_steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise _fail("optimal_steps", "an integer >= 1", steps)
    elif kind == "multi_turn":
        steps = max(1, sum(len(t) for t in ground_truth))
    else:
        steps = 1

    comp_names, pen_names = _reward_names()
    weights = _numbers(d["weights"], "weights", comp_names) if d.get("weights") is not None else {}
    penalties = _numbers(d["penalties"], "penalties", pen_names) if d.get("penalties") is not None else {}
    initial_config = _obj(d["initial_config"], "initial_config") if d.get("initial_config") is not None else {}
    missed = _missed(d["missed_function"], tools, len(turns)) if d.get("missed_function") is not None else {}

    return Task(
        id=task_id,
        kind=kind,
        turns=turns,
        tools=tools,
        category=category,
        ground_truth=ground_truth,
        optimal_steps=steps,
        answer=answer,
        weights=weights,
        penalties=penalties,
        language=language,
        involved_classes=involved,
        initial_config=dict(initial_config),
        missed_function=missed,
        metadata=dict(metadata),
    )


def task_to_dict(t: Task) -> dict[str, Any]:
    """The canonical toolgym-format dict of a task; ``task_from_dict(task_to_dict(t)) == t``.

    Fields at their defaults are left out (except ``id``, ``kind``, ``turns``, ``tools`` and
    ``optimal_steps``).
    """
    d: dict[str, Any] = {
        "id": t.id,
        "kind": t.kind,
        "turns": [[dict(m) for m in turn] for turn in t.turns],
        "tools": [s.to_dict() for s in t.tools],
    }
    if t.category:
        d["category"] = t.category
    if t.ground_truth:
        d["ground_truth"] = [list(x) if isinstance(x, tuple) else x for x in t.ground_truth]
    d["optimal_steps"] = t.optimal_steps
    if t.answer is not None:
        d["answer"] = {"mode": t.answer.mode, "expected": list(t.answer.expected), "tolerance": t.answer.tolerance}
    if t.weights:
        d["weights"] = dict(t.weights)
    if t.penalties:
        d["penalties"] = dict(t.penalties)
    if t.language != "python":
        d["language"] = t.language
    if t.involved_classes:
        d["involved_classes"] = list(t.involved_classes)
    if t.initial_config:
        d["initial_config"] = t.initial_config
    if t.missed_function:
        d["missed_function"] = {k: list(v) for k, v in t.missed_function.items()}
    if t.metadata:
        d["metadata"] = t.metadata
    return d


def task_from_bfcl_record(d: Mapping[str, Any]) -> Task:
    """Parse one BFCL-format record (questions + ``function`` + possible-answer ``ground_truth``).

    The kind is inferred from the category (``irrelevance`` / ``relevance`` / ``multi_turn`` in
    the name, else ``ast``); parameters are mapped from BFCL types to JSON Schema. Fields BFCL
    records may carry beyond the known ones (``source``, ``num_hops``, ...) are kept in
    ``metadata``.
    """
    if not isinstance(d, Mapping):
        raise TaskFormatError(None, None, f"expected a BFCL record object, got {_jtype(d)} {_show(d)}")
    task = _bfcl_record(d)
    extras = {k: v for k, v in d.items() if k not in BFCL_FIELDS}
    if extras:
        task = dataclasses.replace(task, metadata={**task.metadata, **extras})
    return task


def _bfcl_record(d: Mapping[str, Any]) -> Task:
    task_id = _str(d, "id", nonempty=True)
    category = _str(d, "category", "") or _bfcl.category_from_id(task_id)
    kind = _bfcl.kind_for_category(category)
    if "involved_classes" in d and "function" not in d:
        kind = "multi_turn"
    language = _str(d, "language", "", nonempty=False) or _bfcl.category_language(category)
    turns_raw = d.get("question")
    if not isinstance(turns_raw, list) or not turns_raw:
        raise _fail("question", "a non-empty list of turns, each a list of {role, content} messages", turns_raw)
    turns = _turns(d)  # validates messages

    functions = d.get("function")
    if kind != "multi_turn" or functions is not None:
        if not isinstance(functions, list):
            raise _fail("function", "a list of BFCL function docs {name, description, parameters}", functions)
        for i, f in enumerate(functions):
            if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not f["name"]:
                raise _fail(f"function[{i}]", "a function doc with a non-empty 'name'", f)
            params = f.get("parameters")
            if params is not None and not isinstance(params, dict):
                raise _fail(
                    f"function[{i}].parameters", "a BFCL parameters object {type: dict, properties, required}", params
                )

    gt = d.get("ground_truth")
    if gt is None:
        gt = []
    record = dict(d)
    record["category"] = category
    if kind == "multi_turn":
        involved = (
            _str_list(d.get("involved_classes"), "involved_classes") if d.get("involved_classes") is not None else ()
        )
        if not involved:
            raise _err("involved_classes", "a multi-turn BFCL record needs its backend classes")
        if d.get("excluded_function") is not None:
            _str_list(d["excluded_function"], "excluded_function")
        if d.get("initial_config") is not None:
            _obj(d["initial_config"], "initial_config")
        gt_t = _multi_turn_ground_truth(gt, len(turns))
        try:
            task = _bfcl.build_task(record, list(gt_t), category=category, language=language)
        except (ValueError, ModuleNotFoundError) as exc:
            raise _err("involved_classes", str(exc)) from None
        _check_call_names(task.ground_truth, task.tools)
        if d.get("missed_function") is not None:
            _missed(d["missed_function"], task.tools, len(turns))
        return task
    if kind == "ast":
        tool_names = [f["name"] for f in functions]  # type: ignore[union-attr]
        _ast_ground_truth(gt, [ToolSpec(name=n) for n in tool_names])
    elif gt not in ([], ()):
        raise _fail("ground_truth", f"an empty list (or no field) for category {category!r} (kind {kind})", gt)
    try:
        return _bfcl.build_task(record, gt, category=category, language=language)
    except (KeyError, TypeError, ValueError) as exc:
        raise _err("function", f"could not be converted: {exc}") from None


def parse_line(text: str, *, path: str | os.PathLike[str] | None = None, line: int | None = None) -> Task:
    """Parse one JSONL line (toolgym or BFCL format), errors located at ``path:line``."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskFormatError(path, line, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(d, dict):
        raise TaskFormatError(path, line, f"expected a JSON object (one task per line), got {_jtype(d)} {_show(d, 40)}")
    try:
        return task_from_dict(d)
    except TaskFormatError as exc:
        raise TaskFormatError(path, line, exc.message, exc.field) from None


def load_jsonl(path: str | os.PathLike[str]) -> list[Task]:
    """Load a JSONL task file (toolgym and/or BFCL-format lines); raises :class:`TaskFormatError`."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError as exc:
        raise TaskFormatError(path, None, f"not UTF-8 text: {exc}") from None
    tasks: list[Task] = []
    first_line: dict[str, int] = {}
    for n, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        if n == 1 and text.lstrip().startswith("[") and len(lines) > 1:
            stripped = text.strip()
            if stripped == "[" or not stripped.endswith("]"):
                raise TaskFormatError(
                    path, n, "expected one JSON object per line (JSONL), this looks like a JSON array spanning lines"
                )
        task = parse_line(text, path=path, line=n)
        if task.id in first_line:
            raise TaskFormatError(path, n, f"duplicate id {task.id!r} (first on line {first_line[task.id]})", "id")
        first_line[task.id] = n
        tasks.append(task)
    return tasks


def dump_jsonl(tasks: Iterable[Task], path: str | os.PathLike[str]) -> None:
    """Write tasks as toolgym JSONL (one canonical :func:`task_to_dict` per line), atomically."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for t in tasks:
                try:
                    line = json.dumps(task_to_dict(t), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"task {t.id!r} is not JSON-serialisable: {exc}") from None
                fh.write(line)
                fh.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
