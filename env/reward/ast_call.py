"""One model call against one ground-truth entry of the BFCL AST matcher.

:func:`_prepare` reads BFCL's ground truth (``[{name: {param: [allowed values...]}}, ...]``) and
looks each entry's tool schema up by name (raising ``ValueError`` for a malformed ground truth or
a name the task does not offer). :func:`_score_pair` then applies the per-call rules (required
parameters present, no unexpected parameters, omission only where ``""`` is allowed, each given
value accepted by :func:`~toolgym.env.reward.ast_values._check_value`) and counts the accepted
parameters for partial credit; :func:`_value_error` words a failed value check.

This is the layer between the value checks (:mod:`toolgym.env.reward.ast_values`) and the pairing
of many calls with many ground-truth entries (:mod:`toolgym.env.reward.ast_match`, whose docstring
lists the rules and the deliberate differences from BFCL): it knows about one call and one
expected call, never about counts or order.

Nothing here is global and mutable; no deep copies are made; values are never modified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from toolgym.env.reward.ast_values import (
    _MISSING,
    _NESTED_TYPE,
    _TYPE,
    _bfcl_type,
    _check_value,
    _contains_empty,
    _r,
)
from toolgym.env.types import ToolCall, ToolSpec


# ------------------------------------------------------------------------------------ one pair


def _score_pair(
    args: dict | None, gt: Mapping, props: Mapping, required: Sequence, errors: list[str] | None = None
) -> tuple[bool, int]:
    """(passes BFCL's per-call check, number of ground-truth params accepted).

    With ``errors`` given, the reasons for each failure are appended to it (messages are only
    built on failures, so passing pairs cost nothing extra).
    """
    if args is None:
        if errors is not None:
            errors.append("arguments are not an object")
        return False, 0
    ok = True
    acc = 0
    present = 0  # given params that the ground truth lists
    for r in required:
        if r not in args:
            ok = False
            if errors is None:
                break
            errors.append(f"missing required parameter {r!r}")
    for k, v in args.items():
        allowed = gt.get(k, _MISSING)
        node = props.get(k, _MISSING)
        if allowed is _MISSING or node is _MISSING:
            ok = False
            if errors is not None:
                why = "not in the tool's schema" if node is _MISSING else "the expected call does not set it"
                errors.append(f"unexpected parameter {k!r} ({why})")
            if allowed is not _MISSING:
                present += 1
            continue
        present += 1
        code = _check_value(v, allowed, node)
        if not code:
            acc += 1
            continue
        ok = False
        if errors is not None:
            errors.append(_value_error(k, v, allowed, node, code))
    if len(gt) > present:  # some ground-truth params were not given
        for k, allowed in gt.items():
            if k not in args:
                if _contains_empty(allowed) and k not in required:
                    acc += 1
                else:
                    ok = False
                    if errors is not None and k not in required:
                        errors.append(f"parameter {k!r} is missing (expected {_r(allowed)}; it may not be omitted)")
    return ok, acc


def _value_error(k: str, v: Any, allowed: Any, node: Any, code: int) -> str:
    t = _bfcl_type(node, v)
    if code == _TYPE:
        return f"parameter {k!r}: expected type {t}, got {type(v).__name__} {_r(v)}"
    if code == _NESTED_TYPE:
        items = node.get("items") if type(node) is dict else None
        return f"parameter {k!r}: the elements of {_r(v)} must have type {_bfcl_type(items, None)}"
    how = " (compared case-insensitively, ignoring ' ,./-_*^')" if type(v) is str else ""
    return f"parameter {k!r}: got {_r(v)}, expected one of {_r(allowed)}{how}"


# ------------------------------------------------------------------------------------ ground truth

_Expected = tuple  # (name, gt params, schema properties, schema required)


def _prepare(possible_answers: Sequence, tools: Sequence[ToolSpec]) -> tuple[list[_Expected], int]:
    specs: dict[str, ToolSpec] | None = None
    exp: list[_Expected] = []
    n_params = 0
    for j, ans in enumerate(possible_answers):
        if (type(ans) is not dict and not isinstance(ans, Mapping)) or len(ans) != 1:
            raise ValueError(f"ground truth #{j} must be a one-key mapping {{name: {{param: [values]}}}}, got {_r(ans)}")
        ((gt_name, gt_params),) = ans.items()
        if type(gt_params) is not dict and not isinstance(gt_params, Mapping):
            raise ValueError(f"ground truth #{j} ({gt_name}) parameters must be a mapping, got {_r(gt_params)}")
        if len(possible_answers) == 1:
            spec = next((t for t in tools if t.name == gt_name), None)
        else:
            if specs is None:
                specs = {}
                for t in tools:
                    specs.setdefault(t.name, t)  # BFCL's find_description takes the first
            spec = specs.get(gt_name)
        if spec is None:
            raise ValueError(f"ground truth #{j} calls {gt_name!r}, which is not among the task's tools")
        params = spec.parameters
        if type(params) is not dict:
            params = params if isinstance(params, Mapping) else {}
        props = params.get("properties")
        if type(props) is not dict:
            props = props if isinstance(props, Mapping) else {}
        required = params.get("required") or ()
        if type(required) is str:
            required = (required,)
        exp.append((gt_name, gt_params, props, required))
        n_params += len(gt_params)
    return exp, n_params


def _args_of(call: ToolCall) -> dict | None:
    a = call.arguments
    if type(a) is dict:
        return a
    return dict(a) if isinstance(a, Mapping) else None
