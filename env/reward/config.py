"""Reward configuration: the weights and penalties of the reward contract (design §4).

Defaults are the contract's. A suite may override them, and a task may override the suite
(``Task.weights`` / ``Task.penalties``); :meth:`RewardConfig.for_task` merges the three.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

COMPONENTS: tuple[str, ...] = (
    "task_completion",
    "tool_accuracy",
    "efficiency",
    "timing_quality",
    "format_compliance",
)
#: Scored only where asked for: ``retrieval`` (were the tools the task needs among those searched or
#: offered) is reported for retrieval episodes and whenever the weights name it; its default weight is
#: 0 (the seeds' 0.15 when a config enables it).
OPTIONAL_COMPONENTS: tuple[str, ...] = ("retrieval",)
KNOWN_COMPONENTS: tuple[str, ...] = COMPONENTS + OPTIONAL_COMPONENTS
PENALTIES: tuple[str, ...] = ("wrong_tool", "hallucinated_tool", "redundant_call", "format_error", "timeout")


def _default_weights() -> dict[str, float]:
    return {
        "task_completion": 0.40,
        "tool_accuracy": 0.25,
        "efficiency": 0.15,
        "timing_quality": 0.10,
        "format_compliance": 0.10,
    }


def _default_penalties() -> dict[str, float]:
    return {
        "wrong_tool": -0.3,
        "hallucinated_tool": -0.4,
        "redundant_call": -0.2,
        "format_error": -0.1,
        "timeout": -0.5,
    }


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the reward components and values of the penalties."""

    weights: dict[str, float] = field(
        default_factory=_default_weights,
        metadata={"help": "Weight (finite, >= 0) of each component; renormalised to sum to 1, so "
                  "total = sum(w_k * c_k) + sum(penalties) <= 1."},
    )
    penalties: dict[str, float] = field(
        default_factory=_default_penalties,
        metadata={"help": "Value (<= 0) added once per offending call/step for each penalty kind."},
    )
    penalty_per_occurrence: bool = field(
        default=True,
        metadata={"help": "If true a penalty is added once per offence (e.g. per hallucinated call); "
                  "if false at most once per episode."},
    )
    max_penalty_total: float = field(
        default=-2.0,
        metadata={"help": "Floor on the summed penalties so a flood of bad calls cannot produce an "
                  "unbounded reward; set to -inf to disable."},
    )

    def __post_init__(self) -> None:
        validate_config(self)
        # Renormalised to sum to 1 so the total stays in [max_penalty_total, 1] whatever a client
        # sends (per request or per task): {"task_completion": 0.8} over the defaults means
        # "0.8 against 0.6 for the rest", not a total that can reach 1.4. The applied weights are
        # what to_dict() (and every info/score payload) reports. Defaults already sum to 1.
        top = max(self.weights.values(), default=0.0)
        if top <= 0:
            raise ValueError(f"the weights sum to 0 ({dict(self.weights)}): give at least one component a weight > 0; "
                             f"components: {list(KNOWN_COMPONENTS)}")
        scaled = sum(v / top for v in self.weights.values())  # scaled by the largest first: 5 x 1e308 must not overflow
        if abs(scaled * top - 1.0) > 1e-9:
            object.__setattr__(self, "weights", {k: (v / top) / scaled for k, v in self.weights.items()})

    def for_task(self, weights: dict[str, float] | None = None, penalties: dict[str, float] | None = None) -> RewardConfig:
        """This config with per-task overrides applied (unknown keys are rejected)."""
        if not weights and not penalties:
            return self
        return replace(self, weights={**self.weights, **(weights or {})}, penalties={**self.penalties, **(penalties or {})})

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RewardConfig:
        if not d:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown reward config keys {sorted(unknown)}; expected a subset of {sorted(known)}")
        base = cls()
        return replace(
            base,
            weights={**base.weights, **d.get("weights", {})},
            penalties={**base.penalties, **d.get("penalties", {})},
            penalty_per_occurrence=bool(d.get("penalty_per_occurrence", base.penalty_per_occurrence)),
            max_penalty_total=float(d.get("max_penalty_total", base.max_penalty_total)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": dict(self.weights),
            "penalties": dict(self.penalties),
            "penalty_per_occurrence": self.penalty_per_occurrence,
            "max_penalty_total": self.max_penalty_total,
        }


def validate_config(cfg: RewardConfig) -> None:
    """Reject configs that would make the reward meaningless (NaN, unknown keys, wrong signs)."""
    bad_w = set(cfg.weights) - set(KNOWN_COMPONENTS)
    if bad_w:
        raise ValueError(f"unknown reward component(s) {sorted(bad_w)}; known components: {list(KNOWN_COMPONENTS)}")
    bad_p = set(cfg.penalties) - set(PENALTIES)
    if bad_p:
        raise ValueError(f"unknown penalty kind(s) {sorted(bad_p)}; known penalties: {list(PENALTIES)}")
    for k, v in cfg.weights.items():
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"weight {k!r} must be a finite number >= 0, got {v!r}")
    for k, v in cfg.penalties.items():
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v > 0:
            raise ValueError(f"penalty {k!r} must be a finite number <= 0 (penalties subtract), got {v!r}")
    if math.isnan(cfg.max_penalty_total) or cfg.max_penalty_total > 0:
        raise ValueError(f"max_penalty_total must be <= 0 or -inf, got {cfg.max_penalty_total!r}")
