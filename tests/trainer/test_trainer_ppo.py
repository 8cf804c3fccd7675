"""PPO (own implementation: TRL 1.16 ships no PPOTrainer) on the same rollouts and reward."""

from __future__ import annotations

import json

import pytest

from toolgym.trainer.config_load import config_from_dict
from toolgym.trainer.data import TaskSplit


def test_trl_has_no_ppo_trainer():
    import trl

    assert not hasattr(trl, "PPOTrainer")
    with pytest.raises(ImportError):
        __import__("trl.experimental.ppo")


def test_gae_skips_observation_positions():
    import torch

    from toolgym.trainer.ppo import gae

    rewards = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 9.0, 0.5, 0.5]])  # position 1 is an observation token: ignored
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    assert adv[0, 3].item() == pytest.approx(0.5)  # 1 - 0.5
    assert adv[0, 2].item() == pytest.approx(0.5)  # 0 + 0.5 - 0.5 + 0.5
    assert adv[0, 0].item() == pytest.approx(0.5)
    assert adv[0, 1].item() == 0.0
    assert ret[0, 3].item() == pytest.approx(1.0)


def test_ppo_runs_and_logs(tiny_model_dir, tmp_path, live_server, unscorable_task):
    from toolgym.trainer.common import MetricsLog
    from toolgym.trainer.ppo import train_ppo

    cfg = config_from_dict({
        "output_dir": str(tmp_path), "model": {"name_or_path": tiny_model_dir},
        "ppo": {"max_steps": 2, "rollout_batch_size": 4, "mini_batch_size": 2, "ppo_epochs": 1, "max_completion_length": 32,
                "max_turn_tokens": 12, "max_turns": 2, "learning_rate": 1e-4, "kl_coef": 0.05},
        "eval": {"max_new_tokens": 8, "max_turns": 1},
    })
    split = TaskSplit(train=["simple_python_0", "toolgym_python_0", unscorable_task], heldout=["irrelevance_0"], prompts={}, kinds={})
    metrics = MetricsLog(tmp_path / "m.jsonl")
    summary = train_ppo(cfg, address=live_server.address, split=split, metrics=metrics)
    assert (tmp_path / "ppo" / "final" / "value_head.pt").is_file()
    rows = [r for r in metrics.read() if r["stage"] == "ppo"]
    assert len(rows) == 2
    for k in ("ppo/policy_loss", "ppo/value_loss", "ppo/kl_ref", "reward/total", "reward/format_compliance", "reward_weighted/task_completion"):
        assert k in rows[-1], k
    assert "eval_start" in summary and "eval_end" in summary
    for when in ("eval_start", "eval_end"):  # the held-out episode ran on the server and got a valid score
        assert summary[when]["eval/episodes"] == 1.0 and summary[when]["eval/reward/valid_fraction"] == 1.0
    json.dumps(summary)


def test_ppo_with_lora(tiny_model_dir, tmp_path, live_server):
    from transformers import AutoModelForCausalLM

    from toolgym.trainer.ppo import train_ppo

    cfg = config_from_dict({
        "output_dir": str(tmp_path), "model": {"name_or_path": tiny_model_dir, "use_peft": True, "lora_r": 4},
        "ppo": {"max_steps": 1, "rollout_batch_size": 2, "mini_batch_size": 2, "ppo_epochs": 1, "max_completion_length": 16,
                "max_turn_tokens": 8, "max_turns": 1, "kl_coef": 0.1, "eval_heldout": False},
    })
    summary = train_ppo(cfg, address=live_server.address,
                        split=TaskSplit(train=["simple_python_0"], heldout=[], prompts={}, kinds={}))
    model = AutoModelForCausalLM.from_pretrained(summary["final_model"])
    assert not any("lora" in n for n, _ in model.named_parameters())
