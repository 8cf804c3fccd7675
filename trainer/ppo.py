"""PPO with the same server rollouts and reward as GRPO.

Where PPO lives in TRL 1.16: nowhere. ``trl.PPOTrainer`` moved to ``trl.experimental.ppo`` in the 0.2x series and
that experimental home was later removed; TRL 1.16 ships neither (checked: no ``PPOTrainer`` in ``trl``,
``trl.trainer`` or ``trl.experimental``). So this module implements PPO itself, on the same pieces GRPO uses:

- rollouts: :class:`~toolgym.trainer.rollout.RolloutEngine` episodes on the server (multi-turn, token-exact,
  ``env_mask`` 0 on observation tokens), generated with the policy (``HFGenerator``, sampling);
- reward: the server's terminal ``total`` at the last action token, plus a per-token KL penalty
  ``-kl_coef * (log π - log π_ref)`` on action tokens (the reference is the initial policy); invalid episodes are
  dropped from the batch (not scored 0);
- critic: a scalar value head on the policy's last hidden state (shared trunk);
- advantages: GAE(γ, λ) over the action tokens of an episode (observation tokens are skipped — they are the
  environment's, not decisions), whitened per batch;
- update: clipped surrogate + clipped value loss, ``ppo_epochs`` passes of minibatches, through ``accelerate``
  (bf16 autocast on GPU, DDP across processes — each process runs its own rollouts); LoRA via ``model.use_peft``
  (the reference is the adapter-disabled base). ZeRO-3 and vLLM are GRPO-only.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

from toolgym.trainer.common import (
    close_if_owned,
    MetricsLog,
    bf16_default,
    load_model,
    load_tokenizer,
    make_client,
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
from toolgym.trainer.rollout import Episode, EpisodeSpec, HFGenerator, RolloutEngine, episode_metrics

log = logging.getLogger("toolgym.trainer.ppo")


def _batch_tensors(eps: list[Episode], pad_id: int) -> dict[str, Any]:
    """Right-padded ``input_ids``/``attention_mask`` and, per completion position, an action mask."""
    import torch

    seqs = [e.prompt_ids + e.completion_ids for e in eps]
    width = max(len(s) for s in seqs)
    n = len(eps)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    att = torch.zeros((n, width), dtype=torch.long)
    act = torch.zeros((n, width), dtype=torch.float32)  # 1 where position t holds a sampled token
    for i, (e, s) in enumerate(zip(eps, seqs)):
        ids[i, : len(s)] = torch.tensor(s)
        att[i, : len(s)] = 1
        p = len(e.prompt_ids)
        for j, m in enumerate(e.env_mask):
            if m:
                act[i, p + j] = 1.0
    return {"input_ids": ids, "attention_mask": att, "action_mask": act}


def _logprobs_values(model: Any, value_head: Any, ids: Any, att: Any, *, need_values: bool = True) -> tuple[Any, Any, Any]:
    """Per-position log-prob of the token *at* t (from logits at t-1), entropy, and the value at t-1."""
    import torch

    out = model(input_ids=ids, attention_mask=att, output_hidden_states=need_values)
    logits = out.logits[:, :-1].float()
    logp_all = logits.log_softmax(-1)
    tgt = ids[:, 1:]
    lp = logp_all.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    ent = -(logp_all.exp() * logp_all).sum(-1)
    pad = torch.zeros((ids.size(0), 1), device=ids.device)
    lp = torch.cat([pad, lp], dim=1)  # align: lp[:, t] is log p(ids[t] | ids[<t])
    ent = torch.cat([pad, ent], dim=1)
    vals = None
    if need_values:
        h = out.hidden_states[-1][:, :-1].float()
        vals = torch.cat([pad, value_head(h).squeeze(-1)], dim=1)  # V(state before token t)
    return lp, ent, vals


def gae(rewards: Any, values: Any, mask: Any, gamma: float, lam: float) -> tuple[Any, Any]:
    """GAE over the positions where ``mask`` is 1 (others are skipped, not treated as steps)."""
    import torch

    adv = torch.zeros_like(rewards)
    n, t_max = rewards.shape
    for i in range(n):
        idx = mask[i].nonzero(as_tuple=True)[0].tolist()
        last = 0.0
        for k in range(len(idx) - 1, -1, -1):
            t = idx[k]
            nxt = values[i, idx[k + 1]] if k + 1 < len(idx) else 0.0
            delta = rewards[i, t] + gamma * nxt - values[i, t]
            last = delta + gamma * lam * last
            adv[i, t] = last
    return adv, adv + values


def train_ppo(
    cfg: TrainConfig,
    *,
    address: str | None = None,
    model_path: str | None = None,
    split: TaskSplit | None = None,
    metrics: MetricsLog | None = None,
) -> dict[str, Any]:
    if address is None:
        with server_address(cfg.server) as addr:
            return train_ppo(cfg, address=addr, model_path=model_path, split=split, metrics=metrics)
    import torch
    from accelerate import Accelerator

    p = cfg.ppo
    set_seed(cfg.seed)
    bf16 = bf16_default(p.bf16)
    acc = Accelerator(mixed_precision="bf16" if bf16 else "no")
    out = Path(cfg.output_dir) / "ppo"
    path = model_path or resolve_model_path(cfg.model, cfg.output_dir)
    tok = load_tokenizer(path, cfg.model.trust_remote_code)
    policy = load_model(path, cfg.model)
    lora = peft_config(cfg.model)
    if lora is not None:  # LoRA: the reference policy is the base with the adapter disabled (no second copy)
        from peft import get_peft_model

        policy = get_peft_model(policy, lora)
    ref = load_model(path, cfg.model) if p.kl_coef > 0 and lora is None else None
    if ref is not None:
        ref.eval().requires_grad_(False)
    hidden = policy.config.get_text_config().hidden_size
    value_head = torch.nn.Linear(hidden, 1)
    torch.nn.init.zeros_(value_head.weight)
    torch.nn.init.zeros_(value_head.bias)
    opt = torch.optim.AdamW(
        [
            {"params": [q for q in policy.parameters() if q.requires_grad], "lr": p.learning_rate},
            {"params": value_head.parameters(), "lr": p.critic_learning_rate},
        ]
    )
    policy, value_head, opt = acc.prepare(policy, value_head, opt)
    if ref is not None:
        ref = ref.to(acc.device)
    split = split or rl_split(cfg, tok)
    rows = rl_rows(split.train, cfg, split.prompts)
    if not rows:
        raise ValueError("no PPO training tasks")
    rng = random.Random(cfg.seed + acc.process_index)
    metrics = metrics or MetricsLog(metrics_path(cfg))
    client = make_client(address, cfg.server.timeout)
    summary: dict[str, Any] = {"train_tasks": len(split.train), "heldout_tasks": len(split.heldout), "seed": cfg.seed}
    unwrapped = acc.unwrap_model(policy)
    gen = HFGenerator(unwrapped, tok, do_sample=True, temperature=p.temperature)
    engine = RolloutEngine(
        client, tok, gen, max_turns=p.max_turns, max_turn_tokens=p.max_turn_tokens, max_completion_length=p.max_completion_length
    )
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    try:
        if cfg.ppo.eval_heldout and split.heldout and acc.is_main_process:
            summary["eval_start"] = evaluate_policy(unwrapped, tok, client, split.heldout, cfg)
            metrics.write("ppo_eval", 0, summary["eval_start"], when="start")
        for it in range(1, p.max_steps + 1):
            batch_rows = [rng.choice(rows) for _ in range(p.rollout_batch_size)]
            eps = engine.run([EpisodeSpec(r["task_id"], r["seed"], r["template"]) for r in batch_rows])
            stats = episode_metrics(eps)
            eps = [e for e in eps if e.reward is not None and any(e.env_mask)]  # invalid scores are dropped
            if not eps:
                metrics.write("ppo", it, {**stats, "ppo/skipped": 1.0})
                continue
            b = {k: v.to(acc.device) for k, v in _batch_tensors(eps, pad_id).items()}
            act = b["action_mask"]
            with torch.no_grad():
                old_lp, _, old_v = _logprobs_values(policy, value_head, b["input_ids"], b["attention_mask"])
                if ref is not None:
                    ref_lp = _logprobs_values(ref, None, b["input_ids"], b["attention_mask"], need_values=False)[0]
                elif lora is not None and p.kl_coef > 0:
                    with acc.unwrap_model(policy).disable_adapter():
                        ref_lp = _logprobs_values(policy, None, b["input_ids"], b["attention_mask"], need_values=False)[0]
                else:
                    ref_lp = old_lp
                kl = (old_lp - ref_lp) * act
                rewards = -p.kl_coef * kl
                for i, e in enumerate(eps):
                    last = int(act[i].nonzero()[-1])
                    rewards[i, last] += float(e.reward)
                adv, ret = gae(rewards, old_v * act, act, p.gamma, p.lam)
                if p.whiten_advantages:
                    sel = adv[act.bool()]
                    if sel.numel() > 1:
                        adv = (adv - sel.mean()) / (sel.std() + 1e-8) * act
            agg: dict[str, list[float]] = {"ppo/policy_loss": [], "ppo/value_loss": [], "ppo/clipfrac": [], "ppo/approx_kl": [], "ppo/entropy": []}
            n = len(eps)
            mb = max(1, min(p.mini_batch_size, n))
            for _ in range(p.ppo_epochs):
                order = list(range(n))
                rng.shuffle(order)
                for s in range(0, n, mb):
                    idx = torch.tensor(order[s : s + mb], device=acc.device)
                    m = act[idx]
                    denom = m.sum().clamp(min=1.0)
                    with acc.autocast():
                        lp, ent, v = _logprobs_values(policy, value_head, b["input_ids"][idx], b["attention_mask"][idx])
                    ratio = torch.exp(lp - old_lp[idx])
                    a = adv[idx]
                    pg = torch.max(-a * ratio, -a * ratio.clamp(1 - p.cliprange, 1 + p.cliprange))
                    pg_loss = (pg * m).sum() / denom
                    v_old = old_v[idx]
                    v_clip = v_old + (v - v_old).clamp(-p.cliprange_value, p.cliprange_value)
                    vf = torch.max((v - ret[idx]) ** 2, (v_clip - ret[idx]) ** 2)
                    vf_loss = 0.5 * (vf * m).sum() / denom
                    loss = pg_loss + p.vf_coef * vf_loss
                    opt.zero_grad()
                    acc.backward(loss)
                    acc.clip_grad_norm_(list(policy.parameters()) + list(value_head.parameters()), p.max_grad_norm)
                    opt.step()
                    with torch.no_grad():
                        agg["ppo/policy_loss"].append(float(pg_loss))
                        agg["ppo/value_loss"].append(float(vf_loss))
                        agg["ppo/clipfrac"].append(float((((ratio - 1).abs() > p.cliprange).float() * m).sum() / denom))
                        agg["ppo/approx_kl"].append(float((((lp - old_lp[idx]) ** 2) * 0.5 * m).sum() / denom))
                        agg["ppo/entropy"].append(float((ent * m).sum() / denom))
            row = {**stats, **{k: sum(v) / len(v) for k, v in agg.items() if v}}
            row["ppo/kl_ref"] = float(kl.sum() / act.sum().clamp(min=1.0))
            row["ppo/episodes_used"] = float(n)
            if acc.is_main_process and (it % max(1, p.logging_steps) == 0 or it == p.max_steps):
                metrics.write("ppo", it, row)
            if p.save_steps and it % p.save_steps == 0 and acc.is_main_process:
                _save(acc, policy, value_head, tok, out / f"checkpoint-{it}")
        final = out / "final"
        if acc.is_main_process:
            if cfg.ppo.eval_heldout and split.heldout:
                summary["eval_end"] = evaluate_policy(acc.unwrap_model(policy), tok, client, split.heldout, cfg)
                metrics.write("ppo_eval", p.max_steps, summary["eval_end"], when="end")
            _save(acc, policy, value_head, tok, final, final=True)
            summary["final_model"] = str(final)
            summary["steps"] = p.max_steps
            (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    finally:
        close_if_owned(client, address)
    return summary


def _save(acc: Any, policy: Any, value_head: Any, tok: Any, where: Path, *, final: bool = False) -> None:
    import torch

    where.mkdir(parents=True, exist_ok=True)
    model = acc.unwrap_model(policy)
    if final:
        save_final_model(model, tok, where)  # LoRA merged: loads like any checkpoint
    else:
        model.save_pretrained(where)
        tok.save_pretrained(where)
    torch.save(acc.unwrap_model(value_head).state_dict(), where / "value_head.pt")


__all__ = ["gae", "train_ppo"]
