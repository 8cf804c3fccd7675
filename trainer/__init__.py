"""toolgym.trainer — train tool-using policies against a toolgym server with TRL.

Stages (seeds' pipeline SFT → RL → evaluation): :func:`train_sft` (warm-up on ground-truth trajectories in the
env's templates), :func:`train_grpo` (TRL GRPOTrainer; rollouts are multi-turn episodes on the server),
:func:`train_ppo`, :func:`train_dpo`, and :func:`run_pipeline`. :class:`RemoteReward` is a TRL reward function
scoring completions on the server (``reward_funcs=[RemoteReward("127.0.0.1:50051")]``).
:func:`build_tiny_model` builds an offline tiny tokenizer+model for tests and CPU demos.

Imports are lazy: ``import toolgym.trainer`` loads neither torch nor TRL, and nothing here imports vLLM,
DeepSpeed or flash-attn unless a config asks for them.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RemoteReward": "toolgym.trainer.rewards",
    "EpisodeReward": "toolgym.trainer.rewards",
    "build_tiny_model": "toolgym.trainer.tiny",
    "TrainConfig": "toolgym.trainer.config",
    "ConfigError": "toolgym.trainer.config",
    "load_config": "toolgym.trainer.config_load",
    "config_from_dict": "toolgym.trainer.config_load",
    "train_sft": "toolgym.trainer.sft",
    "train_grpo": "toolgym.trainer.grpo",
    "ToolgymRollout": "toolgym.trainer.grpo",
    "ToolgymGRPOTrainer": "toolgym.trainer.grpo",
    "train_ppo": "toolgym.trainer.ppo",
    "train_dpo": "toolgym.trainer.dpo",
    "train_dpo_on_groups": "toolgym.trainer.dpo",
    "build_preference_pairs": "toolgym.trainer.dpo",
    "run_pipeline": "toolgym.trainer.pipeline",
    "RolloutEngine": "toolgym.trainer.rollout",
    "EpisodeSpec": "toolgym.trainer.rollout",
    "HFGenerator": "toolgym.trainer.rollout",
    "evaluate_policy": "toolgym.trainer.evaluate",
    "CoresetSelector": "toolgym.trainer.coreset",
    "OnlineContinualLearner": "toolgym.trainer.coreset",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'toolgym.trainer' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)


def __dir__() -> list[str]:
    return __all__
