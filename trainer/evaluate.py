"""Held-out evaluation: run episodes on the server with the current policy and aggregate the reward breakdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from toolgym.trainer.config import TrainConfig
from toolgym.trainer.rollout import EpisodeSpec, HFGenerator, RolloutEngine, episode_metrics


def evaluate_policy(
    model: Any,
    tokenizer: Any,
    client: Any,
    task_ids: Sequence[str],
    cfg: TrainConfig,
    *,
    template: str | None = None,
    seed: int = 1234,
    prefix: str = "eval/",
) -> dict[str, float]:
    """Mean reward, each component/penalty and the valid fraction on ``task_ids`` (one episode each).

    Greedy by default (``eval.do_sample``), so start and end evaluations of a run are comparable and reproducible.
    """
    e = cfg.eval
    ids = list(task_ids)[: e.num_tasks] if e.num_tasks else list(task_ids)
    if not ids:
        return {}
    tpl = template or e.template or cfg.data.templates[0]
    gen = HFGenerator(model, tokenizer, do_sample=e.do_sample, temperature=1.0)
    engine = RolloutEngine(
        client,
        tokenizer,
        gen,
        max_turns=e.max_turns,
        max_turn_tokens=e.max_new_tokens,
        max_completion_length=e.max_turns * (e.max_new_tokens + 512),
    )
    eps = engine.run([EpisodeSpec(tid, seed=seed + i, template=tpl) for i, tid in enumerate(ids)])
    m = episode_metrics(eps)
    out = {prefix + k: v for k, v in m.items()}
    out[prefix + "episodes"] = float(len(eps))
    return out


__all__ = ["evaluate_policy"]
