"""What a rollout produces: :class:`Episode` (ids, masks, actions, the server's score), and its metrics.

:class:`EpisodeSpec` says what to reset; :class:`Episode` is filled in by
:class:`~toolgym.trainer.rollout.RolloutEngine`; :func:`episode_metrics` flattens a batch's reward breakdown
(components, weighted components, penalties) into metric names. ``COMPONENTS``, ``PENALTIES`` and
``DEFAULT_WEIGHTS`` mirror the server's reward contract. Import through :mod:`toolgym.trainer.rollout`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

COMPONENTS = ("task_completion", "tool_accuracy", "efficiency", "timing_quality", "format_compliance")
PENALTIES = ("wrong_tool", "hallucinated_tool", "redundant_call", "format_error", "timeout")
DEFAULT_WEIGHTS = {
    "task_completion": 0.40,
    "tool_accuracy": 0.25,
    "efficiency": 0.15,
    "timing_quality": 0.10,
    "format_compliance": 0.10,
}
"""The reward contract's default weights (design §4), used to log weighted components when the server's
response does not say which weights it applied."""


@dataclass(frozen=True)
class EpisodeSpec:
    """What to reset: a task, an episode seed and (optionally) a template. Rows of one GRPO group share all three."""

    task_id: str | None = None
    seed: int | None = None
    template: str | None = None


@dataclass
class Episode:
    spec: EpisodeSpec
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    actions: list[str] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    prompt_messages: list[dict[str, str]] = field(default_factory=list)
    session_id: str | None = None
    template: str | None = None
    task_id: str | None = None
    terminated: bool = False
    truncated: bool = False
    budget_exhausted: bool = False
    total: float | None = None
    components: dict[str, float] = field(default_factory=dict)
    penalties: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    valid: bool = False
    feedback: str = ""
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated or self.error is not None

    @property
    def reward(self) -> float | None:
        """The server's total, or None when the score is invalid (dropped from updates, never counted as 0)."""
        return self.total if self.valid and self.total is not None and math.isfinite(self.total) else None

    @property
    def completion_text(self) -> str:
        return "\n".join(self.actions)


def episode_metrics(episodes: Sequence[Episode], default_weights: dict[str, float] | None = None) -> dict[str, float]:
    """Aggregate the reward breakdown of finished episodes (valid ones only), as flat metric names.

    - ``reward/total``: mean server total.
    - ``reward/<component>``: mean raw component, in [0, 1].
    - ``reward_weighted/<component>``: mean ``w_k * c_k`` — the component's contribution to the total, with the
      weights the server applied (from its response) or the contract defaults.
    - ``penalty/<name>``: mean penalty contribution per episode (<= 0; penalties are added to the total as-is).
    - ``penalty_rate/<name>``: fraction of episodes where the penalty applied.
    - ``reward/valid_fraction``: share of episodes with a valid score; invalid ones are excluded above and from the
      policy update.
    """
    weights_default = dict(default_weights or DEFAULT_WEIGHTS)
    valid = [e for e in episodes if e.reward is not None]
    out: dict[str, float] = {"reward/valid_fraction": (len(valid) / len(episodes)) if episodes else 0.0}
    if not valid:
        return out
    out["reward/total"] = sum(e.reward for e in valid) / len(valid)  # type: ignore[misc]
    comps = sorted({k for e in valid for k in e.components} | set(COMPONENTS))
    for k in comps:
        vals = [e.components.get(k, 0.0) for e in valid]
        out[f"reward/{k}"] = sum(vals) / len(vals)
        wv = [e.components.get(k, 0.0) * (e.weights or weights_default).get(k, weights_default.get(k, 0.0)) for e in valid]
        out[f"reward_weighted/{k}"] = sum(wv) / len(wv)
    pens = sorted({k for e in valid for k in e.penalties} | set(PENALTIES))
    for k in pens:
        vals = [e.penalties.get(k, 0.0) for e in valid]
        out[f"penalty/{k}"] = sum(vals) / len(vals)
        out[f"penalty_rate/{k}"] = sum(1 for v in vals if v != 0.0) / len(vals)
    out["episode/turns"] = sum(len(e.actions) for e in valid) / len(valid)
    return out


__all__ = [
    "COMPONENTS",
    "DEFAULT_WEIGHTS",
    "Episode",
    "EpisodeSpec",
    "PENALTIES",
    "episode_metrics",
]
