"""Offline end-to-end: tiny model, SFT on BFCL-derived data, GRPO against a live loopback server; artefacts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from toolgym.trainer.config_load import config_from_dict
from toolgym.trainer.rollout import COMPONENTS, PENALTIES

REPO = Path(__file__).resolve().parents[2]


def _tiny_cfg(out: Path, address: str, tiny_model_dir: str):
    return config_from_dict({
        "output_dir": str(out),
        "seed": 0,
        "server": {"address": address},
        "model": {"name_or_path": tiny_model_dir},
        "data": {"categories": ["simple_python"], "templates": ["hermes"], "template_diversity": False,
                 "heldout_tasks": 4, "max_prompt_tokens": 420, "max_tasks": 24},
        "sft": {"task_weights": {"tool_selection": 1.0}, "max_steps": 4, "per_device_train_batch_size": 4,
                "learning_rate": 1e-3, "max_length": 512, "logging_steps": 2},
        "grpo": {"max_steps": 2, "per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 24,
                 "max_turn_tokens": 24, "max_turns": 1, "learning_rate": 1e-3, "logging_steps": 1, "save_steps": 1},
        "eval": {"max_new_tokens": 16, "max_turns": 1},
        "pipeline": {"stages": ["sft", "grpo"]},
    })


def test_sft_then_grpo_against_live_server(tiny_model_dir, live_server, tmp_path):
    from toolgym.trainer.pipeline import format_report, run_pipeline

    cfg = _tiny_cfg(tmp_path, live_server.address, tiny_model_dir)
    summary = run_pipeline(cfg)
    # artefacts: final models, GRPO checkpoints, summaries, metrics
    assert (tmp_path / "sft" / "final" / "model.safetensors").is_file()
    assert (tmp_path / "grpo" / "final" / "model.safetensors").is_file()
    assert (tmp_path / "grpo" / "checkpoint-1").is_dir() and (tmp_path / "grpo" / "checkpoint-2").is_dir()
    assert json.loads((tmp_path / "pipeline_summary.json").read_text())["final_model"] == summary["final_model"]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    stages = {r["stage"] for r in rows}
    assert {"sft", "grpo", "grpo_eval"} <= stages
    grpo_rows = [r for r in rows if r["stage"] == "grpo" and "reward" in r]
    assert len(grpo_rows) == 2
    for r in grpo_rows:
        for k in COMPONENTS:
            assert f"reward/{k}" in r and f"reward_weighted/{k}" in r, k
        for k in PENALTIES:
            assert f"penalty/{k}" in r and f"penalty_rate/{k}" in r, k
        assert "reward/total" in r and "reward/valid_fraction" in r
    evals = [r for r in rows if r["stage"] == "grpo_eval"]
    assert [r["when"] for r in evals] == ["start", "end"]
    assert all("eval/reward/format_compliance" in r and "eval/reward/total" in r for r in evals)
    assert "format_compliance" in format_report(summary)


def test_grpo_multi_turn_episodes_live(tiny_model_dir, tokenizer, live_server, tmp_path):
    from toolgym.trainer.common import load_model
    from toolgym.trainer.grpo import build_grpo_trainer

    cfg = config_from_dict({"output_dir": str(tmp_path), "grpo": {
        "max_steps": 1, "per_device_train_batch_size": 2, "num_generations": 2, "max_completion_length": 96,
        "max_turn_tokens": 16, "max_turns": 3, "learning_rate": 1e-4}})
    rows = [{"prompt": "mt", "task_id": "multi_turn_base_0", "seed": 1, "template": "hermes"}]
    trainer = build_grpo_trainer(cfg, live_server.address, model=load_model(tiny_model_dir, cfg.model),
                                 tokenizer=tokenizer, rows=rows)
    trainer.train()
    eps = trainer.toolgym_rollout.last_episodes
    assert len(eps) == 2 and all(e.task_id == "multi_turn_base_0" for e in eps)
    assert all(e.done and e.valid for e in eps)
    assert all(len(e.actions) >= 1 and len(e.completion_ids) <= 96 for e in eps)


def test_cli_pipeline_one_command(tiny_model_dir, live_server, tmp_path):
    """The README command, shrunk: `toolgym train pipeline --config trainer/configs/tiny_cpu.yaml`."""
    env = dict(os.environ, TRL_EXPERIMENTAL_SILENCE="1")
    cmd = [
        sys.executable, "-m", "toolgym.trainer.cli", "train", "pipeline", "--config", str(REPO / "trainer/configs/tiny_cpu.yaml"),
        "--output-dir", str(tmp_path / "run"), "--address", live_server.address,
        "--set", f"model.name_or_path={tiny_model_dir}", "--set", "sft.max_steps=2", "--set", "grpo.max_steps=1",
        "--set", "grpo.max_completion_length=16", "--set", "grpo.max_turn_tokens=16", "--set", "grpo.save_steps=0",
        "--set", "data.heldout_tasks=2", "--set", "data.max_tasks=12", "--set", "eval.max_new_tokens=8",
        "--set", "sft.per_device_train_batch_size=2", "--set", "grpo.per_device_train_batch_size=4",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=str(REPO))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "held-out" in res.stdout and "reward/format_compliance" in res.stdout
    assert (tmp_path / "run" / "grpo" / "final").is_dir()


def test_cli_rejects_bad_config(tmp_path):
    from toolgym.trainer.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("grpo:\n  max_stepz: 3\n")
    assert main(["train", "grpo", "--config", str(bad)]) == 2
    assert main(["train", "describe-config"]) == 0


def test_toolgym_main_cli_dispatches_train(capsys):
    from toolgym.env.cli.main import main as toolgym_main

    assert toolgym_main(["train", "describe-config"]) == 0
    assert "grpo.num_generations" in capsys.readouterr().out
