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
from toolgym.env.reward.ast_match import match_calls
from toolgym.env.reward.config import COMPONENTS, RewardConfig
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


def _task_completion(task: Task, traj: Trajectory, details: dict[str, Any]) -> tuple[float, str]:
    calls = traj.calls
    kind = task.kind
    if kind == "ast":
        verdict = match_calls(calls, task.ground_truth, task.tools, language=task.language)
        details["arg_accuracy"] = verdict.arg_accuracy
        details["matched_calls"] = verdict.matched
        details["expected_calls"] = verdict.expected
        if verdict.ok:
            return 1.0, "calls match the ground truth"
        return 0.0, "calls do not match: " + "; ".join(verdict.errors[:3])
    if kind == "irrelevance":
        return (1.0, "correctly made no call") if not calls else (0.0, f"made {len(calls)} call(s) although no tool fits")
    if kind == "relevance":
        return (1.0, "made a call") if calls else (0.0, "made no call although a tool fits")
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
        )
    if kind == "final_answer":
        if task.answer is None:
            raise ScoringError(f"task {task.id!r} has kind final_answer but no 'answer' check")
        answer = next((s.parsed.final_answer for s in reversed(traj.steps) if s.parsed.final_answer is not None), None)
        ok = C.check_answer(task.answer, answer)
        return (1.0, "answer accepted") if ok else (0.0, "no final answer" if answer is None else "answer rejected")
    raise ScoringError(f"unknown task kind {kind!r}")


def _format_facts(task: Task, traj: Trajectory) -> C.FormatFacts:
    schemas = {t.name: t.parameters for t in task.tools}
    steps = len(traj.steps)
    clean = sum(1 for s in traj.steps if not s.parsed.issues)
    checked = valid = 0
    errors: list[str] = []
    for call in traj.calls:
        schema = schemas.get(call.name)
        if schema is None:
            continue  # hallucinated: penalised separately, no schema to check against
        checked += 1
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

    tc, note = _task_completion(task, traj, details)
    comp["task_completion"] = C.finite01(tc)
    notes.append(note)

    calls = traj.calls
    expected = C.expected_tool_names(task)
    optimal = C.optimal_calls(task, expected)
    ta, note = C.tool_accuracy(task, calls, expected)
    comp["tool_accuracy"] = C.finite01(ta)
    if ta < 1.0:
        notes.append(note)

    comp["efficiency"] = C.finite01(C.efficiency(task, len(calls), optimal))

    tq, note = C.timing_quality(task, traj, optimal)
    comp["timing_quality"] = C.finite01(tq)
    if tq < 1.0:
        notes.append(note)

    facts = _format_facts(task, traj)
    comp["format_compliance"] = C.finite01(C.format_compliance(facts))
    if facts.schema_errors:
        details["schema_errors"] = list(facts.schema_errors)
    issues = [str(i) for s in traj.steps for i in s.parsed.issues]
    if issues:
        details["parse_issues"] = issues[:5]
        notes.append(f"parse: {issues[0]}")

    counts = C.count_penalties(task, traj, expected)
    penalties: dict[str, float] = {}
    for kind, n in counts.items():
        if n:
            times = n if cfg.penalty_per_occurrence else 1
            penalties[kind] = cfg.penalties.get(kind, 0.0) * times
            details[f"{kind}_count"] = n
    pen_sum = sum(penalties.values())
    if pen_sum < cfg.max_penalty_total:
        details["penalty_floor_applied"] = True
        pen_sum = cfg.max_penalty_total

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
