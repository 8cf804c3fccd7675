"""The reward engine: one code path from a trajectory to a :class:`ScoreResult`.

``Step`` (online), ``Score``/``ScoreBatch`` (offline) and ``Evaluate`` all end here, so the RL
reward and the eval score can never disagree. The engine is pure: same task, trajectory and
config give the same result, and nothing the agent writes (tool outputs, workspace files,
text that looks like a reward) is read as a reward.
"""

from __future__ import annotations

import math
from typing import Any

from toolgym.env.parsers import parse
from toolgym.env.reward import components as C
from toolgym.env.reward import credit
from toolgym.env.reward.ast_match import match_calls
from toolgym.env.reward.config import COMPONENTS, RewardConfig
from toolgym.env.reward.prep import TaskPrep, task_prep
from toolgym.env.reward.trajectory import ScoreResult, StepRecord, Trajectory
from toolgym.env.tasks.schema import validate_args
from toolgym.env.types import Task

DEFAULT_CONFIG = RewardConfig()


class ScoringError(ValueError):
    """The request cannot be scored as asked (e.g. a stateful task without its execution)."""


def score_output(task: Task, output: str, template: str | None = None, config: RewardConfig | None = None) -> ScoreResult:
    """Score one raw model output against a single-step task (offline; calls are not executed)."""
    parsed = parse(output, template)
    return score_trajectory(task, Trajectory(steps=(StepRecord(output=output, parsed=parsed),)), config)


def score_trajectory(task: Task, traj: Trajectory, config: RewardConfig | None = None) -> ScoreResult:
    """Score a trajectory. Never raises for model behaviour; an internal failure gives valid=False."""
    base = config or DEFAULT_CONFIG
    try:
        cfg = base.for_task(task.weights, task.penalties)
        return _score(task, traj, cfg)
    except ScoringError:
        raise
    except Exception as exc:  # scoring itself failed: say so, never a silent 0 or NaN
        return ScoreResult(
            total=0.0,
            components={k: 0.0 for k in COMPONENTS},
            penalties={},
            valid=False,
            feedback=f"scoring failed for task {task.id!r}: {type(exc).__name__}: {exc}",
            details={"error": f"{type(exc).__name__}: {exc}"},
        )


def _task_completion(task: Task, traj: Trajectory, details: dict[str, Any], prep: TaskPrep) -> tuple[float, str, Any]:
    """(completion in [0, 1], note, the AST verdict for ``ast`` tasks else None)."""
    calls = traj.calls
    kind = task.kind
    if kind == "ast":
        verdict = match_calls(calls, task.ground_truth, task.tools, language=task.language,
                              prepared=prep.ast() if task.language == "python" else None, expected_text=prep.expected_text)
        details["arg_accuracy"] = verdict.arg_accuracy
        details["matched_calls"] = verdict.matched
        details["expected_calls"] = verdict.expected
        if verdict.ok:
            return 1.0, "calls match the ground truth", verdict
        return 0.0, "calls do not match: " + "; ".join(verdict.errors[:3]), verdict
    if kind == "irrelevance":
        return ((1.0, "correctly made no call", None) if not calls
                else (0.0, f"made {len(calls)} call(s) although no tool fits", None))
    if kind == "relevance":
        # A call to a tool that does not exist in the episode is not a relevant call (BFCL's runner
        # only checks that some call decoded; see the README's reward contract).
        hits = sum(1 for s in traj.steps for c in s.parsed.calls if c.name in _offered(task, s))
        if hits:
            return 1.0, "made a call to an offered tool", None
        return 0.0, ("made no call although a tool fits" if not calls else "called only tools that are not offered"), None
    if kind == "multi_turn":
        verdict = traj.multi_turn
        if verdict is None:
            raise ScoringError(
                f"task {task.id!r} is a stateful multi-turn task: it is scored by running the episode in the "
                "environment (EnvService Reset/Step or ToolUseEnv), not from a single output"
            )
        details["turns_ok"] = list(verdict.turns_ok)
        if verdict.errors:
            details["multi_turn_errors"] = list(verdict.errors[:5])
        return float(verdict.score), (
            "state and results match the ground-truth replay" if verdict.ok else f"{sum(verdict.turns_ok)}/{len(verdict.turns_ok)} turns match"
        ), None
    if kind == "final_answer":
        if task.answer is None:
            raise ScoringError(f"task {task.id!r} has kind final_answer but no 'answer' check")
        answer = next((s.parsed.final_answer for s in reversed(traj.steps) if s.parsed.final_answer is not None), None)
        question = "\n".join(m.get("content", "") for turn in task.turns for m in turn if m.get("role") == "user")
        ok = C.check_answer(task.answer, answer, question)
        return ((1.0, "answer accepted", None) if ok
                else (0.0, "no final answer" if answer is None else "answer rejected", None))
    raise ScoringError(f"unknown task kind {kind!r}")


def _offered(task: Task, step: StepRecord) -> frozenset[str]:
    return step.offered if step.offered is not None else C.offered_at(task, step.turn)


def _call_credit(task: Task, traj: Trajectory, verdict: Any, expected: list[str] | None, prep: TaskPrep) -> list[float] | None:
    """Substance credit per call (:mod:`toolgym.env.reward.credit`); None when the task names no
    needed calls (then tool_accuracy has its own rule and work done is completion)."""
    calls = traj.calls
    if task.kind == "ast":
        return credit.ast_credit(task, calls, verdict, prep.ast if task.kind == "ast" else None)
    if task.kind == "multi_turn":
        return credit.multi_turn_credit(task, traj.steps)
    if task.kind == "relevance":
        return [1.0 if c.name in _offered(task, s) else 0.0 for s in traj.steps for c in s.parsed.calls]
    if expected is None:
        return None
    return credit.name_credit(calls, expected)


def _work_done(task: Task, tc: float, n_calls: int, optimal: int, call_credit: list[float] | None,
               expected: list[str] | None) -> float:
    """Share of the needed work the episode did, in [0, 1] (module docstring of ``credit``)."""
    if optimal == 0 and task.kind != "relevance":
        return 1.0 if n_calls == 0 else 0.0
    if tc >= 1.0:
        return 1.0
    if task.kind == "relevance":
        return tc
    if call_credit is None or not expected:
        return tc
    return min(1.0, sum(call_credit) / len(expected))


def _format_facts(task: Task, traj: Trajectory, call_credit: list[float] | None, prep: TaskPrep) -> C.FormatFacts:
    schemas = prep.schemas
    steps = len(traj.steps)
    clean = sum(1 for s in traj.steps if not s.parsed.issues)
    checked = valid = 0
    errors: list[str] = []
    for i, call in enumerate(traj.calls):
        schema = schemas.get(call.name)
        if schema is None:
            continue  # hallucinated: penalised separately, no schema to check against
        checked += 1
        if call_credit is not None and call_credit[i] >= 1.0:
            # The task's own ground truth accepts this call: its answer key is the authority, even
            # where BFCL's data gives a value its schema does not list (README "reward contract").
            valid += 1
            continue
        problems = validate_args(call.arguments, schema)
        if problems:
            if len(errors) < 5:
                errors.append(f"{call.name}: {problems[0]}")
        else:
            valid += 1
    return C.FormatFacts(steps, clean, checked, valid, tuple(errors))


def _score(task: Task, traj: Trajectory, cfg: RewardConfig) -> ScoreResult:
    details: dict[str, Any] = {}
    notes: list[str] = []
    comp: dict[str, float] = {}

    prep = task_prep(task)
    tc, note, verdict = _task_completion(task, traj, details, prep)
    comp["task_completion"] = C.finite01(tc)
    notes.append(note)

    calls = traj.calls
    expected, optimal = prep.needed(task)
    call_credit = _call_credit(task, traj, verdict, expected, prep)
    counts = C.count_penalties(task, traj, expected, call_credit)
    counted = [not f for f in counts.flagged]
    work = C.finite01(_work_done(task, comp["task_completion"], len(calls), optimal, call_credit, expected))
    details["work_done"] = work

    ta, note = C.tool_accuracy(task, calls, expected, call_credit, counted)
    comp["tool_accuracy"] = C.finite01(ta)
    if ta < 1.0:
        notes.append(note)
    if expected is not None and calls:
        details["tool_name_f1"] = C.tool_f1([c.name for c in calls], expected)

    comp["efficiency"] = C.finite01(C.efficiency(task, sum(counted), optimal, work))

    tq, note = C.timing_quality(task, traj, optimal, work)
    comp["timing_quality"] = C.finite01(tq)
    if tq < 1.0:
        notes.append(note)

    facts = _format_facts(task, traj, call_credit, prep)
    comp["format_compliance"] = C.finite01(C.format_compliance(facts))
    if facts.schema_errors:
        details["schema_errors"] = list(facts.schema_errors)
    issues = [str(i) for s in traj.steps for i in s.parsed.issues]
    if issues:
        details["parse_issues"] = issues[:5]
        notes.append(f"parse: {issues[0]}")

    if traj.retrieved is not None or "retrieval" in cfg.weights:
        # Outside a retrieval episode every task tool was offered, so this is 1.0 there.
        shown = traj.retrieved if traj.retrieved is not None else frozenset(t.name for t in task.tools)
        comp["retrieval"] = C.finite01(C.retrieval(expected, shown))
        if comp["retrieval"] < 1.0:
            notes.append(f"retrieval: {comp['retrieval']:.2f} of the needed tools were searched or offered")

    penalties = _apply_penalties(counts, cfg, details)
    pen_sum = sum(penalties.values())

    weighted = sum(cfg.weights.get(k, 0.0) * v for k, v in comp.items())
    total = weighted + pen_sum
    if not math.isfinite(total):  # unreachable with a validated config; kept as the last line of defence
        raise ValueError(f"non-finite total {total!r}")
    details["calls"] = len(calls)
    if penalties:
        notes.append("penalties: " + ", ".join(f"{k}×{details[k + '_count']} ({v:+.2f})" for k, v in penalties.items()))
    return ScoreResult(
        total=round(total, 10),
        components=comp,
        penalties=penalties,
        valid=True,
        feedback="; ".join(notes),
        details=details,
    )


def _apply_penalties(counts: C.PenaltyCounts, cfg: RewardConfig, details: dict[str, Any]) -> dict[str, float]:
    """The penalty amounts applied, per kind: value × occurrences (or × 1 when not per occurrence),
    and, when their sum passes ``max_penalty_total``, each kind scaled by the same factor so the
    amounts shown sum to exactly the floor that was applied (the raw amounts stay in details)."""
    raw: dict[str, float] = {}
    for kind, n in counts.items():
        if n:
            times = n if cfg.penalty_per_occurrence else 1
            amount = cfg.penalties.get(kind, 0.0) * times
            details[f"{kind}_count"] = n
            if amount:
                raw[kind] = amount
    raw_sum = sum(raw.values())
    if raw_sum >= cfg.max_penalty_total or raw_sum == 0.0:
        return raw
    details["penalty_floor_applied"] = True
    details["penalties_raw"] = dict(raw)
    scale = cfg.max_penalty_total / raw_sum
    applied = {k: v * scale for k, v in raw.items()}
    # make the shown amounts sum to the floor exactly, whatever the float rounding did
    last = next(reversed(applied))
    applied[last] = cfg.max_penalty_total - sum(v for k, v in applied.items() if k != last)
    return applied
