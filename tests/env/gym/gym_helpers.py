"""Helpers to write ground-truth actions for env tests (no model involved)."""

from __future__ import annotations

import json

from toolgym.env.parsers import render_calls, render_final_answer
from toolgym.env.parsers.pythonic import parse_python_calls
from toolgym.env.types import ToolCall


def _render(calls: list[ToolCall], template: str) -> list[str]:
    """One action with all calls, or one action per call for single-call templates."""
    try:
        return [render_calls(calls, template)]
    except ValueError:
        return [render_calls([c], template) for c in calls]


def gt_single_turn_action(task, template: str = "hermes") -> str:
    calls = []
    for gt in task.ground_truth:
        name, params = next(iter(gt.items()))
        calls.append(ToolCall(name, {k: v[0] for k, v in params.items() if v and v[0] != ""}))
    return _render(calls, template)[0] if calls else render_final_answer("No tool fits this request.", template)


def gt_turn_actions(call_strings: list[str], tools=(), template: str = "hermes") -> list[str]:
    calls = [_named(c, tools) for s in call_strings for c in parse_python_calls(s, allow_positional=True)]
    return _render(calls, template) if calls else []


def _named(call: ToolCall, tools) -> ToolCall:
    # BFCL ground truth has a few positional calls (sort('a.txt')): name them from the tool's schema.
    spec = next((t for t in tools if t.name == call.name), None)
    if spec is None or not any(k.startswith("__arg") for k in call.arguments):
        return call
    names = list(spec.parameters.get("properties", {}))
    args = {(names[int(k[5:])] if k.startswith("__arg") else k): v for k, v in call.arguments.items()}
    return ToolCall(call.name, args)


def gt_turn_action(call_strings: list[str], tools=(), template: str = "hermes") -> str | None:
    """All ground-truth calls of one turn as one action (executed in order), or None if empty."""
    calls = [_named(c, tools) for s in call_strings for c in parse_python_calls(s, allow_positional=True)]
    if not calls:
        return None
    return "".join(f"<tool_call>{json.dumps({'name': c.name, 'arguments': c.arguments})}</tool_call>" for c in calls) if template == "hermes" else render_calls(calls, template)
