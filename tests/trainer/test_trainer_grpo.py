"""GRPO plumbing against a live server: groups, masks, dropped invalid scores, metrics, the plain-TRL path."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolgym.trainer.config_load import config_from_dict
from toolgym.trainer.grpo import ToolgymRollout, build_grpo_trainer
from toolgym.trainer.rollout import COMPONENTS, PENALTIES, Episode, EpisodeSpec


def _cfg(tmp_path: Path, **grpo):
    g = {"max_steps": 2, "per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 40,
         "max_turn_tokens": 16, "max_turns": 3, "learning_rate": 1e-3, "logging_steps": 1, **grpo}
    return config_from_dict({"output_dir": str(tmp_path), "grpo": g})


def test_grpo_with_live_env(tiny_model_dir, tokenizer, tmp_path, client, unscorable_task):
    from toolgym.trainer.common import load_model

    cfg = _cfg(tmp_path)
    # single-turn call, tool-then-answer (sandboxed python), unscorable (valid=False) and no-call tasks; multi-turn
    # GRPO is test_trainer_e2e's (BFCL multi-turn prompts run to thousands of tokens: slow on CPU)
    tasks = ["simple_python_0", "toolgym_python_0", unscorable_task, "irrelevance_0"]
    rows = [{"prompt": f"p{i}", "task_id": t, "seed": 10 + i, "template": "hermes"} for i, t in enumerate(tasks)]
    trainer = build_grpo_trainer(cfg, client, model=load_model(tiny_model_dir, cfg.model), tokenizer=tokenizer, rows=rows)
    trainer.train()
    assert trainer.state.global_step == 2
    eps = trainer.toolgym_rollout.last_episodes
    assert len(eps) == 4
    # a group (consecutive num_generations rollouts) shares task, seed and template
    for a, b in zip(eps[::2], eps[1::2]):
        assert (a.spec.task_id, a.spec.seed, a.spec.template) == (b.spec.task_id, b.spec.seed, b.spec.template)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert logs
    for k in COMPONENTS:
        assert f"reward/{k}" in logs[0] and f"reward_weighted/{k}" in logs[0]
    for k in PENALTIES:
        assert f"penalty/{k}" in logs[0]
    assert all(e.error is None for e in eps)  # every episode ran to a server verdict
    for e in eps:
        assert (e.reward is None) == (e.task_id == unscorable_task)
    assert any(h["reward/valid_fraction"] < 1.0 for h in logs) or all(e.spec.task_id != unscorable_task for e in eps)


def test_to_trl_masks_invalid_episodes(tokenizer):
    good, bad = Episode(spec=EpisodeSpec("a")), Episode(spec=EpisodeSpec("b"))
    for e in (good, bad):
        e.prompt_ids, e.completion_ids, e.env_mask, e.actions = [1, 2], [5, 6, 7], [1, 0, 1], ["x"]
        e.total, e.terminated = 0.5, True
    good.valid, bad.valid = True, False
    out = ToolgymRollout.to_trl([good, bad], tokenizer, want_logprobs=False)
    assert out["env_mask"] == [[1, 0, 1], [0, 0, 0]]  # none of an invalid episode's tokens is trained on
    assert out["toolgym_valid"] == [True, False] and out["logprobs"] is None
    assert out["completion_ids"] == [[5, 6, 7], [5, 6, 7]]


def test_rollout_func_with_plain_grpo_trainer(tiny_model_dir, tokenizer, tmp_path, client):
    """ToolgymRollout also plugs into an unmodified trl.GRPOTrainer (rows recovered from the prompt)."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from toolgym.trainer.common import load_model
    from toolgym.trainer.grpo import grpo_args
    from toolgym.trainer.rewards import EpisodeReward

    cfg = _cfg(tmp_path, max_steps=1)
    rows = [{"prompt": "solve a", "task_id": "simple_python_0", "seed": 1, "template": "hermes"},
            {"prompt": "solve b", "task_id": "toolgym_python_0", "seed": 2, "template": "hermes"}]
    rollout = ToolgymRollout(client, max_turns=2, max_turn_tokens=8, max_completion_length=32,
                             rows_by_prompt={r["prompt"]: r for r in rows})
    trainer = GRPOTrainer(model=load_model(tiny_model_dir, cfg.model), reward_funcs=[EpisodeReward()],
                          args=grpo_args(cfg, tmp_path / "g"), train_dataset=Dataset.from_list(rows * 2),
                          processing_class=tokenizer, rollout_func=rollout)
    trainer.train()
    assert {e.spec.task_id for e in rollout.last_episodes} <= {"simple_python_0", "toolgym_python_0"}
    assert all(e.task_id == e.spec.task_id and e.reward is not None for e in rollout.last_episodes)  # scored by the server


def test_remote_reward_in_a_stock_grpo_trainer(tiny_model_dir, tokenizer, tmp_path, live_server):
    """RemoteReward works as a reward function of any TRL trainer (single-turn TRL generation here)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from toolgym.trainer.common import load_model
    from toolgym.trainer.data import load_tasks, prompt_messages
    from toolgym.trainer.rewards import RemoteReward

    tasks = load_tasks("bfcl", ["simple_python"])[:2]
    ds = Dataset.from_list([{"prompt": prompt_messages(t, "hermes"), "task_id": t.id} for t in tasks])
    args = GRPOConfig(output_dir=str(tmp_path / "rr"), max_steps=1, per_device_train_batch_size=4, num_generations=2,
                      max_completion_length=8, report_to=[], logging_steps=1, disable_tqdm=True, bf16=False)
    tok = tokenizer.__class__.from_pretrained(tiny_model_dir)
    tok.response_template = None  # plain-text completions
    trainer = GRPOTrainer(model=load_model(tiny_model_dir, config_from_dict({}).model),
                          reward_funcs=[RemoteReward(live_server.address, template="hermes")], args=args,
                          train_dataset=ds, processing_class=tok)
    trainer.train()
    log = trainer.state.log_history[0]
    assert "rewards/toolgym/mean" in log and "reward/format_compliance" in log


@pytest.mark.parametrize("use_vllm", [False])
def test_grpo_args_cpu_defaults(tmp_path, use_vllm):
    from toolgym.trainer.grpo import grpo_args

    args = grpo_args(_cfg(tmp_path, use_vllm=use_vllm), tmp_path)
    assert args.bf16 is False and args.num_generations == 2 and args.use_vllm is use_vllm
