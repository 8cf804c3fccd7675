"""The five reward components and the penalty counts, as pure functions (design §4).

Each component takes the task and the trajectory (plus, where needed, precomputed facts)
and returns a value in [0, 1] and a short note; nothing here reads global state, executes
a tool or looks at text the agent could use to write its own reward.

"Steps" for efficiency are tool calls: one model output may carry several parallel calls,
and BFCL's optimal paths are counted in calls. ``Task.optimal_steps`` therefore means the
optimal number of tool calls (0 for irrelevance tasks).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from toolgym.env.reward.answers import check_answer  # noqa: F401  (re-exported: part of this module's API)
from toolgym.env.reward.trajectory import Trajectory
from toolgym.env.types import Task, ToolCall

_CALL_NAME = re.compile(r"\s*([A-Za-z_][\w.]*)\s*\(")


def expected_tool_names(task: Task) -> list[str] | None:
    """Names of the calls the task needs, as a multiset; None when the task does not say."""
    if task.kind == "ast":
        return [next(iter(gt)) for gt in task.ground_truth if isinstance(gt, dict) and gt]
    if task.kind == "irrelevance":
        return []
    if task.kind == "multi_turn":
        names = []
        for turn in task.ground_truth:
            for call in turn or ():
                m = _CALL_NAME.match(call) if isinstance(call, str) else None
                if m:
                    names.append(m.group(1))
        return names
    listed = task.metadata.get("expected_tools") if task.metadata else None
    return list(listed) if isinstance(listed, (list, tuple)) else None


_UNSET: list[str] = []


def optimal_calls(task: Task, names: list[str] | None = _UNSET) -> int:
    """The optimal number of tool calls for the task (see module docstring).

    ``names`` may pass a precomputed :func:`expected_tool_names` (the engine computes it once).
    """
    if task.kind == "irrelevance":
        return 0
    if names is _UNSET:
        names = expected_tool_names(task)
    if task.kind in ("ast", "multi_turn") and names is not None:
        return len(names)
    return max(0, int(task.optimal_steps))


# ---------------------------------------------------------------- task completion


# check_answer lives in toolgym.env.reward.answers (re-exported here for callers of this module).

# ---------------------------------------------------------------- tool accuracy


def tool_f1(predicted: Sequence[str], expected: Sequence[str]) -> float:
    """F1 of predicted vs expected tool names, as multisets. Both empty → 1.0."""
    if not predicted and not expected:
        return 1.0
    if not predicted or not expected:
        return 0.0
    if len(predicted) == 1 and len(expected) == 1:  # the common single-call case, without Counters
        return 1.0 if predicted[0] == expected[0] else 0.0
    overlap = sum((Counter(predicted) & Counter(expected)).values())
    if overlap == 0:
        return 0.0
    p = overlap / len(predicted)
    r = overlap / len(expected)
    return 2 * p * r / (p + r)


def tool_accuracy(task: Task, calls: Sequence[ToolCall], expected: list[str] | None = _UNSET,
                  credit: Sequence[float] | None = None, counted: Sequence[bool] | None = None) -> tuple[float, str]:
    """Credit-weighted F1 of the calls against the needed calls (module docstring of
    :mod:`toolgym.env.reward.credit`).

    ``credit[i]`` is call i's substance credit (default: 1 per call to a needed name);
    ``counted[i]`` is false for a call that drew a penalty (hallucinated, wrong tool, redundant):
    the penalty prices it, so it is left out of precision here (each offence is charged once).
    """
    if expected is _UNSET:
        expected = expected_tool_names(task)
    predicted = [c.name for c in calls]
    if expected is None:
        if task.kind == "relevance":
            # Any offered tool is right; the score is the share of calls that hit one.
            if not calls:
                return 0.0, "a call was needed, none made"
            offered = task.tool_names
            hit = sum(1 for c in calls if c.name in offered)
            return hit / len(calls), f"{hit}/{len(calls)} calls to offered tools"
        return 1.0, "task lists no expected tools"
    if not expected:
        return (1.0, "tools ok") if not calls else (0.0, f"called {sorted(predicted)} although no call was needed")
    if credit is None:
        from toolgym.env.reward.credit import name_credit

        credit = name_credit(calls, expected)
    keep = [i for i in range(len(calls)) if counted is None or counted[i]]
    overlap = sum(credit[i] for i in keep)
    if overlap <= 0.0:
        f1 = 0.0
    else:
        p = overlap / len(keep)
        r = overlap / len(expected)
        f1 = 2 * p * r / (p + r)
    if f1 >= 1.0:
        return 1.0, "tools ok"
    return f1, (f"tool credit F1 {f1:.2f} (called {sorted(predicted)}, expected {sorted(expected)}; "
                "a call counts in full only with the right arguments)")


# ---------------------------------------------------------------- efficiency


def efficiency(task: Task, calls_made: int, optimal: int | None = None, work_done: float = 1.0) -> float:
    """``work_done`` × min(1, optimal / calls taken), both floored at 1; 0 optimal calls means any
    call is inefficient (efficiency 0) and none is optimal (1).

    ``calls_made`` counts the calls that drew no penalty (the engine's rule: an offence is priced
    by its penalty alone). ``work_done`` gates the credit: an episode that did none of the needed
    work is not efficient, however few calls it made.
    """
    opt = optimal_calls(task) if optimal is None else optimal
    if opt == 0:
        return work_done if calls_made == 0 else 0.0
    return work_done * min(1.0, opt / max(1, calls_made))


# ---------------------------------------------------------------- timing quality


def timing_quality(task: Task, traj: Trajectory, optimal: int | None = None, work_done: float = 1.0) -> tuple[float, str]:
    """Share of timing checks passed, × ``work_done`` (no timing credit without the work).

    Checks: (1) a call was made when one was needed and none when none was (irrelevance /
    hard negatives); (2) no call in the same output as, or after, the final answer; (3) no call
    made before the information it depends on exists (a tool error that reports a missing
    precondition, e.g. a file or booking that does not exist yet).
    """
    calls = traj.calls
    opt = optimal_calls(task) if optimal is None else optimal
    needs_call = task.kind != "irrelevance" and (opt > 0 or task.kind == "relevance")
    checks = 1
    passed = int(bool(calls) == needs_call)
    notes = [] if passed else (["no call although one was needed"] if needs_call else ["called a tool although none fits"])
    answered_turn = -1  # the user turn in which the model last gave its answer
    late = 0
    for step in traj.steps:
        # A new user turn (multi-turn tasks) asks a new question: answering the previous one
        # does not make this turn's calls late.
        if step.parsed.calls and (answered_turn == step.turn or step.parsed.final_answer is not None):
            late += len(step.parsed.calls)
        if step.parsed.final_answer is not None:
            answered_turn = step.turn
    if calls:
        checks += 1
        passed += int(late == 0)
        if late:
            notes.append(f"{late} call(s) after/with the final answer")
    premature = sum(1 for s in traj.steps for o in s.outcomes if o.failed_precondition)
    executed = sum(len(s.outcomes) for s in traj.steps)
    if executed:
        checks += 1
        frac = 1.0 - premature / executed
        passed += frac
        if premature:
            notes.append(f"{premature} call(s) before their inputs existed")
    if work_done < 1.0:
        notes.append(f"timing credit × work done {work_done:.2f}")
    return work_done * passed / checks, "; ".join(notes) or "timing ok"

# ---------------------------------------------------------------- format compliance


@dataclass(frozen=True)
class FormatFacts:
    steps: int
    clean_steps: int
    calls_checked: int
    calls_valid: int
    schema_errors: tuple[str, ...]


def format_compliance(facts: FormatFacts) -> float:
    """Share of units that comply: each step must parse cleanly, each call to an offered tool
    must carry arguments that validate against the tool's schema."""
    units = facts.steps + facts.calls_checked
    if units == 0:
        return 1.0
    return (facts.clean_steps + facts.calls_valid) / units


# ---------------------------------------------------------------- penalties


@dataclass(frozen=True)
class PenaltyCounts:
    wrong_tool: int = 0
    hallucinated_tool: int = 0
    redundant_call: int = 0
    format_error: int = 0
    timeout: int = 0
    #: per call (trajectory order): whether it drew a call penalty (hallucinated, wrong tool, redundant)
    flagged: tuple[bool, ...] = ()

    def items(self) -> list[tuple[str, int]]:
        return [(k, getattr(self, k)) for k in ("wrong_tool", "hallucinated_tool", "redundant_call", "format_error", "timeout")]


def retrieval(expected: Sequence[str] | None, shown: frozenset[str]) -> float:
    """Share of the tool names the task needs that the model was shown (searched or offered);
    1.0 when it needs none (irrelevance) or does not say which (no needed tool can be missed)."""
    need = set(expected or ())
    if not need:
        return 1.0
    return len(need & shown) / len(need)


def offered_at(task: Task, turn: int) -> frozenset[str]:
    """Tool names offered in user turn ``turn``: the task's tools minus those a miss_func task
    withholds until a later turn (the same rule the episode uses to render its prompts)."""
    if not task.missed_function:
        return task.tool_names
    held = {n for t, names in task.missed_function.items() if int(t) > turn for n in names}
    return task.tool_names - held if held else task.tool_names


def count_penalties(task: Task, traj: Trajectory, expected: list[str] | None = _UNSET,
                    credit: Sequence[float] | None = None) -> PenaltyCounts:
    """Count each penalty's offences (README "reward contract").

    A call is *hallucinated* when its tool is not offered in the call's turn (a step's
    ``offered`` set when the env recorded it, else :func:`offered_at`), so a withheld tool called
    before it is offered counts; *wrong* when offered but not needed; *redundant* when the same
    call (name + args) was made before with no state change since — unless the call has
    ``credit`` (the pairing gave it a ground-truth call of its own: a task that needs the same call
    twice, like ``parallel_158``, is not penalised for making it twice, and two attempts at two
    different needed calls are two attempts). A timeout is charged once
    per timed-out call; a step marked ``timed_out`` is charged once more only when none of its
    calls is (the step's own budget ran out), and the episode's timeout once.
    """
    if expected is _UNSET:
        expected = expected_tool_names(task)
    needed = set(expected) if expected is not None else None
    wrong = halluc = redundant = 0
    flagged: list[bool] = []
    # A call is redundant when the same call (name + args) was made before and the state has not
    # changed since that earlier call finished: ``seen`` maps each call key to the state digest
    # right after it, ``current`` is the digest after the latest call (None = unknown = pure).
    seen: dict[str, str | None] = {}
    current: str | None = None
    n_calls = sum(len(s.parsed.calls) for s in traj.steps)
    k = -1  # index of the call in trajectory order
    offered_by_turn: dict[int, frozenset[str]] = {}
    for step in traj.steps:
        outcomes = step.outcomes
        offered = step.offered
        if offered is None:
            offered = offered_by_turn.get(step.turn)
            if offered is None:
                offered = offered_by_turn[step.turn] = offered_at(task, step.turn)
        for i, call in enumerate(step.parsed.calls):
            k += 1
            bad = False
            if call.name not in offered:
                halluc += 1
                bad = True
            elif needed is not None and call.name not in needed:
                wrong += 1
                bad = True
            if n_calls > 1:  # a key (JSON of the args) is only needed when a repeat is possible
                key = call.key()
                if key in seen and seen[key] == current and not (credit is not None and credit[k] > 0.0):
                    redundant += 1
                    bad = True
                if i < len(outcomes) and outcomes[i].state_digest is not None:
                    current = outcomes[i].state_digest
                seen[key] = current
            flagged.append(bad)
    fmt = sum(1 for s in traj.steps if s.parsed.issues)
    timeouts = 0
    for s in traj.steps:
        per_call = sum(1 for o in s.outcomes if o.timed_out)
        timeouts += per_call if per_call else int(s.timed_out)
    timeouts += int(traj.episode_timed_out)
    return PenaltyCounts(wrong, halluc, redundant, fmt, timeouts, tuple(flagged))

def finite01(x: float) -> float:
    """Clamp to [0, 1]; NaN is a bug upstream and is reported by the engine, never passed on."""
    if not math.isfinite(x):
        raise ValueError(f"component value {x!r} is not finite")
    return 0.0 if x < 0 else 1.0 if x > 1 else float(x)
