"""GPU paths. The vLLM test runs wherever vllm is importable (and a CUDA device is present); skipped elsewhere."""

from __future__ import annotations

import subprocess
import sys

import pytest

from toolgym.trainer.config_load import config_from_dict


def test_cpu_import_pulls_no_gpu_packages():
    code = (
        "import sys, toolgym.trainer as t\n"
        "from toolgym.trainer import grpo, ppo, sft, dpo, rollout, rewards, cli, pipeline, config, common\n"
        "bad = [m for m in ('vllm', 'deepspeed', 'flash_attn', 'bitsandbytes') if m in sys.modules]\n"
        "light = [m for m in ('torch', 'trl') if m in sys.modules]\n"
        "print(bad, light)\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[] []"  # not even torch/TRL until a trainer is actually built


def test_trainer_talks_to_the_env_only_through_its_boundary():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "trainer"
    # toolgym.env.retrieval: the retriever trainer fine-tunes the catalogue's own retriever (no server involved).
    allowed = ("toolgym.env.client", "toolgym.env.parsers", "toolgym.env.tasks", "toolgym.env.types", "toolgym.env.retrieval")
    # the in-process server is started through its public entry point only (tests, the one-command pipeline)
    allowed_server = {"toolgym.env.server.app"}
    for f in root.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("toolgym.env"):
                mod = node.module
                assert mod.startswith(allowed) or mod in allowed_server, f"{f.name} imports {mod}"


def test_attn_and_dtype_selection_on_cpu():
    from toolgym.trainer.common import attn_implementation, bf16_default, model_init_kwargs

    cfg = config_from_dict({})
    assert attn_implementation(cfg.model) == "sdpa"  # no CUDA here: never flash-attn
    assert bf16_default(None) is False
    cfg.model.load_in_4bit = True
    with pytest.raises(RuntimeError, match="CUDA"):
        model_init_kwargs(cfg.model)


def test_grpo_with_vllm_colocate(tmp_path, live_server):
    pytest.importorskip("vllm")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("vLLM generation needs a CUDA device")
    from toolgym.trainer.common import load_model, load_tokenizer
    from toolgym.trainer.grpo import build_grpo_trainer
    from toolgym.trainer.tiny import build_tiny_model

    # head_dim 64: vLLM's attention backends do not all take the default tiny model's head_dim of 16
    tiny_model_dir = build_tiny_model(str(tmp_path / "tiny256"), hidden_size=256, num_attention_heads=4, num_key_value_heads=2)

    cfg = config_from_dict({"output_dir": str(tmp_path), "model": {"name_or_path": tiny_model_dir, "dtype": "bfloat16"},
                            "grpo": {"max_steps": 2, "per_device_train_batch_size": 4, "num_generations": 2,
                                     "max_completion_length": 64, "max_turn_tokens": 32, "max_turns": 2,
                                     "use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.2,
                                     "bf16": True}})
    tok = load_tokenizer(tiny_model_dir)
    rows = [{"prompt": "a", "task_id": "simple_python_0", "seed": 1, "template": "hermes"},
            {"prompt": "b", "task_id": "multi_turn_base_0", "seed": 2, "template": "hermes"}]
    trainer = build_grpo_trainer(cfg, live_server.address, model=load_model(tiny_model_dir, cfg.model), tokenizer=tok, rows=rows)
    trainer.train()
    eps = trainer.toolgym_rollout.last_episodes
    assert all(e.done for e in eps)
    assert all(e.logprobs is not None and len(e.logprobs) == len(e.completion_ids) for e in eps)
