"""SFT warm-up (seeds' stage 2): ground-truth trajectories in the env's templates → TRL ``SFTTrainer``.

Data: :func:`toolgym.trainer.data.sft_examples` (template diversity on by default), task-type weighting
(:func:`toolgym.trainer.data.weighted_mix`), optional coreset selection and online replay
(:mod:`toolgym.trainer.coreset`). Loss on assistant tokens only (TRL swaps in the training variant of the chat
template with ``{% generation %}`` markers). Full fine-tuning or LoRA (``model.use_peft``; a LoRA run saves the
merged model as ``final`` so later stages load it like any checkpoint).
"""

from __future__ import annotations

import functools
import json
import logging
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from toolgym.trainer.common import (
    MetricsLog,
    bf16_default,
    check_extra,
    cuda_available,
    load_model,
    load_tokenizer,
    metrics_callback,
    metrics_path,
    peft_config,
    resolve_model_path,
    save_final_model,
    set_seed,
)
from toolgym.trainer.config import TrainConfig
from toolgym.trainer.coreset import CoresetSelector, OnlineContinualLearner, annotate, model_loss_fn
from toolgym.trainer.data import sft_examples, type_distribution, weighted_mix

log = logging.getLogger("toolgym.trainer.sft")


def prepare_sft_data(
    cfg: TrainConfig,
    tokenizer: Any,
    model: Any | None = None,
    *,
    tasks: Sequence[Any] | None = None,
    exclude_ids: Iterable[str] = (),
    examples: list[dict[str, Any]] | None = None,
) -> tuple[list[list[dict[str, Any]]], dict[str, Any]]:
    """Formatted, weighted, (coreset-selected) examples split into training rounds (one round without replay)."""
    s = cfg.sft
    rng = random.Random(cfg.data.seed * 104729 + 3)
    if examples is None:
        examples = sft_examples(cfg, tasks, exclude_ids=exclude_ids)
    if not examples:
        raise ValueError("no SFT examples: check data.sft_categories / data.categories")
    available = type_distribution(examples)
    mixed = weighted_mix(examples, s.task_weights, s.num_examples, rng, allow_upsample=s.allow_upsample)
    report: dict[str, Any] = {
        "available": len(examples),
        "available_types": available,
        "mixed": len(mixed),
        "mixed_types": type_distribution(mixed),
        "templates": sorted({ex["template"] for ex in mixed}),
    }
    if s.use_coreset_selection:
        loss_fn = model_loss_fn(model, tokenizer, max_length=s.max_length) if (s.coreset_loss_source == "model" and model is not None) else None
        annotate(mixed, tokenizer=tokenizer, loss_fn=loss_fn)
        sel = CoresetSelector(
            s.coreset_strategy, s.coreset_target_size, hybrid_loss_fraction=s.coreset_hybrid_loss_fraction, seed=cfg.data.seed
        )
        mixed = sel.select(mixed)
        report["coreset"] = {"strategy": s.coreset_strategy, "size": len(mixed), "types": type_distribution(mixed)}
    if s.use_online_continual:
        learner = OnlineContinualLearner(s.continual_buffer_size, s.continual_replay_ratio, seed=cfg.data.seed)
        n_rounds = max(1, s.continual_rounds)
        size = -(-len(mixed) // n_rounds)
        rounds = [learner.mix(mixed[i : i + size]) for i in range(0, len(mixed), size)]
        report["rounds"] = [{"size": len(r), "replay": sum(1 for ex in r if ex.get("replay"))} for r in rounds]
    else:
        rounds = [mixed]
    return rounds, report


def _loss_logits(model: Any, inputs: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(logits, targets, mask) at the positions that carry a label, for the plain CE loss.

    With assistant-only loss most of a row is prompt: only the positions where some row has a label
    need the LM head. Computing logits there alone (``logits_to_keep`` with position indices) gives the
    same loss with a fraction of the memory: a real model's full fp32 logits over a 49k vocabulary at
    1024 x 4 tokens are 0.8 GB, and their softmax and gradient several times that. A model whose forward
    takes no ``logits_to_keep`` gets the full-logits path."""
    labels = inputs["labels"]
    fw = {k: v for k, v in inputs.items() if k != "labels"}
    fw["use_cache"] = False
    tgt = labels[:, 1:]
    mask = tgt != -100
    pos = mask.any(0).nonzero().squeeze(-1)  # logits at input position t predict label t + 1
    if 0 < pos.numel() < tgt.shape[1]:
        try:
            logits = model(**fw, logits_to_keep=pos).logits.float()
        except TypeError:
            logits = None
        if logits is not None and logits.shape[1] == pos.numel():
            return logits, tgt[:, pos], mask[:, pos]
    logits = model(**fw).logits[:, :-1].float()
    return logits, tgt, mask


@functools.cache
def _sft_trainer_class() -> type:
    import torch
    from trl import SFTTrainer

    class ToolgymSFTTrainer(SFTTrainer):
        """SFTTrainer with an optional plain cross-entropy loss.

        TRL 1.16 computes the SFT loss with a chunked, fused LM-head kernel (memory-lean for big vocabularies on GPU);
        on CPU it costs ~10x a plain forward/backward of a small model. ``plain_loss=True`` computes the same
        token-mean NLL over the label mask from full logits.
        """

        plain_loss = False

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            if not self.plain_loss or return_outputs:
                return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            mode = "train" if self.model.training else "eval"
            logits, tgt, mask = _loss_logits(model, inputs)
            logp = logits.log_softmax(-1)
            tok_lp = logp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
            n = mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = -tok_lp.sum() / torch.as_tensor(n, device=logits.device).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            with torch.no_grad():
                nv = mask.sum().clamp(min=1)
                acc = ((logits.argmax(-1) == tgt) & mask).sum() / nv
                ent = (-(logp.exp() * logp).sum(-1) * mask).sum() / nv
                self._metrics[mode]["mean_token_accuracy"].append(acc.item())
                self._metrics[mode]["entropy"].append(ent.item())
            return loss

    return ToolgymSFTTrainer


def _sft_args(cfg: TrainConfig, out: Path, sequential: bool) -> Any:
    from trl import SFTConfig

    s = cfg.sft
    kw: dict[str, Any] = dict(
        output_dir=str(out),
        learning_rate=s.learning_rate,
        num_train_epochs=s.num_train_epochs,
        max_steps=s.max_steps if s.max_steps > 0 else -1,
        per_device_train_batch_size=s.per_device_train_batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps,
        warmup_steps=float(s.warmup_ratio),  # transformers 5: a float in [0, 1) is a ratio
        lr_scheduler_type=s.lr_scheduler_type,
        max_length=s.max_length,
        assistant_only_loss=s.assistant_only_loss,
        logging_steps=s.logging_steps,
        save_strategy="steps" if s.save_steps > 0 else "no",
        save_steps=s.save_steps if s.save_steps > 0 else 500,
        report_to=[],
        seed=cfg.seed,
        bf16=bf16_default(None) if cfg.model.dtype != "float32" else False,
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        train_sampling_strategy="sequential" if sequential else "random",
        dataset_num_proc=None,
        disable_tqdm=True,
    )
    kw.update(check_extra(s.extra, SFTConfig, "sft"))
    return SFTConfig(**kw)


def train_sft(
    cfg: TrainConfig,
    *,
    model_path: str | None = None,
    tasks: Sequence[Any] | None = None,
    exclude_ids: Iterable[str] = (),
    metrics: MetricsLog | None = None,
) -> str:
    """Run SFT; returns the directory of the final (merged) model."""
    from datasets import Dataset

    from toolgym.trainer.throughput import sft_perf_callback

    set_seed(cfg.seed)
    out = Path(cfg.output_dir) / "sft"
    path = model_path or resolve_model_path(cfg.model, cfg.output_dir)
    tokenizer = load_tokenizer(path, cfg.model.trust_remote_code)
    model = load_model(path, cfg.model)
    rounds, report = prepare_sft_data(cfg, tokenizer, model, tasks=tasks, exclude_ids=exclude_ids)
    rows = [{"messages": ex["messages"]} for r in rounds for ex in r]
    report["train_rows"] = len(rows)
    log.info("SFT data: %s", json.dumps(report))
    metrics = metrics or MetricsLog(metrics_path(cfg))
    metrics.write("sft", 0, {"sft/examples": len(rows)}, **{"sft/types": report["mixed_types"]})
    own_template = tokenizer.chat_template
    if cfg.sft.assistant_only_loss:
        from toolgym.trainer.chat_templates import training_template

        # Only while SFT tokenizes and trains: the saved model keeps the template it is prompted with.
        tokenizer.chat_template = training_template(tokenizer) or own_template
    trainer = _sft_trainer_class()(
        model=model,
        args=_sft_args(cfg, out, sequential=cfg.sft.use_online_continual),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config(cfg.model),
        callbacks=[sft_perf_callback(), metrics_callback(metrics, "sft")],  # perf/* first: same log row
    )
    impl = cfg.sft.loss_impl
    trainer.plain_loss = impl == "plain" or (impl == "auto" and not cuda_available())
    trainer.train()
    tokenizer.chat_template = own_template
    final = out / "final"
    save_final_model(trainer.model, tokenizer, final)
    (out / "sft_report.json").write_text(json.dumps(report, indent=2))
    return str(final)


__all__ = ["prepare_sft_data", "train_sft"]
