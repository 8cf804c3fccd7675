"""Token side of a rollout: chat-template-exact observation ids, and generation over a transformers model.

:class:`ObservationTokenizer` tokenizes the prompt through the chat template and gives the exact ids a following
observation adds (render with and without the message, keep the difference: special tokens stop BPE merges
across the boundary, so the slice is exact). Generation is a ``GenerateFn``:
``generate(prompt_ids_list, max_new_tokens) -> (completion_ids_list, logprobs|None)``; :class:`HFGenerator` wraps
``model.generate``. Nothing here imports vLLM. Import through :mod:`toolgym.trainer.rollout`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

GenerateFn = Callable[[list[list[int]], int], tuple[list[list[int]], list[list[float]] | None]]


class ObservationTokenizer:
    """Chat-template-exact ids for an observation appended after a finished assistant turn."""

    def __init__(self, tokenizer: Any, chat_template: str | None = None, role: str = "user"):
        self.tok = tokenizer
        self.chat_template = chat_template
        self.role = role
        self.eos_id = tokenizer.eos_token_id
        self._prefix_cache: list[int] | None = None

    def _apply(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
        out = self.tok.apply_chat_template(
            messages,
            tokenize=True,
            add_generation_prompt=add_generation_prompt,
            chat_template=self.chat_template,
            return_dict=False,
        )
        if isinstance(out, dict) or hasattr(out, "keys"):
            out = out["input_ids"]
        if out and isinstance(out[0], list):
            out = out[0]
        return list(out)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        return self._apply(messages, add_generation_prompt=True)

    def suffix_ids(self, observation: str) -> list[int]:
        base = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
        if self._prefix_cache is None:
            prefix = self._apply(base, add_generation_prompt=False)
            eos = [i for i, t in enumerate(prefix) if t == self.eos_id]
            if eos:
                prefix = prefix[: eos[-1] + 1]
            self._prefix_cache = prefix
        prefix = self._prefix_cache
        full = self._apply(base + [{"role": self.role, "content": observation}], add_generation_prompt=True)
        if full[: len(prefix)] != prefix:
            raise ValueError("chat template is not prefix-preserving; cannot append observations token-exactly")
        return full[len(prefix) :]


class HFGenerator:
    """``GenerateFn`` over a transformers causal LM (left-padded batch generate, cut after the first EOS)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        do_sample: bool = True,
        temperature: float = 1.0,
        top_p: float = 1.0,
        batch_size: int = 64,
        return_logprobs: bool = False,
    ):
        self.model = model
        self.tok = tokenizer
        self.do_sample = do_sample
        self.temperature = temperature
        self.top_p = top_p
        self.batch_size = batch_size
        self.return_logprobs = return_logprobs

    def __call__(self, prompts: list[list[int]], max_new_tokens: int) -> tuple[list[list[int]], list[list[float]] | None]:
        import torch

        eos_ids = self.tok.eos_token_id
        eos_set = {eos_ids} if isinstance(eos_ids, int) else set(eos_ids or [])
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else next(iter(eos_set))
        device = next(self.model.parameters()).device
        outs: list[list[int]] = []
        lps: list[list[float]] | None = [] if self.return_logprobs else None
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(prompts), self.batch_size):
                chunk = prompts[start : start + self.batch_size]
                width = max(len(p) for p in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                att = torch.zeros((len(chunk), width), dtype=torch.long)
                for i, p in enumerate(chunk):
                    ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
                    att[i, width - len(p) :] = 1
                kw: dict[str, Any] = dict(
                    max_new_tokens=max_new_tokens,
                    do_sample=self.do_sample,
                    pad_token_id=pad,
                    eos_token_id=list(eos_set),
                    return_dict_in_generate=True,
                    output_scores=self.return_logprobs,
                )
                if self.do_sample:
                    kw.update(temperature=self.temperature, top_p=self.top_p, top_k=0)
                else:
                    kw.update(temperature=None, top_p=None, top_k=None)
                with torch.no_grad():
                    res = self.model.generate(input_ids=ids.to(device), attention_mask=att.to(device), **kw)
                gen = res.sequences[:, width:].cpu()
                if self.return_logprobs:
                    scores = torch.stack(res.scores, dim=1).float().log_softmax(-1).cpu()  # (B, T, V)
                for i in range(len(chunk)):
                    row = gen[i].tolist()
                    cut = len(row)
                    for j, t in enumerate(row):
                        if t in eos_set:
                            cut = j + 1
                            break
                    row = row[:cut]
                    outs.append(row)
                    if lps is not None:
                        lps.append([float(scores[i, j, t]) for j, t in enumerate(row)])
        finally:
            if was_training:
                self.model.train()
        return outs, lps


__all__ = [
    "GenerateFn",
    "HFGenerator",
    "ObservationTokenizer",
]
