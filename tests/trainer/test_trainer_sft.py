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
