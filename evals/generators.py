"""Generation backends for ``toolgym eval run``: chat messages in, model text out.

- :class:`OpenAIGenerator`: any OpenAI-compatible ``/v1/chat/completions`` endpoint over plain ``urllib``
  (no SDK), with retries on 5xx/429 and network errors;
- :class:`TransformersGenerator`: a local model through ``transformers``, left-padded batches: an HF folder, a
  GGUF file or a folder holding one, or an alias such as ``smollm2-135m-instruct`` (:mod:`toolgym.trainer.models`,
  all offline);
- :class:`VLLMGenerator`: vLLM, imported only inside its constructor (an optional GPU extra), so importing
  this module never imports vllm;
- :func:`make_generator`: ``--backend auto`` picks openai for an ``http(s)://`` model, else vLLM when it is
  importable and a GPU is visible, else transformers.

Long prompts keep their head and tail, like KAgentBench's inference scripts. The run loop that drives a
generator is :mod:`toolgym.evals.runner`, which re-exports these names.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: runner imports this module, so no import back at run time
    from toolgym.evals.run_folder import RunConfig

__all__ = ["Messages", "Generator", "OpenAIGenerator", "TransformersGenerator", "VLLMGenerator", "make_generator"]

Messages = list[dict[str, str]]


class Generator:
    name = "base"

    def generate(self, batch: Sequence[Messages]) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class OpenAIGenerator(Generator):
    """Any OpenAI-compatible chat endpoint; ``base_url`` like ``http://host:8000/v1``."""

    name = "openai"

    def __init__(self, base_url: str, *, model: str | None, api_key: str | None, max_new_tokens: int,
                 temperature: float, timeout: float = 120.0, retries: int = 3):
        self.url = base_url.rstrip("/")
        if not self.url.endswith("/chat/completions"):
            self.url += "/chat/completions"
        self.model = model or "default"
        self.api_key = api_key
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.timeout = timeout
        self.retries = retries

    def _one(self, messages: Messages) -> str:
        body = json.dumps({"model": self.model, "messages": messages, "max_tokens": self.max_new_tokens,
                           "temperature": self.temperature}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: Exception | None = None
        for attempt in range(self.retries):
            req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    data = json.loads(resp.read().decode("utf-8"))
                msg = (data.get("choices") or [{}])[0].get("message") or {}
                content = msg.get("content") or ""
                if not content and msg.get("tool_calls"):
                    content = json.dumps({"tool_calls": msg["tool_calls"]}, ensure_ascii=False)
                return content
            except urllib.error.HTTPError as e:
                last = e
                if e.code < 500 and e.code != 429:
                    raise RuntimeError(f"endpoint {self.url} answered HTTP {e.code}: {e.read()[:500]!r}") from e
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                last = e
            time.sleep(min(4.0, 0.5 * 2 ** attempt))
        raise RuntimeError(f"endpoint {self.url} failed after {self.retries} tries: {last}")

    def generate(self, batch: Sequence[Messages]) -> list[str]:
        return [self._one(m) for m in batch]


def _render_chat(tokenizer, messages: Messages) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    parts = [f"{m['role']}: {m['content']}" for m in messages if m.get("content")]
    return "\n".join(parts) + "\nassistant:"


class TransformersGenerator(Generator):
    """Local model folder through ``transformers`` (greedy unless ``temperature > 0``)."""

    name = "transformers"

    def __init__(self, path: str, *, max_new_tokens: int, max_input_tokens: int, temperature: float):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from toolgym.trainer.models import local_model_path

        self.torch = torch
        # an alias (smollm2-135m-instruct), a GGUF file, a folder holding one, or an HF folder: all offline
        path = local_model_path(path)
        self.tok = AutoTokenizer.from_pretrained(path)
        self.tok.padding_side = "left"
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        if torch.cuda.is_available():
            self.model = self.model.to("cuda")
        self.model.eval()
        self.max_new_tokens = max_new_tokens
        self.max_input_tokens = max_input_tokens
        self.temperature = temperature

    def _ids(self, messages: Messages) -> list[int]:
        text = _render_chat(self.tok, messages)
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        n = self.max_input_tokens
        if n and len(ids) > n:  # keep head and tail, like KAgentBench's inference scripts
            ids = ids[: n // 2] + ids[-(n - n // 2):]
        return ids

    def generate(self, batch: Sequence[Messages]) -> list[str]:
        torch = self.torch
        seqs = [self._ids(m) for m in batch]
        width = max(len(s) for s in seqs)
        pad = self.tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.model.device)
        attn = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.model.device)
        kw: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "pad_token_id": pad}
        if self.temperature > 0:
            kw.update(do_sample=True, temperature=self.temperature)
        else:
            kw.update(do_sample=False)
        with torch.no_grad():
            out = self.model.generate(input_ids=input_ids, attention_mask=attn, **kw)
        return [self.tok.decode(row[width:], skip_special_tokens=True) for row in out.tolist()]


class VLLMGenerator(Generator):
    name = "vllm"

    def __init__(self, path: str, *, max_new_tokens: int, max_input_tokens: int, temperature: float):
        from vllm import LLM, SamplingParams  # imported only here: vllm is an optional GPU extra

        from toolgym.trainer.models import local_model_path

        path = local_model_path(path)
        self.llm = LLM(model=path, max_model_len=max(2048, max_input_tokens + max_new_tokens))
        self.tok = self.llm.get_tokenizer()
        self.params = SamplingParams(max_tokens=max_new_tokens, temperature=temperature)
        self.max_input_tokens = max_input_tokens

    def generate(self, batch: Sequence[Messages]) -> list[str]:
        prompts = []
        for m in batch:
            ids = self.tok(_render_chat(self.tok, m), add_special_tokens=False)["input_ids"]
            n = self.max_input_tokens
            if n and len(ids) > n:
                ids = ids[: n // 2] + ids[-(n - n // 2):]
            prompts.append({"prompt_token_ids": ids})
        outs = self.llm.generate(prompts, self.params, use_tqdm=False)
        return [o.outputs[0].text for o in outs]


def _vllm_usable() -> bool:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover
        return False


def make_generator(cfg: RunConfig) -> Generator:
    backend = cfg.backend
    is_url = cfg.model.startswith(("http://", "https://"))
    if backend == "auto":
        backend = "openai" if is_url else ("vllm" if _vllm_usable() else "transformers")
    if backend == "openai":
        if not is_url:
            raise ValueError("--backend openai needs --model http(s)://HOST:PORT/v1")
        return OpenAIGenerator(cfg.model, model=cfg.model_name, api_key=os.environ.get(cfg.api_key_env),
                               max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, timeout=cfg.timeout)
    if is_url:
        raise ValueError(f"--backend {backend} needs a local model folder, not a URL")
    kw = dict(max_new_tokens=cfg.max_new_tokens, max_input_tokens=cfg.max_input_tokens, temperature=cfg.temperature)
    if backend == "vllm":
        return VLLMGenerator(cfg.model, **kw)
    if backend == "transformers":
        return TransformersGenerator(cfg.model, **kw)
    raise ValueError(f"unknown backend {backend!r}")
