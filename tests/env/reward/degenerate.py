"""Degenerate and honest policies for reward-ordering tests (issue 10 item 7, issue 11 item 6).

A *policy* turns a task into what a model would write. Single-turn policies return one output text
(hermes template) that :func:`toolgym.env.reward.engine.score_output` scores in process; multi-turn
policies return the model's actions per user turn, which :func:`play_multi_turn` plays through the
real in-process env (sandboxed BFCL backends), ending each turn with a plain-text action.

The policies, and where a trainer needs them to rank:

================== =============================================================================
ground truth       ``gt``: the ground truth's calls (first allowed values; the SFT builder's calls)
                   (multi-turn ``gt_plus_hallucinated`` adds its one stray call in the first turn)
honest partial     ``subset``: the ground truth minus its last call (multi-call tasks / turns);
                   ``one_wrong_value``: the ground truth with one needed argument given a wrong value
doing nothing      ``empty``, ``refusal``
degenerate         ``every_tool`` (every offered tool, placeholder args), ``empty_args`` (the right
                   tools with ``{}``), ``dummy_args`` (the right tools, placeholder values),
                   ``gt_repeat`` (the ground truth 3×), ``gt_plus_hallucinated``, ``fenced`` (the
                   ground truth inside prose and a code fence)
hallucinating      ``hallucinated``: a call to a tool that does not exist
================== =============================================================================

Nothing here mocks a component: the parser, the reward engine and (multi-turn) the sandbox are real.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from toolgym.env.parsers import render_calls
from toolgym.env.reward.config import COMPONENTS
from toolgym.env.types import Task, ToolCall, ToolSpec
from toolgym.trainer.data import ast_ground_truth_calls, multi_turn_ground_truth_calls

TEMPLATE = "hermes"
HALLUCINATED = ToolCall(name="nonexistent_tool_xyz", arguments={"q": "anything"})
REFUSAL = "I'm sorry, but I cannot help with that."

_PLACEHOLDER = {"string": "dummy", "integer": 0, "number": 0.0, "boolean": False, "array": [], "object": {}}


def placeholder(node: Any) -> Any:
    """A type-correct value that carries no information (what a lazy policy writes)."""
    if not isinstance(node, dict):
        return "dummy"
    if node.get("enum"):
        return node["enum"][0]
    t = node.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    return _PLACEHOLDER.get(t, "dummy")


def _schema(task: Task, name: str) -> dict[str, Any]:
    return next((t.parameters for t in task.tools if t.name == name), {}) or {}


def dummy_call(task: Task, call: ToolCall) -> ToolCall:
    """``call``'s tool with every argument it gives (and every required one) set to a placeholder."""
    schema = _schema(task, call.name)
    props = schema.get("properties") or {}
    names = list(dict.fromkeys([*call.arguments, *(schema.get("required") or ())]))
    return ToolCall(call.name, {k: placeholder(props.get(k)) for k in names})


def tool_dummy_call(tool: ToolSpec) -> ToolCall:
    props = (tool.parameters or {}).get("properties") or {}
    return ToolCall(tool.name, {k: placeholder(props.get(k)) for k in (tool.parameters or {}).get("required") or ()})


def wrong_value(v: Any) -> Any:
    """A value of the same type as ``v`` that no ground truth here allows."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 7919
    if isinstance(v, float):
        return v + 7919.5
    if isinstance(v, str):
        return v + " zzq"
    if isinstance(v, list):
        return [*v, "zzq"] if v else ["zzq"]
    if isinstance(v, dict):
        return {**v, "zzq": "zzq"}
    return "zzq"


def one_wrong(calls: Sequence[ToolCall]) -> list[ToolCall] | None:
    """The calls with the first call's first argument changed (None when no call has arguments)."""
    out = list(calls)
    for i, c in enumerate(out):
        if c.arguments:
            k = next(iter(c.arguments))
            out[i] = ToolCall(c.name, {**c.arguments, k: wrong_value(c.arguments[k])})
            return out
    return None


def _text(calls: Sequence[ToolCall]) -> str:
    return render_calls(list(calls), TEMPLATE) if calls else ""


# ------------------------------------------------------------------------------ single turn

SinglePolicy = Callable[[Task], "str | None"]


def single_turn_policies() -> dict[str, SinglePolicy]:
    """name → policy(task) → output text, or None where the policy does not apply to the task."""

    def gt(t: Task) -> str:
        return _text(ast_ground_truth_calls(t))

    def subset(t: Task) -> str | None:
        calls = ast_ground_truth_calls(t)
        return _text(calls[:-1]) if len(calls) > 1 else None

    def one_wrong_value(t: Task) -> str | None:
        calls = one_wrong(ast_ground_truth_calls(t))
        return _text(calls) if calls is not None else None

    def every_tool(t: Task) -> str:
        return _text([tool_dummy_call(x) for x in t.tools])

    def empty_args(t: Task) -> str:
        return _text([ToolCall(c.name, {}) for c in ast_ground_truth_calls(t)])

    def dummy_args(t: Task) -> str:
        return _text([dummy_call(t, c) for c in ast_ground_truth_calls(t)])

    def gt_repeat(t: Task) -> str:
        return _text(ast_ground_truth_calls(t) * 3)

    def gt_plus_hallucinated(t: Task) -> str:
        return _text([*ast_ground_truth_calls(t), HALLUCINATED])

    def fenced(t: Task) -> str:
        return "Sure, here is what I will do:\n```\n" + gt(t) + "\n```\nLet me know if you need anything else."

    return {
        "gt": gt,
        "subset": subset,
        "one_wrong_value": one_wrong_value,
        "empty": lambda t: "",
        "refusal": lambda t: REFUSAL,
        "every_tool": every_tool,
        "empty_args": empty_args,
        "dummy_args": dummy_args,
        "gt_repeat": gt_repeat,
        "gt_plus_hallucinated": gt_plus_hallucinated,
        "fenced": fenced,
        "hallucinated": lambda t: _text([HALLUCINATED]),
    }


#: Policies that apply to tasks where no call is wanted (irrelevance): there the ground truth is
#: silence, so "doing nothing" is the right answer and every call is the degenerate move.
IRRELEVANCE_POLICIES = ("empty", "refusal", "every_tool", "hallucinated")


# ------------------------------------------------------------------------------ multi turn

MultiPolicy = Callable[[Task], "list[list[ToolCall]]"]


def multi_turn_policies() -> dict[str, MultiPolicy]:
    """name → policy(task) → the calls the model makes in each user turn (one action per turn)."""

    def gt(t: Task) -> list[list[ToolCall]]:
        return [list(c) for c in multi_turn_ground_truth_calls(t)]

    return {
        "gt": gt,
        "subset": lambda t: [c[:-1] for c in gt(t)],
        "one_wrong_value": lambda t: [one_wrong(c) or c for c in gt(t)],
        "empty": lambda t: [[] for _ in t.turns],
        "dummy_args": lambda t: [[dummy_call(t, x) for x in c] for c in gt(t)],
        "empty_args": lambda t: [[ToolCall(x.name, {}) for x in c] for c in gt(t)],
        "gt_repeat": lambda t: [[x for x in c for _ in range(2)] for c in gt(t)],
        # one stray call in the episode (in its first turn), as in the single-turn policy
        "gt_plus_hallucinated": lambda t: [[*c, HALLUCINATED] if i == 0 else c for i, c in enumerate(gt(t))],
        "hallucinated": lambda t: [[HALLUCINATED] for _ in t.turns],
    }


def play_multi_turn(env: Any, task: Task, turns: Sequence[Sequence[ToolCall]]) -> dict[str, Any]:
    """Play one episode on the in-process env: each turn's calls in one action, then a plain-text
    action that ends the user's turn. Returns the terminal step's info (total, components, ...)."""
    env.reset(options={"task_id": task.id, "template": TEMPLATE})
    info: dict[str, Any] = {}
    for turn in range(len(task.turns)):
        calls = turns[turn] if turn < len(turns) else ()
        if calls:
            _, _, term, trunc, info = env.step(render_calls(list(calls), TEMPLATE))
            if term or trunc:
                return info
        _, _, term, trunc, info = env.step("Done.")
        if term or trunc:
            return info
    raise AssertionError(f"{task.id}: the episode did not end after its {len(task.turns)} turns")


def summary_row(scores: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Mean total and components of a list of score dicts."""
    n = max(1, len(scores))
    row = {"total": sum(s["total"] for s in scores) / n}
    for k in COMPONENTS:
        row[k] = sum(s["components"][k] for s in scores) / n
    return row


def dumps_table(table: dict[str, dict[str, float]], policies: Sequence[str]) -> str:
    """A markdown table of mean totals: one row per policy, one column per category."""
    cats = list(table)
    lines = ["| policy | " + " | ".join(cats) + " |", "|---" * (len(cats) + 1) + "|"]
    for p in policies:
        cells = [f"{table[c][p]:.2f}" if p in table[c] else "—" for c in cats]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = [
    "HALLUCINATED", "IRRELEVANCE_POLICIES", "REFUSAL", "TEMPLATE", "dummy_call", "dumps_table",
    "multi_turn_policies", "one_wrong", "placeholder", "play_multi_turn", "single_turn_policies", "summary_row",
]


# ------------------------------------------------------------------------------ tables

SINGLE_TURN_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple", "live_multiple",
                          "live_parallel", "live_parallel_multiple", "irrelevance", "live_irrelevance", "live_relevance")
MULTI_TURN_CATEGORIES = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context")


def single_turn_scores(suite: Any, n: int) -> dict[str, dict[str, list[tuple[Task, dict[str, Any]]]]]:
    """category → policy → [(task, score dict)] over the first ``n`` tasks of each category."""
    from toolgym.env.reward.engine import score_output

    pol = single_turn_policies()
    out: dict[str, dict[str, list[tuple[Task, dict[str, Any]]]]] = {}
    for cat in SINGLE_TURN_CATEGORIES:
        tasks = sorted((t for t in suite if t.category == cat), key=lambda t: _order(t.id))[:n]
        out[cat] = {}
        for name, p in pol.items():
            if tasks and tasks[0].kind != "ast" and name not in IRRELEVANCE_POLICIES:
                continue
            rows = []
            for t in tasks:
                text = p(t)
                if text is not None:
                    rows.append((t, score_output(t, text, TEMPLATE).to_dict()))
            if rows:
                out[cat][name] = rows
    return out


def multi_turn_scores(suite: Any, n: int, categories: Sequence[str] = MULTI_TURN_CATEGORIES) -> dict[str, dict[str, list[tuple[Task, dict[str, Any]]]]]:
    """category → policy → [(task, terminal info)] over the first ``n`` tasks, played in the env."""
    import gymnasium as gym

    import toolgym.env  # noqa: F401  (registers the env)

    env = gym.make("toolgym/ToolUse-v0", categories=list(categories), template=TEMPLATE, max_steps=256).unwrapped
    out: dict[str, dict[str, list[tuple[Task, dict[str, Any]]]]] = {}
    try:
        for cat in categories:
            tasks = sorted((t for t in suite if t.category == cat), key=lambda t: _order(t.id))[:n]
            out[cat] = {name: [(t, play_multi_turn(env, t, p(t))) for t in tasks] for name, p in multi_turn_policies().items()}
    finally:
        env.close()
    return out


def _order(task_id: str) -> tuple[str, int]:
    stem, _, num = task_id.partition("-")[0].rpartition("_")
    return (stem, int(num)) if num.isdigit() else (task_id, 0)


def means(scores: dict[str, dict[str, list[tuple[Task, dict[str, Any]]]]]) -> dict[str, dict[str, float]]:
    return {c: {p: summary_row([s for _, s in rows])["total"] for p, rows in per.items()} for c, per in scores.items()}


if __name__ == "__main__":  # python tests/env/reward/degenerate.py [N]: the mean-total tables
    import sys

    from toolgym.env.tasks.suite import load_suite

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    suite = load_suite("default")
    print(dumps_table(means(single_turn_scores(suite, n)), list(single_turn_policies())))
    print()
    print(dumps_table(means(multi_turn_scores(suite, n)), list(multi_turn_policies())))
