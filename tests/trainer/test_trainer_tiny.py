"""The offline tiny tokenizer + model (design §8)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from toolgym.trainer.tiny import STAMP, TOOL_TOKENS, build_tiny_model


def test_tiny_model_loads_and_generates(tiny_model_dir: str, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.hidden_size == 64 and model.config.num_hidden_layers == 2
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    for t in ("<|im_start|>", "<|im_end|>", *TOOL_TOKENS):
        assert len(tokenizer(t, add_special_tokens=False)["input_ids"]) == 1, t
    # tool tags are not special: they survive decode(skip_special_tokens=True)
    ids = tokenizer("<tool_call>\n{}\n</tool_call>", add_special_tokens=False)["input_ids"]
    assert "<tool_call>" in tokenizer.decode(ids, skip_special_tokens=True)
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    prompt = tokenizer.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True, return_dict=False)
    out = model.generate(torch.tensor([prompt]), max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] <= len(prompt) + 4


def test_chat_template_supports_tools_and_response_parsing(tokenizer):
    from trl.chat_template_utils import is_chat_template_prefix_preserving, supports_tool_calling

    assert supports_tool_calling(tokenizer)
    assert is_chat_template_prefix_preserving(tokenizer)
    assert getattr(tokenizer, "response_template", None) is not None or getattr(tokenizer, "response_schema", None) is not None


def test_cached_by_content(tiny_model_dir: str, tmp_path: Path):
    t = time.time()
    out = build_tiny_model(str(tmp_path / "again"))
    assert time.time() - t < 5.0
    a = json.loads((Path(tiny_model_dir) / STAMP).read_text())
    b = json.loads((Path(out) / STAMP).read_text())
    assert a["key"] == b["key"]
    assert (Path(out) / "model.safetensors").read_bytes() == (Path(tiny_model_dir) / "model.safetensors").read_bytes()
    t = time.time()
    build_tiny_model(out)  # stamped dir: no work
    assert time.time() - t < 1.0
