"""Shared helpers of the AST matcher tests (``test_ast_values.py``, ``test_ast_call.py``,
``test_ast_match.py``): schema nodes and tools as toolgym's BFCL loader writes them, the
triangle-area task, and :func:`one`, which scores a single-parameter call and, when BFCL's checker
is importable, checks that BFCL agrees. Imported by name (``tests/env/reward/conftest.py`` puts this
folder on ``sys.path``); not a test module."""

from __future__ import annotations

import sys

from toolgym.env.reward.ast_match import AstVerdict, match_calls
from toolgym.env.types import ToolCall, ToolSpec

_JSON = {"dict": "object", "float": "number", "tuple": "array", "any": None}


def node(bfcl_type: str | None, **extra) -> dict:
    """A schema node as toolgym's BFCL loader writes it: JSON Schema type + original x-bfcl-type."""
    out = dict(extra)
    if bfcl_type is not None:
        jt = _JSON.get(bfcl_type, bfcl_type)
        if jt is not None:
            out["type"] = jt
        out["x-bfcl-type"] = bfcl_type
    return out


def tool(name: str, props: dict, required=()) -> ToolSpec:
    return ToolSpec(name, "", {"type": "object", "x-bfcl-type": "dict", "properties": props, "required": list(required)})


def call(name: str, **args) -> ToolCall:
    return ToolCall(name, args)


TRI = tool(
    "calculate_triangle_area",
    {"base": node("integer"), "height": node("integer"), "unit": node("string")},
    ["base", "height"],
)
TRI_GT = [{"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}}]


def ok(calls, gt, tools, **kw) -> bool:
    return match_calls(calls, gt, tools, **kw).ok


def _to_bfcl(n: dict) -> dict:
    """Back from a toolgym schema node to BFCL's format (for the oracle)."""
    out = {k: v for k, v in n.items() if k not in ("type", "x-bfcl-type")}
    if "x-bfcl-type" in n:
        out["type"] = n["x-bfcl-type"]
    if isinstance(out.get("items"), dict):
        out["items"] = _to_bfcl(out["items"])
    return out


def one(value, bfcl_type, allowed, **node_extra) -> AstVerdict:
    """A single-parameter call: is ``value`` accepted for a param of ``bfcl_type`` with ``allowed``?

    When BFCL's checker is importable, its verdict on the same input must agree (inputs where it
    raises are not compared).
    """
    n = node(bfcl_type, **node_extra)
    t = tool("f", {"p": n}, ["p"])
    v = match_calls([call("f", p=value)], [{"f": {"p": allowed}}], [t])
    bo = oracle()
    if bo is not None:
        funcs = [{"name": "f", "parameters": {"type": "dict", "properties": {"p": _to_bfcl(n)}, "required": ["p"]}}]
        try:
            r = bo.oracle_verdict(bo.load_oracle(), funcs, [("f", {"p": value})], [{"f": {"p": allowed}}], "simple_python")
        except Exception:  # BFCL raises on some inputs (no items, unknown type, int overflow)
            r = None
        if r is not None:
            assert v.ok == r["valid"], (value, bfcl_type, allowed, v, r)
    return v


def oracle():
    import importlib.util
    from pathlib import Path

    if importlib.util.find_spec("bfcl_eval") is None:
        return None
    name = "toolgym_tests_bfcl_oracle"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("bfcl_oracle.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]
