"""A tiny tokenizer + random-init model built fully offline, for tests, CI and CPU demos.

``build_tiny_model(out_dir)`` trains a byte-level BPE tokenizer (``tokenizers``) on local text — BFCL v4
questions and tool docs read from the ``bfcl_eval`` wheel with :mod:`importlib.resources`, plus the
structural strings of every agent template toolgym renders — wraps it in ``PreTrainedTokenizerFast``, adds
the chat/tool special tokens, sets TRL's Qwen2.5 chat template (with the matching response schema, so TRL's
tool-call parsing works) and saves it next to a random-init ``Qwen2ForCausalLM`` (hidden 64, 2 layers).

Nothing is downloaded. Builds are cached by content: a key over the arguments, the tiny-model recipe
version and the library versions names a directory under ``$TOOLGYM_CACHE`` (default
``~/.cache/toolgym``); a second call with the same key copies the cached files (milliseconds). ``out_dir``
gets a ``toolgym_tiny.json`` stamp; a call whose ``out_dir`` already carries the same stamp does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

RECIPE_VERSION = "1"
"""Bump when the recipe changes (text, special tokens, config) so caches are rebuilt."""

CHAT_TOKENS_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
"""Special tokens (dropped by ``decode(skip_special_tokens=True)``)."""

TOOL_TOKENS = (
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<tools>",
    "</tools>",
    "<|startofthink|>",
    "<|endofthink|>",
)
"""Added tokens that are *not* special: they are part of an action's text and must survive decoding."""

STAMP = "toolgym_tiny.json"

_TEMPLATE_TEXT = [
    # Structural strings of the agent templates (design §6) so BPE learns merges for them.
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>',
    '<tool_response>\n{"result": 42}\n</tool_response>',
    '{"tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{\\"x\\": 1}"}}]}',
    "Thought: I need to call a tool.\nAction: search\nAction Input: {\"query\": \"x\"}\nObservation: ok\n"
    "Thought: I now know the final answer.\nFinal Answer: done",
    '<|startofthink|>```JSON\n{"api_name": "f", "parameters": {"x": 1}}\n```<|endofthink|>',
    '{"thoughts": {"text": "t", "reasoning": "r", "plan": "p", "criticism": "c", "speak": "s"}, '
    '"command": {"name": "f", "args": {"x": 1}}}',
    "Thought: call it\nAction: f\nAction Input: {\"x\": 1}\nAction: Finish\nAction Input: "
    '{"return_type": "give_answer", "final_answer": "x"}  give_up_and_restart',
    "[func_name(param1=value1, param2=value2), other_func(x=1)]",
    "You are a helpful assistant with access to the following functions. Use them if required.",
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:",
    '{"type": "function", "function": {"name": "n", "description": "d", "parameters": {"type": "object", '
    '"properties": {"a": {"type": "integer", "description": "x"}}, "required": ["a"]}}}',
]


def _cache_root() -> Path:
    return Path(os.environ.get("TOOLGYM_CACHE") or Path.home() / ".cache" / "toolgym")


def _bfcl_corpus(max_per_file: int = 400) -> list[str]:
    """Questions and tool docs from the BFCL wheel (no network, no ``eval``)."""
    import importlib.resources as resources

    texts: list[str] = []
    try:
        root = resources.files("bfcl_eval") / "data"
    except ModuleNotFoundError:  # the wheel is missing: fall back to the template strings alone
        return texts
    names = [
        "BFCL_v4_simple_python.json",
        "BFCL_v4_multiple.json",
        "BFCL_v4_parallel.json",
        "BFCL_v4_parallel_multiple.json",
        "BFCL_v4_irrelevance.json",
        "BFCL_v4_live_simple.json",
        "BFCL_v4_live_multiple.json",
        "BFCL_v4_multi_turn_base.json",
    ]
    for name in names:
        f = root / name
        if not f.is_file():
            continue
        with f.open("r", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if i >= max_per_file:
                    break
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                for turn in row.get("question") or []:
                    for msg in turn if isinstance(turn, list) else [turn]:
                        if isinstance(msg, dict) and isinstance(msg.get("content"), str):
                            texts.append(msg["content"])
                for fn in row.get("function") or []:
                    texts.append(json.dumps(fn, ensure_ascii=False))
    answers = root / "possible_answer" / "BFCL_v4_simple_python.json"
    if answers.is_file():
        with answers.open("r", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if i >= max_per_file:
                    break
                texts.append(line.strip())
    docs = root / "multi_turn_func_doc"
    if docs.is_dir():
        for f in sorted(docs.iterdir(), key=lambda p: p.name):
            if f.name.endswith(".json") and not f.name.startswith(("memory", "web_search")):
                texts.append(f.read_text(encoding="utf-8"))
    return texts


def _key(seed: int, vocab_size: int, arch: dict[str, int]) -> str:
    import tokenizers
    import torch
    import transformers

    payload = {
        "recipe": RECIPE_VERSION,
        "seed": seed,
        "vocab_size": vocab_size,
        "arch": arch,
        "tokenizers": tokenizers.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__.split("+")[0],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _qwen25_chat_template() -> str:
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text(encoding="utf-8")


def _build(out: Path, *, seed: int, vocab_size: int, arch: dict[str, int]) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import AddedToken, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    corpus = _TEMPLATE_TEXT * 20 + _bfcl_corpus()
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(CHAT_TOKENS_SPECIAL),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer=trainer)

    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        model_max_length=4096,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TOKENS])
    tok.chat_template = _qwen25_chat_template()
    try:  # design §8: lets TRL parse <tool_call> blocks out of completions
        from trl.chat_template_utils import add_response_schema

        add_response_schema(tok)
    except Exception:  # pragma: no cover - older TRL without it: parsing falls back to plain text
        pass

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tok),
        **arch,
        max_position_embeddings=4096,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        use_cache=True,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = None
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(out)
    model.save_pretrained(out)


def build_tiny_model(
    out_dir: str,
    *,
    seed: int = 0,
    vocab_size: int = 2000,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int | None = None,
) -> str:
    """Build (or reuse) the tiny tokenizer + model and save both into ``out_dir``; return ``out_dir``.

    Loadable with ``AutoTokenizer.from_pretrained(out_dir)`` / ``AutoModelForCausalLM.from_pretrained(out_dir)``.
    EOS is ``<|im_end|>``, pad is ``<|endoftext|>``; ``<tool_call>``-style tags are single (non-special) tokens.
    The defaults are design §8's (hidden 64, 2 layers, ~0.33M parameters); the CPU pipeline demo uses a slightly
    larger one. ``intermediate_size`` defaults to ``2 * hidden_size``.
    """
    arch = {
        "hidden_size": hidden_size,
        "num_hidden_layers": num_hidden_layers,
        "num_attention_heads": num_attention_heads,
        "num_key_value_heads": num_key_value_heads,
        "intermediate_size": intermediate_size or 2 * hidden_size,
    }
    key = _key(seed, vocab_size, arch)
    out = Path(out_dir)
    stamp = out / STAMP
    if stamp.is_file():
        try:
            if json.loads(stamp.read_text()).get("key") == key:
                return str(out)
        except (OSError, json.JSONDecodeError):
            pass
    cached = _cache_root() / "tiny" / key
    if not (cached / STAMP).is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cached.parent))
        try:
            _build(tmp, seed=seed, vocab_size=vocab_size, arch=arch)
            (tmp / STAMP).write_text(json.dumps({"key": key, "seed": seed, "vocab_size": vocab_size, **arch}))
            try:
                tmp.rename(cached)  # atomic publish; a concurrent builder may have won the race
            except OSError:
                pass
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    for f in cached.iterdir():
        if f.is_file() and f.name != STAMP:
            shutil.copy2(f, out / f.name)
    shutil.copy2(cached / STAMP, stamp)  # last: the stamp marks a complete copy
    return str(out)


__all__ = ["build_tiny_model"]
