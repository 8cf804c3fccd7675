"""JSONL task records ↔ :class:`~toolgym.env.types.Task`: toolgym-format and BFCL-format dicts.

:func:`task_from_dict` checks a whole toolgym-format record (unknown fields, ``kind`` inference,
the rules that tie fields together) with the per-field checkers of
:mod:`toolgym.env.tasks.jsonl_fields`; :func:`task_from_bfcl_record` does the same for a BFCL
record; :func:`task_to_dict` writes the canonical dict back. Errors carry no file location;
:mod:`toolgym.env.tasks.jsonl` (the public entry point, with the format's documentation) adds it.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

from toolgym.env.tasks import bfcl as _bfcl
from toolgym.env.tasks.jsonl_fields import (
    BFCL_FIELDS,
    KINDS,
    TASK_FIELDS,
    TaskFormatError,
    _answer,
    _ast_ground_truth,
    _check_call_names,
    _err,
    _fail,
    _jtype,
    _missed,
    _multi_turn_ground_truth,
    _numbers,
    _obj,
    _reward_names,
    _show,
    _str,
    _str_list,
    _tools,
    _turns,
)
from toolgym.env.types import Task, ToolSpec


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
    """Parse one toolgym-format task (see :mod:`toolgym.env.tasks.jsonl`); raises :class:`TaskFormatError`.

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
