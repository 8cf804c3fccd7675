"""Shared fixtures for the toolgym.evals tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ITEMS = FIXTURES / "kagent_items.jsonl"
PREDS = FIXTURES / "kagent_preds.jsonl"
EXPECTED = FIXTURES / "expected_reference.json"


@pytest.fixture(scope="session")
def punkt_exact():
    """The English Punkt parameters (cached by `python -m toolgym.evals.punkt fetch`; fetched once from
    PyPI here when missing). Tests that compare against nltk 3.8.1 / the reference need them."""
    from toolgym.evals import punkt

    if not punkt.load_params().exact:
        try:
            punkt.fetch_english_params()
        except Exception as e:  # no registry access: say so rather than fail obscurely
            pytest.skip(f"English Punkt parameters unavailable and could not be fetched: {e}")
    punkt._reset()
    assert punkt.params_status() == "exact"
    return True


@pytest.fixture(scope="session")
def items():
    from toolgym.evals.kagentbench import load_items

    return load_items(ITEMS)


@pytest.fixture(scope="session")
def preds():
    from toolgym.evals.kagentbench import load_predictions

    return load_predictions(PREDS)


@pytest.fixture(scope="session")
def expected():
    return json.loads(EXPECTED.read_text(encoding="utf-8"))


def _build_tiny_model_fallback(out_dir: Path) -> str:
    """Minimal offline model: byte-level BPE (2k) trained on local text + random Qwen2 (hidden 64, 2 layers)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    corpus = [ITEMS.read_text(encoding="utf-8"), PREDS.read_text(encoding="utf-8")] * 4
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>"]
    tk.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=2000, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    import torch

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return str(out_dir)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    out = tmp_path_factory.mktemp("tiny_model")
    try:
        from toolgym.trainer.tiny import build_tiny_model
    except Exception:
        return _build_tiny_model_fallback(out / "model")
    return build_tiny_model(str(out / "model"))
