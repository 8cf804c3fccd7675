"""Rollout records (one per finished episode) and re-scoring them under a new reward config.

A rollout holds what a dataset or a re-scorer needs without re-running the model or the tools:
task, template, prompt, every action with its observation and timing, and the reward
breakdown — components (each in [0, 1], independent of weights) and penalty counts. The total
under any reward config is then ``sum(w_k * c_k) + clamp(sum(count_p * value_p))``, the same
combination the reward engine uses (a test checks that re-scoring under the original config
gives back every stored total).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from toolgym.env.reward.config import PENALTIES, RewardConfig
from toolgym.env.sessions.records import SessionSpec, StepEntry


def build_rollout(sid: str, spec: SessionSpec, task: Any, prompt: str, created: float, entries: Sequence[StepEntry]) -> dict[str, Any]:
    last = entries[-1]
    score = last.reply.get("score") or {}
    details = score.get("details") or {}
    return {
        "session_id": sid,
        "task_id": spec.task_id,
        "category": spec.category,
        "kind": getattr(task, "kind", ""),
        "template": spec.template,
        "seed": spec.options.get("seed"),
        "config_hash": spec.config_hash(),
        "reward_config": spec.reward,
        "task_overrides": {"weights": dict(getattr(task, "weights", {}) or {}), "penalties": dict(getattr(task, "penalties", {}) or {})},
        "prompt": prompt,
        "steps": [{"index": e.index, "action": e.action, "observation": e.reply.get("observation", ""), "reward": e.reply.get("reward", 0.0),
                   "elapsed_ms": round(e.elapsed_ms, 3), "at": e.at} for e in entries],
        "reward": {"total": float(score.get("total", last.reply.get("reward", 0.0))), "components": dict(score.get("components") or {}),
                   "penalties": dict(score.get("penalties") or {}), "valid": bool(score.get("valid", False)),
                   "feedback": score.get("feedback", ""),
                   "penalty_counts": {k: int(details[f"{k}_count"]) for k in PENALTIES if f"{k}_count" in details}},
        "terminated": bool(last.reply.get("terminated")),
        "truncated": bool(last.reply.get("truncated")),
        "n_steps": len(entries),
        "created_at": created,
        "finished_at": last.at,
    }


def rescore(rollout: dict[str, Any], config: RewardConfig) -> float:
    """The rollout's total under ``config`` (the task's own overrides still apply on top).

    An invalid rollout (scoring itself failed) stays at its stored total: there is no
    breakdown to re-weight, and inventing one would be a silent number.
    """
    r = rollout["reward"]
    if not r.get("valid", False):
        return float(r["total"])
    over = rollout.get("task_overrides") or {}
    cfg = config.for_task(over.get("weights") or None, over.get("penalties") or None)
    weighted = sum(cfg.weights.get(k, 0.0) * float(v) for k, v in r["components"].items())
    pen = 0.0
    for kind, n in (r.get("penalty_counts") or {}).items():
        if n:
            pen += cfg.penalties.get(kind, 0.0) * (n if cfg.penalty_per_occurrence else 1)
    pen = max(pen, cfg.max_penalty_total)
    return round(weighted + pen, 10)


@dataclass(frozen=True)
class Distribution:
    n: int
    mean: float
    p10: float
    p50: float
    p90: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, xs: Iterable[float]) -> Distribution:
        v = sorted(float(x) for x in xs if math.isfinite(x))
        if not v:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

        def q(p: float) -> float:
            return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]

        return cls(len(v), statistics.fmean(v), q(0.1), q(0.5), q(0.9), v[0], v[-1])

    def line(self) -> str:
        return (f"n={self.n} mean={self.mean:.4f} p10={self.p10:.4f} p50={self.p50:.4f} p90={self.p90:.4f} "
                f"min={self.minimum:.4f} max={self.maximum:.4f}")
