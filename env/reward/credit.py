"""Substance credit: how much of the needed work each model call did (issue 10 item 7, issue 11 item 6).

``task_completion`` is the task's own all-or-nothing checker (BFCL's, unchanged). The other components
need a finer measure that cannot be gamed by *shape* alone: calling the right tool names with empty,
placeholder or wrong arguments is not work. :func:`credit_of` gives every model call a credit in [0, 1]:

- **single-turn call tasks** (``ast``): the call's partner in the AST matcher's optimal assignment
  decides; a call with no partner (a surplus repeat, an unneeded tool) earns 0. A call that passes
  BFCL's per-call check earns 1. A call that fails earns ``NAME_CREDIT`` (0.1: it chose the right
  tool) plus up to ``PARTIAL_CREDIT`` (½) in all for the share of the partner's *needed* parameters
  it got right — needed means
  required by the schema or not omittable in the ground truth (parameters the ground truth lets you
  leave out are only counted when the call has no needed parameter at all), and parameters whose
  value can be picked from the schema alone (enum members, booleans) are only counted when the call
  has no other needed parameter. So a wrong call is always worth less than a right one, and
  placeholder values earn nothing unless they happen to be right where it takes reading the request.
- **stateful multi-turn tasks**: within each user turn, model calls are paired with that turn's
  ground-truth calls of the same name (greedily, best credit first); a call equal to its partner
  (name and arguments, Python ``==``) earns 1, otherwise ½ × the share of the partner's arguments it
  gives with equal values. BFCL's positional ground-truth calls are named by the tool's declared order.
- tasks whose ground truth is only tool names (``metadata.expected_tools``): 1 per call to a needed
  name, up to the multiset of needed names; ``relevance`` tasks: 1 per call to an offered tool.

``work_done`` (in [0, 1]) is the share of the needed work the episode did: 1 when ``task_completion``
is 1, otherwise the summed credit over the number of needed calls (for ``relevance`` tasks: 1 when
some offered tool was called). Tasks that need no call (irrelevance) have done their work exactly
when no call was made. The engine multiplies ``efficiency`` and ``timing_quality`` by it, and
``tool_accuracy`` is the credit-weighted F1 (see :mod:`toolgym.env.reward.components`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from toolgym.env.parsers.pythonic import parse_python_calls_lenient
from toolgym.env.reward.ast_call import _args_of, _prepare, _score_pair
from toolgym.env.reward.ast_values import _check_value, _contains_empty
from toolgym.env.types import Task, ToolCall

#: A call that fails its check earns at most this share of a right call's credit.
PARTIAL_CREDIT = 0.5
#: ... and at least this much when it names the right tool (it is paired with a needed call): choosing
#: the right tool is a start, worth more than silence and far less than any right call.
NAME_CREDIT = 0.1


def _failing_credit(share: float) -> float:
    return NAME_CREDIT + (PARTIAL_CREDIT - NAME_CREDIT) * share


def _ast_pair_credit(args: dict | None, gt: Any, props: Any, required: Sequence) -> float:
    ok, _ = _score_pair(args, gt, props, required)
    if ok:
        return 1.0
    if args is None:
        return 0.0
    needed = [k for k, allowed in gt.items() if k in required or not _contains_empty(allowed)]
    keys = needed or list(gt)
    # Values a policy can pick from the schema alone (an enum member, a boolean) earn no partial
    # credit while the call has anything else to get right: a placeholder call that happens to hit
    # the first enum member has not read the request.
    informed = [k for k in keys if not _guessable(props.get(k))]
    keys = informed or keys
    if not keys:
        return NAME_CREDIT  # the ground truth takes no argument and the call failed: it gave unexpected ones
    hit = 0
    for k in keys:
        if k in args and k in props and not _check_value(args[k], gt[k], props[k]):
            hit += 1
    return _failing_credit(hit / len(keys))


def _guessable(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    if node.get("enum"):
        return True
    t = node.get("x-bfcl-type", node.get("type"))
    return t in ("boolean", "bool")


def ast_credit(task: Task, calls: Sequence[ToolCall], verdict: Any, prepared: Any = None) -> list[float]:
    """Credit per model call of an ``ast`` task, from the matcher's verdict and assignment.
    ``prepared``: a callable giving ``ast_call._prepare`` of the task (the engine's per-task cache)."""
    if verdict.ok:
        return [1.0] * len(calls)
    credit = [0.0] * len(calls)
    if not verdict.assignment:
        return credit
    exp, _ = _prepare(task.ground_truth, task.tools) if prepared is None else prepared()
    for i, j in verdict.assignment:
        _, gt, props, required = exp[j]
        credit[i] = _ast_pair_credit(_args_of(calls[i]), gt, props, required)
    return credit


def multi_turn_truth(task: Task) -> list[list[ToolCall]]:
    """The ground-truth calls of each user turn, positional arguments named by declared order."""
    order = {t.name: list(((t.parameters or {}).get("properties") or {}).keys()) for t in task.tools}
    turns: list[list[ToolCall]] = []
    for turn in task.ground_truth or ():
        calls: list[ToolCall] = []
        for text in turn or ():
            if not isinstance(text, str):
                continue
            parsed, _ = parse_python_calls_lenient(text, allow_positional=True)
            for c in parsed:
                if any(k.startswith("__arg") for k in c.arguments):
                    names = order.get(c.name, [])
                    args = {}
                    for k, v in c.arguments.items():
                        if k.startswith("__arg") and k[5:].isdigit() and int(k[5:]) < len(names):
                            args[names[int(k[5:])]] = v
                        else:
                            args[k] = v
                    c = ToolCall(c.name, args)
                calls.append(c)
        turns.append(calls)
    return turns


def _mt_pair_credit(call: ToolCall, truth: ToolCall) -> float:
    got, want = call.arguments, truth.arguments
    if _same(got, want):
        return 1.0
    if not want:
        return NAME_CREDIT
    hit = sum(1 for k, v in want.items() if k in got and _same(got[k], v))
    return _failing_credit(hit / len(want))


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # hostile values (e.g. objects whose __eq__ raises) are never equal
        return False


def multi_turn_credit(task: Task, steps: Sequence[Any], truth: list[list[ToolCall]] | None = None) -> list[float]:
    """Credit per model call (in trajectory order) of a stateful task, paired within each turn."""
    truth = multi_turn_truth(task) if truth is None else truth
    by_turn: dict[int, list[int]] = {}
    flat: list[ToolCall] = []
    for step in steps:
        for call in step.parsed.calls:
            by_turn.setdefault(step.turn, []).append(len(flat))
            flat.append(call)
    out = [0.0] * len(flat)
    for turn, idxs in by_turn.items():
        gt = truth[turn] if 0 <= turn < len(truth) else []
        pairs = []
        for j, t in enumerate(gt):
            for i in idxs:
                if flat[i].name == t.name:
                    pairs.append((_mt_pair_credit(flat[i], t), -i, -j, i, j))
        pairs.sort(reverse=True)  # best credit first; ties: earliest call, earliest truth
        used_i: set[int] = set()
        used_j: set[int] = set()
        for c, _, _, i, j in pairs:
            if i not in used_i and j not in used_j:
                used_i.add(i)
                used_j.add(j)
                out[i] = c
    return out


def name_credit(calls: Sequence[ToolCall], expected: Sequence[str]) -> list[float]:
    """1 per call to a needed tool name, up to how many times the name is needed."""
    left = Counter(expected)
    out = []
    for c in calls:
        if left[c.name] > 0:
            left[c.name] -= 1
            out.append(1.0)
        else:
            out.append(0.0)
    return out
