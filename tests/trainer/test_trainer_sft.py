"""SFT warm-up: BFCL-derived chat data, task weighting, coreset + replay, LoRA."""

from __future__ import annotations

import json

from toolgym.trainer.config_load import config_from_dict


def _cfg(tmp_path, tiny_model_dir, **sft):
    s = {"max_steps": 3, "per_device_train_batch_size": 2, "learning_rate": 1e-3, "max_length": 640, "logging_steps": 1, **sft}
    return config_from_dict({
        "output_dir": str(tmp_path), "model": {"name_or_path": tiny_model_dir},
        "data": {"categories": ["simple_python", "irrelevance"], "sft_categories": ["simple_python", "irrelevance"],
                 "templates": ["hermes", "react", "pythonic"]},
        "sft": s,
    })


def test_prepare_data_weighting_coreset_replay(tiny_model_dir, tokenizer, tmp_path):
    from toolgym.trainer.data import load_tasks
    from toolgym.trainer.sft import prepare_sft_data

    cfg = _cfg(tmp_path, tiny_model_dir, num_examples=40, task_weights={"tool_selection": 0.75, "timing": 0.25},
               use_coreset_selection=True, coreset_target_size=20, coreset_strategy="hybrid", coreset_loss_source="proxy",
               use_online_continual=True, continual_rounds=2, continual_replay_ratio=0.3)
    tasks = load_tasks("bfcl", ["simple_python"])[:60] + load_tasks("bfcl", ["irrelevance"])[:30]
    rounds, report = prepare_sft_data(cfg, tokenizer, tasks=tasks)
    assert report["mixed"] == 40 and report["mixed_types"] == {"tool_selection": 0.75, "timing": 0.25}
    assert report["coreset"]["size"] == 20
    assert len(rounds) == 2 and sum(ex.get("replay", False) for ex in rounds[0]) == 0
    assert report["rounds"][1]["replay"] > 0
    assert len(report["templates"]) >= 2  # template diversity on


def test_train_sft_full_and_lora(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from toolgym.trainer.data import load_tasks
    from toolgym.trainer.sft import train_sft

    tasks = load_tasks("bfcl", ["simple_python"])[:16]
    final = train_sft(_cfg(tmp_path / "full", tiny_model_dir), tasks=tasks)
    assert AutoModelForCausalLM.from_pretrained(final).config.hidden_size == 64
    rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in rows if r["stage"] == "sft")
    cfg = _cfg(tmp_path / "lora", tiny_model_dir)
    cfg.model.use_peft = True
    cfg.model.lora_r = 4
    final_lora = train_sft(cfg, tasks=tasks)
    model = AutoModelForCausalLM.from_pretrained(final_lora)  # merged: loads like a plain checkpoint
    assert not any("lora" in n for n, _ in model.named_parameters())


def test_plain_loss_logits_at_labelled_positions_only_give_the_same_loss(tiny_model_dir):
    """The CPU loss takes logits only where a row has a label (logits_to_keep): same loss and gradients
    as from full logits, without the prompt positions' logits."""
    import pytest
    import torch
    from transformers import AutoModelForCausalLM

    from toolgym.trainer.sft import _loss_logits

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.randint(3, model.config.vocab_size, (3, 40))
    labels = torch.full_like(ids, -100)
    labels[0, 30:36] = ids[0, 30:36]
    labels[1, 25:40] = ids[1, 25:40]
    labels[2, 33:38] = ids[2, 33:38]
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}

    def loss_and_grad(fn):
        model.zero_grad()
        logits, tgt, mask = fn()
        lp = logits.log_softmax(-1).gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
        loss = -lp.sum() / mask.sum()
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None], logits.shape[1]

    def full():
        out = model(input_ids=ids, attention_mask=inputs["attention_mask"]).logits[:, :-1].float()
        return out, labels[:, 1:], labels[:, 1:] != -100

    a, ga, n_kept = loss_and_grad(lambda: _loss_logits(model, inputs))
    b, gb, n_full = loss_and_grad(full)
    assert n_kept == 15 < n_full == 39  # positions 24..38: where some row has a label
    assert a == pytest.approx(b, rel=1e-6) and all(torch.allclose(x, y, atol=1e-6) for x, y in zip(ga, gb))
