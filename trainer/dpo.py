"""DPO from server-scored samples: N completions per prompt, best vs worst by the server's score, TRL DPOTrainer.

1. For each prompt task, ``Reset`` an episode to get the exact prompt the env shows (system prompt with the tool
   specs in the episode's template + the user turn); the session is closed right away.
2. Sample ``dpo.num_samples`` completions from the policy (one assistant turn each).
3. Score every completion with ``RewardService.ScoreBatch`` (one RPC for the whole batch), or any injected
   ``score_fn(items) -> list[(total, valid)]``.
4. Pair the best and the worst *valid* completion of each prompt; skip prompts with fewer than two valid scores or
   a best-worst gap under ``dpo.min_margin`` (ties carry no preference).
5. Train ``trl.DPOTrainer`` on conversational ``prompt``/``chosen``/``rejected`` rows.

Single-turn tasks only: ScoreBatch cannot score a stateful multi-turn task from one output (it needs the episode),
and such items come back invalid and are skipped.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from toolgym.trainer.common import (
    MetricsLog,
    bf16_default,
    check_extra,
    close_if_owned,
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
from toolgym.trainer.data import TaskSplit, pick_template, rl_split
from toolgym.trainer.rollout import HFGenerator, ObservationTokenizer, RolloutEngine

log = logging.getLogger("toolgym.trainer.dpo")

ScoreFn = Callable[[list[dict[str, Any]]], list[tuple[float | None, bool]]]


def server_score_fn(client: Any, reward_config: dict[str, Any] | None = None) -> ScoreFn:
    def fn(items: list[dict[str, Any]]) -> list[tuple[float | None, bool]]:
        if reward_config:
            items = [dict(i, reward_config=reward_config) for i in items]
        res = client.score_batch(items, raise_on_error=False)
        out: list[tuple[float | None, bool]] = []
        for r in res:
            if isinstance(r, Exception) or not getattr(r, "valid", False) or not math.isfinite(getattr(r, "total", math.nan)):
                out.append((None, False))
            else:
                out.append((float(r.total), True))
        return out

    return fn


def build_preference_pairs(groups: Sequence[dict[str, Any]], min_margin: float = 1e-6) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``groups``: dicts with ``prompt`` (messages), ``completions`` (texts), ``scores`` ((total, valid) pairs).

    Returns the pairs and counts of what was skipped (``too_few_valid``, ``tie``).
    """
    pairs: list[dict[str, Any]] = []
    skipped = {"too_few_valid": 0, "tie": 0}
    for g in groups:
        scored = [(s, i) for i, (s, ok) in enumerate(g["scores"]) if ok and s is not None and math.isfinite(s)]
        if len(scored) < 2:
            skipped["too_few_valid"] += 1
            continue
        best_s, best_i = max(scored, key=lambda x: (x[0], -x[1]))
        worst_s, worst_i = min(scored, key=lambda x: (x[0], x[1]))
        if best_s - worst_s < min_margin or best_i == worst_i:
            skipped["tie"] += 1
            continue
        pairs.append(
            {
                "prompt": g["prompt"],
                "chosen": [{"role": "assistant", "content": g["completions"][best_i]}],
                "rejected": [{"role": "assistant", "content": g["completions"][worst_i]}],
                "chosen_score": best_s,
                "rejected_score": worst_s,
                "task_id": g.get("task_id"),
                "template": g.get("template"),
            }
        )
    return pairs, skipped


def sample_groups(
    model: Any,
    tokenizer: Any,
    client: Any,
    task_ids: Sequence[str],
    cfg: TrainConfig,
    *,
    score_fn: ScoreFn | None = None,
) -> list[dict[str, Any]]:
    """Reset each task for its prompt, sample ``num_samples`` completions, score them (one batch)."""
    d = cfg.dpo
    rng = random.Random(cfg.data.seed + 17)
    obs_tok = ObservationTokenizer(tokenizer)
    groups: list[dict[str, Any]] = []
    for tid in task_ids:
        tpl = pick_template(rng, cfg.data.templates, cfg.data.template_diversity)
        r = client.reset(tid, seed=rng.randrange(2**31), template=tpl)
        try:
            client.close_session(r.session_id)
        except Exception:
            pass
        msgs = RolloutEngine.prompt_messages(r)
        groups.append({"task_id": tid, "template": (r.info or {}).get("template", tpl), "prompt": msgs, "prompt_ids": obs_tok.prompt_ids(msgs)})
    gen = HFGenerator(model, tokenizer, do_sample=True, temperature=d.temperature)
    flat = [g["prompt_ids"] for g in groups for _ in range(d.num_samples)]
    outs, _ = gen(flat, d.max_new_tokens)
    eos = tokenizer.eos_token_id
    texts = [tokenizer.decode(o[:-1] if o and o[-1] == eos else o, skip_special_tokens=False) for o in outs]
    items = []
    for gi, g in enumerate(groups):
        g["completions"] = texts[gi * d.num_samples : (gi + 1) * d.num_samples]
        for t in g["completions"]:
            items.append({"output": t, "task_id": g["task_id"], "template": g["template"]})
    scores = (score_fn or server_score_fn(client, cfg.server.reward_config))(items)
    for gi, g in enumerate(groups):
        g["scores"] = scores[gi * d.num_samples : (gi + 1) * d.num_samples]
        g.pop("prompt_ids", None)
    return groups


def train_dpo(
    cfg: TrainConfig,
    *,
    address: Any = None,
    model_path: str | None = None,
    split: TaskSplit | None = None,
    metrics: MetricsLog | None = None,
    score_fn: ScoreFn | None = None,
) -> dict[str, Any]:
    """Sample ``dpo.num_samples`` completions for ``dpo.num_prompts`` training tasks, score them on the server (or with
    ``score_fn``), then pair and train (:func:`train_dpo_on_groups`)."""
    if address is None:
        with server_address(cfg.server) as addr:
            return train_dpo(cfg, address=addr, model_path=model_path, split=split, metrics=metrics, score_fn=score_fn)
    d = cfg.dpo
    set_seed(cfg.seed)
    path = model_path or resolve_model_path(cfg.model, cfg.output_dir)
    tok = load_tokenizer(path, cfg.model.trust_remote_code)
    model = load_model(path, cfg.model)
    split = split or rl_split(cfg, tok)
    ids = list(split.train)
    random.Random(cfg.data.seed + 5).shuffle(ids)
    ids = ids[: d.num_prompts]
    client = make_client(address, cfg.server.timeout)
    try:
        groups = sample_groups(model, tok, client, ids, cfg, score_fn=score_fn)
    finally:
        close_if_owned(client, address)
    return train_dpo_on_groups(cfg, groups, model=model, tokenizer=tok, metrics=metrics)


def train_dpo_on_groups(
    cfg: TrainConfig,
    groups: Sequence[dict[str, Any]],
    *,
    model: Any = None,
    tokenizer: Any = None,
    model_path: str | None = None,
    metrics: MetricsLog | None = None,
) -> dict[str, Any]:
    """Pair scored groups (:func:`build_preference_pairs`; e.g. :func:`sample_groups`' output, or completions
    written and scored any other way) and train ``trl.DPOTrainer`` on the pairs. The model and tokenizer are loaded
    from ``model_path`` (or the configured model) unless given."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    d = cfg.dpo
    out = Path(cfg.output_dir) / "dpo"
    if model is None or tokenizer is None:
        path = model_path or resolve_model_path(cfg.model, cfg.output_dir)
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(path, cfg.model.trust_remote_code)
        model = model if model is not None else load_model(path, cfg.model)
    tok = tokenizer
    metrics = metrics or MetricsLog(metrics_path(cfg))
    pairs, skipped = build_preference_pairs(groups, d.min_margin)
    summary: dict[str, Any] = {"prompts": len(groups), "pairs": len(pairs), "skipped": skipped}
    out.mkdir(parents=True, exist_ok=True)
    with (out / "pairs.jsonl").open("w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    metrics.write("dpo_data", 0, {"dpo/pairs": len(pairs), "dpo/prompts": len(groups), **{f"dpo/skipped_{k}": v for k, v in skipped.items()}})
    if not pairs:
        log.warning("DPO: no preference pairs (all ties or invalid); nothing to train")
        summary["final_model"] = None
        return summary
    kw: dict[str, Any] = dict(
        output_dir=str(out),
        beta=d.beta,
        loss_type=d.loss_type,
        learning_rate=d.learning_rate,
        num_train_epochs=d.num_train_epochs,
        max_steps=d.max_steps if d.max_steps > 0 else -1,
        per_device_train_batch_size=d.per_device_train_batch_size,
        gradient_accumulation_steps=d.gradient_accumulation_steps,
        max_length=d.max_length,
        logging_steps=d.logging_steps,
        save_strategy="no",
        report_to=[],
        seed=cfg.seed,
        bf16=bf16_default(None) if cfg.model.dtype != "float32" else False,
        disable_tqdm=True,
    )
    kw.update(check_extra(d.extra, DPOConfig, "dpo"))
    rows = [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]
    trainer = DPOTrainer(
        model=model,
        args=DPOConfig(**kw),
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        peft_config=peft_config(cfg.model),
        callbacks=[metrics_callback(metrics, "dpo")],
    )
    trainer.train()
    final = out / "final"
    save_final_model(trainer.model, tok, final)
    summary["final_model"] = str(final)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


__all__ = ["build_preference_pairs", "sample_groups", "server_score_fn", "train_dpo", "train_dpo_on_groups"]
