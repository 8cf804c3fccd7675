"""GRPO on TRL with rollouts that are episodes on a toolgym server.

Why ``rollout_func`` and not ``environment_factory``: TRL's ``environment_factory`` exposes an environment's
*Python methods* as the tools, discovered once at start-up, parses tool calls itself with the chat template's
response schema (Hermes/Qwen ``<tool_call>`` only), executes them in the trainer process and renders results
with the chat template's ``tool`` role. toolgym's tools differ per task (BFCL offers thousands of distinct
functions), an episode may use any of seven agent templates (template diversity), and the env — not the trainer
— must parse actions (one parser shared with scoring and evals) and run calls in its sandbox. ``rollout_func``
hands the whole episode to us: we reset/step the server with the raw action text, append its rendered
observations token-exactly, and return ``prompt_ids``/``completion_ids``/``logprobs`` plus ``env_mask`` (TRL's
``tool_mask``: 0 on observation tokens, so they are not trained on). Generation inside the rollout goes through
TRL's own ``_generate_single_turn`` (transformers, continuous batching or vLLM colocate/server), so ``use_vllm``
works unchanged.

A group: TRL repeats each dataset row ``num_generations`` times; a row carries ``task_id``, ``seed`` and
``template``, so every episode of a group resets the same task with the same seed and template. The reward is
the server's terminal ``total`` (:class:`~toolgym.trainer.rewards.EpisodeReward`); an episode whose score is
invalid (or whose reset/step failed) gets reward ``None`` — excluded from the group baseline, advantage 0 — and
an all-zero ``env_mask``, so none of its tokens enter the loss.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolgym.trainer.common import (
    close_if_owned,
    MetricsLog,
    bf16_default,
    check_extra,
    load_model,
    load_tokenizer,
    make_client,
    metrics_callback,
    metrics_path,
    peft_config,
    resolve_model_path,
    save_final_model,
    server_address,
    set_seed,
)
from toolgym.trainer.config import TrainConfig
from toolgym.trainer.data import TaskSplit, rl_rows, rl_split
from toolgym.trainer.evaluate import evaluate_policy
from toolgym.trainer.rewards import EpisodeReward
from toolgym.trainer.rollout import Episode, EpisodeSpec, RolloutEngine, episode_metrics

log = logging.getLogger("toolgym.trainer.grpo")


def _tokenizer_of(trainer: Any) -> Any:
    tok = getattr(trainer, "_tokenizer", None)
    if tok is not None:
        return tok
    pc = trainer.processing_class
    return getattr(pc, "tokenizer", pc)


class TRLGenerate:
    """``GenerateFn`` over a GRPOTrainer's own generation path (transformers / continuous batching / vLLM)."""

    def __init__(self, trainer: Any):
        self.trainer = trainer

    def __call__(self, prompts: list[list[int]], max_new_tokens: int) -> tuple[list[list[int]], list[list[float]] | None]:
        t = self.trainer
        if getattr(t, "use_vllm", False):
            holder, attr = t.vllm_generation, "max_completion_length"
        else:
            holder, attr = t.generation_config, "max_new_tokens"
        old = getattr(holder, attr)
        setattr(holder, attr, int(max_new_tokens))
        try:
            ids, lps = t._generate_single_turn(prompts, None, {}, 1)
        finally:
            setattr(holder, attr, old)
        return [list(x) for x in ids], lps


class ToolgymRollout:
    """A TRL ``rollout_func``: one server episode per completion (see the module docstring).

    Rows come from :class:`ToolgymGRPOTrainer` (which keeps the batch's dataset rows for us); with a plain
    ``GRPOTrainer`` pass ``rows_by_prompt`` (prompt → row) so the rollout can recover each prompt's task.
    """

    def __init__(
        self,
        address: Any,
        *,
        max_turns: int = 4,
        max_turn_tokens: int = 128,
        max_completion_length: int = 256,
        timeout: float = 60.0,
        rows_by_prompt: dict[str, dict[str, Any]] | None = None,
    ):
        self.address = address
        self.max_turns = max_turns
        self.max_turn_tokens = max_turn_tokens
        self.max_completion_length = max_completion_length
        self.timeout = timeout
        self.rows_by_prompt = rows_by_prompt or {}
        self._client = None if isinstance(address, str) else address
        self.last_episodes: list[Episode] = []

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.address, self.timeout)
        return self._client

    def _rows(self, prompts: Sequence[Any], trainer: Any) -> list[dict[str, Any]]:
        rows = getattr(trainer, "_toolgym_rows", None)
        if rows is not None and len(rows) == len(prompts):
            return list(rows)
        out = []
        for p in prompts:
            key = p if isinstance(p, str) else json.dumps(p, sort_keys=True)
            if key not in self.rows_by_prompt:
                raise KeyError("ToolgymRollout cannot tell which task a prompt belongs to: use ToolgymGRPOTrainer or rows_by_prompt")
            out.append(self.rows_by_prompt[key])
        return out

    def __call__(self, prompts: Sequence[Any], trainer: Any) -> dict[str, Any]:
        rows = self._rows(prompts, trainer)
        specs = [EpisodeSpec(r.get("task_id"), r.get("seed"), r.get("template")) for r in rows]
        sync_fn = None
        acc = getattr(trainer, "accelerator", None)
        if acc is not None and acc.num_processes > 1:
            import torch

            def sync_fn(local_more: bool) -> bool:
                flag = torch.tensor([1 if local_more else 0], device=acc.device)
                return bool(acc.gather(flag).sum().item() > 0)

        tok = _tokenizer_of(trainer)
        engine = RolloutEngine(
            self.client,
            tok,
            TRLGenerate(trainer),
            max_turns=self.max_turns,
            max_turn_tokens=self.max_turn_tokens,
            max_completion_length=self.max_completion_length,
            sync_fn=sync_fn,
        )
        want_lp = bool(getattr(trainer, "use_vllm", False))
        eps = engine.run(specs, want_logprobs=want_lp)
        self.last_episodes = eps
        return self.to_trl(eps, tok, want_lp)

    @staticmethod
    def to_trl(eps: Sequence[Episode], tokenizer: Any, want_logprobs: bool) -> dict[str, Any]:
        eos = tokenizer.eos_token_id
        prompt_ids, completion_ids, env_mask, logprobs = [], [], [], []
        for e in eps:
            p = e.prompt_ids or [eos]
            c = e.completion_ids or [eos]
            m = e.env_mask if e.completion_ids else [0]
            if e.reward is None:  # invalid / failed episode: no token of it is trained on
                m = [0] * len(c)
            prompt_ids.append(list(p))
            completion_ids.append(list(c))
            env_mask.append(list(m))
            if want_logprobs:
                lp = list(e.logprobs or [])
                logprobs.append((lp + [0.0] * len(c))[: len(c)])
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": completion_ids,
            "logprobs": logprobs if want_logprobs else None,
            "env_mask": env_mask,
            "toolgym_total": [e.total for e in eps],
            "toolgym_valid": [e.reward is not None for e in eps],
            "toolgym_components": [dict(e.components) for e in eps],
            "toolgym_penalties": [dict(e.penalties) for e in eps],
            "toolgym_weights": [dict(e.weights) for e in eps],
            "toolgym_turns": [len(e.actions) for e in eps],
            "toolgym_template": [e.template for e in eps],
            "toolgym_error": [e.error or "" for e in eps],
        }


@functools.cache
def _grpo_trainer_class() -> type:
    from trl import GRPOTrainer

    class ToolgymGRPOTrainer(GRPOTrainer):
        """GRPOTrainer that exposes the batch's dataset rows to the rollout function (task id, seed, template)."""

        _toolgym_rows: list[dict[str, Any]] | None = None

        def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
            self._toolgym_rows = inputs
            try:
                return super()._generate_and_score_completions(inputs)
            finally:
                self._toolgym_rows = None

    return ToolgymGRPOTrainer


def __getattr__(name: str) -> Any:  # lazy: importing toolgym.trainer.grpo does not import TRL
    if name == "ToolgymGRPOTrainer":
        return _grpo_trainer_class()
    raise AttributeError(name)


def grpo_args(cfg: TrainConfig, out: Path) -> Any:
    from trl import GRPOConfig

    g = cfg.grpo
    kw: dict[str, Any] = dict(
        output_dir=str(out),
        max_steps=g.max_steps,
        learning_rate=g.learning_rate,
        per_device_train_batch_size=g.per_device_train_batch_size,
        gradient_accumulation_steps=g.gradient_accumulation_steps,
        num_generations=g.num_generations,
        max_completion_length=g.max_completion_length,
        temperature=g.temperature,
        top_p=g.top_p,
        beta=g.beta,
        loss_type=g.loss_type,
        scale_rewards=g.scale_rewards,
        num_iterations=g.num_iterations,
        epsilon=g.epsilon,
        use_vllm=g.use_vllm,
        vllm_mode=g.vllm_mode,
        vllm_gpu_memory_utilization=g.vllm_gpu_memory_utilization,
        vllm_tensor_parallel_size=g.vllm_tensor_parallel_size,
        vllm_server_host=g.vllm_server_host,
        vllm_server_port=g.vllm_server_port,
        bf16=bf16_default(g.bf16),
        logging_steps=g.logging_steps,
        save_strategy="steps" if g.save_steps > 0 else "no",
        save_steps=g.save_steps if g.save_steps > 0 else 500,
        report_to=[],
        seed=cfg.seed,
        log_completions=g.log_completions,
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        disable_tqdm=True,
        shuffle_dataset=True,
    )
    if g.vllm_server_base_url:
        kw["vllm_server_base_url"] = g.vllm_server_base_url
    kw.update(check_extra(g.extra, GRPOConfig, "grpo"))
    return GRPOConfig(**kw)


def build_grpo_trainer(
    cfg: TrainConfig,
    address: Any,
    *,
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    callbacks: list[Any] | None = None,
    out: Path | None = None,
) -> Any:
    from datasets import Dataset

    out = out or Path(cfg.output_dir) / "grpo"
    g = cfg.grpo
    rollout = ToolgymRollout(
        address,
        max_turns=g.max_turns,
        max_turn_tokens=g.max_turn_tokens,
        max_completion_length=g.max_completion_length,
        timeout=cfg.server.timeout,
    )
    cls = _grpo_trainer_class()
    trainer = cls(
        model=model,
        reward_funcs=[EpisodeReward()],
        args=grpo_args(cfg, out),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config(cfg.model),
        rollout_func=rollout,
        callbacks=callbacks or [],
    )
    trainer.toolgym_rollout = rollout
    return trainer


def train_grpo(
    cfg: TrainConfig,
    *,
    address: str | None = None,
    model_path: str | None = None,
    split: TaskSplit | None = None,
    metrics: MetricsLog | None = None,
) -> dict[str, Any]:
    """Run GRPO against a toolgym server (the configured one, or an in-process one); returns a summary dict.

    The summary has ``final_model`` and, with ``grpo.eval_heldout``, ``eval_start``/``eval_end`` (held-out mean
    reward, every component, format_compliance, valid fraction), also written to ``metrics.jsonl``.
    """
    if address is None:
        with server_address(cfg.server) as addr:
            return train_grpo(cfg, address=addr, model_path=model_path, split=split, metrics=metrics)
    set_seed(cfg.seed)
    out = Path(cfg.output_dir) / "grpo"
    path = model_path or resolve_model_path(cfg.model, cfg.output_dir)
    tokenizer = load_tokenizer(path, cfg.model.trust_remote_code)
    model = load_model(path, cfg.model)
    split = split or rl_split(cfg, tokenizer)
    rows = rl_rows(split.train, cfg, split.prompts)
    if not rows:
        raise ValueError("no GRPO training tasks: check data.categories / data.max_prompt_tokens")
    metrics = metrics or MetricsLog(metrics_path(cfg))
    client = make_client(address, cfg.server.timeout, cfg.server.transport)
    summary: dict[str, Any] = {"train_tasks": len(split.train), "heldout_tasks": len(split.heldout), "seed": cfg.seed}
    try:
        trainer = build_grpo_trainer(
            cfg, client, model=model, tokenizer=tokenizer, rows=rows, callbacks=[metrics_callback(metrics, "grpo")], out=out
        )
        from toolgym.trainer.throughput import instrument_grpo

        meter = instrument_grpo(trainer)  # perf/* (tokens/s, generation and server shares, peak RSS) in the logs
        acc = trainer.accelerator
        # Held-out evaluation generates on the main process alone: not possible with parameters sharded (ZeRO-3).
        do_eval = cfg.grpo.eval_heldout and bool(split.heldout) and acc.is_main_process
        if do_eval and getattr(trainer, "is_deepspeed_enabled", False) and acc.num_processes > 1:
            log.warning("grpo.eval_heldout skipped: held-out evaluation is single-process and parameters are sharded")
            do_eval = False
        if do_eval:
            summary["eval_start"] = evaluate_policy(model, tokenizer, client, split.heldout, cfg)
            metrics.write("grpo_eval", 0, summary["eval_start"], when="start")
        trainer.train()
        final = out / "final"
        summary["steps"] = trainer.state.global_step
        summary["perf"] = meter.snapshot()
        if do_eval:
            summary["eval_end"] = evaluate_policy(acc.unwrap_model(trainer.model), tokenizer, client, split.heldout, cfg)
            metrics.write("grpo_eval", trainer.state.global_step, summary["eval_end"], when="end")
        summary["final_model"] = str(final)
        if acc.is_main_process:
            save_final_model(acc.unwrap_model(trainer.model), tokenizer, final)
            (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    finally:
        close_if_owned(client, address)
    return summary


def improvement(summary: dict[str, Any], key: str) -> float:
    a = summary.get("eval_start", {}).get(f"eval/{key}")
    b = summary.get("eval_end", {}).get(f"eval/{key}")
    if a is None or b is None:
        return math.nan
    return b - a


__all__ = ["EpisodeReward", "TRLGenerate", "ToolgymRollout", "build_grpo_trainer", "episode_metrics", "grpo_args", "improvement", "train_grpo"]
