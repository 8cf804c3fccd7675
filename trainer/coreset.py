"""Coreset selection and an online replay (rehearsal) buffer for SFT, as the seeds describe.

Each example gets three metrics (added to the example dict, kept if already present — e.g. a ``loss`` computed
elsewhere is respected):

- ``loss``: difficulty. With a model, its mean per-token loss on the assistant tokens (``loss_source='model'``);
  otherwise a proxy: ``log(1 + token_length) * (1 - lexical_diversity)`` (long, repetitive answers rank harder);
- ``token_length``: tokens of the whole conversation (characters / 4 without a tokenizer);
- ``lexical_diversity``: distinct / total word tokens of the assistant turns.

:class:`CoresetSelector` strategies:

- ``loss_topk`` — the ``k`` highest-loss examples;
- ``diversity`` — greedy k-center (farthest-point) selection over hashed bag-of-words vectors of the whole
  conversation (cosine distance): covers the space of tasks/tools/templates;
- ``hybrid`` — ``round(k * hybrid_loss_fraction)`` by loss, the rest by k-center *given* those (so the diverse
  part fills gaps the hard part leaves);
- ``random`` — uniform without replacement.

:class:`OnlineContinualLearner` keeps a reservoir-sampled buffer of past examples; each round's training data is
the new examples plus ``round(replay_ratio / (1 - replay_ratio) * n_new)`` examples drawn from the buffer (so
replay is ``replay_ratio`` of the round), after which the new examples enter the buffer.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

_WORD = re.compile(r"\w+", re.UNICODE)


def _assistant_text(ex: dict[str, Any]) -> str:
    msgs = ex.get("messages") or []
    return "\n".join(m.get("content", "") for m in msgs if m.get("role") == "assistant")


def _all_text(ex: dict[str, Any]) -> str:
    msgs = ex.get("messages") or []
    return "\n".join(m.get("content", "") for m in msgs)


def lexical_diversity(text: str) -> float:
    words = [w.lower() for w in _WORD.findall(text)]
    return len(set(words)) / len(words) if words else 0.0


def annotate(
    examples: list[dict[str, Any]],
    *,
    tokenizer: Any | None = None,
    loss_fn: Callable[[list[dict[str, Any]]], list[float]] | None = None,
) -> list[dict[str, Any]]:
    """Add ``loss``, ``token_length`` and ``lexical_diversity`` to each example (in place; existing values kept)."""
    for ex in examples:
        if "token_length" not in ex:
            if tokenizer is not None:
                ids = tokenizer.apply_chat_template(ex["messages"], tokenize=True, return_dict=False)
                ex["token_length"] = len(ids)
            else:
                ex["token_length"] = max(1, len(_all_text(ex)) // 4)
        if "lexical_diversity" not in ex:
            ex["lexical_diversity"] = lexical_diversity(_assistant_text(ex))
    missing = [ex for ex in examples if "loss" not in ex]
    if missing:
        if loss_fn is not None:
            for ex, loss in zip(missing, loss_fn(missing)):
                ex["loss"] = float(loss)
        else:
            for ex in missing:
                ex["loss"] = math.log1p(ex["token_length"]) * (1.0 - ex["lexical_diversity"])
    return examples


def model_loss_fn(model: Any, tokenizer: Any, *, batch_size: int = 8, max_length: int = 2048) -> Callable[[list[dict[str, Any]]], list[float]]:
    """Per-example mean loss of ``model`` on the assistant tokens (the SFT target), no gradients."""

    def fn(examples: list[dict[str, Any]]) -> list[float]:
        import torch

        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        out: list[float] = []
        try:
            for start in range(0, len(examples), batch_size):
                chunk = examples[start : start + batch_size]
                seqs, labels = [], []
                for ex in chunk:
                    msgs = ex["messages"]
                    ids: list[int] = []
                    lab: list[int] = []
                    # incremental rendering: a message's tokens are the difference of two prefix renderings
                    prev: list[int] = []
                    for i in range(len(msgs)):
                        cur = tokenizer.apply_chat_template(msgs[: i + 1], tokenize=True, return_dict=False)
                        new = cur[len(prev) :] if cur[: len(prev)] == prev else cur[len(ids) :]
                        ids += new
                        lab += new if msgs[i]["role"] == "assistant" else [-100] * len(new)
                        prev = cur
                    seqs.append(ids[:max_length])
                    labels.append(lab[:max_length])
                width = max(len(s) for s in seqs)
                pad = tokenizer.pad_token_id or 0
                x = torch.full((len(seqs), width), pad, dtype=torch.long)
                y = torch.full((len(seqs), width), -100, dtype=torch.long)
                att = torch.zeros((len(seqs), width), dtype=torch.long)
                for i, (s, lab) in enumerate(zip(seqs, labels)):
                    x[i, : len(s)] = torch.tensor(s)
                    y[i, : len(lab)] = torch.tensor(lab)
                    att[i, : len(s)] = 1
                with torch.no_grad():
                    logits = model(input_ids=x.to(device), attention_mask=att.to(device)).logits.float()
                logp = logits[:, :-1].log_softmax(-1)
                tgt = y[:, 1:].to(device)
                mask = tgt != -100
                tok_loss = -logp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
                per = tok_loss.sum(-1) / mask.sum(-1).clamp(min=1)
                out.extend(float(v) for v in per.cpu())
        finally:
            if was_training:
                model.train()
        return out

    return fn


def _features(text: str, dim: int = 256) -> list[float]:
    vec = [0.0] * dim
    for w in _WORD.findall(text.lower()):
        h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
        vec[h % dim] += 1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def _cos_dist(a: list[float], b: list[float]) -> float:
    return 1.0 - sum(x * y for x, y in zip(a, b))


class CoresetSelector:
    """Pick ``target_size`` examples by ``strategy`` (loss_topk, diversity, hybrid, random)."""

    STRATEGIES = ("loss_topk", "diversity", "hybrid", "random")

    def __init__(self, strategy: str = "hybrid", target_size: int = 0, *, hybrid_loss_fraction: float = 0.5, seed: int = 0):
        if strategy not in self.STRATEGIES:
            raise ValueError(f"unknown coreset strategy {strategy!r}; use one of {list(self.STRATEGIES)}")
        self.strategy = strategy
        self.target_size = target_size
        self.hybrid_loss_fraction = hybrid_loss_fraction
        self.seed = seed

    def select(self, examples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        n = len(examples)
        k = self.target_size if self.target_size > 0 else max(1, n // 2)
        if k >= n:
            return list(examples)
        if self.strategy == "random":
            return random.Random(self.seed).sample(list(examples), k)
        if self.strategy == "loss_topk":
            idx = self._by_loss(examples, k)
        elif self.strategy == "diversity":
            idx = self._k_center(examples, k, [])
        else:
            k_loss = int(round(k * self.hybrid_loss_fraction))
            first = self._by_loss(examples, k_loss)
            idx = first + self._k_center(examples, k - k_loss, first)
        return [examples[i] for i in idx]

    @staticmethod
    def _by_loss(examples: Sequence[dict[str, Any]], k: int) -> list[int]:
        if k <= 0:
            return []
        order = sorted(range(len(examples)), key=lambda i: (-float(examples[i].get("loss", 0.0)), i))
        return order[:k]

    def _k_center(self, examples: Sequence[dict[str, Any]], k: int, chosen: list[int]) -> list[int]:
        if k <= 0:
            return []
        feats = [_features(_all_text(ex)) for ex in examples]
        n = len(examples)
        dist = [math.inf] * n
        taken = set(chosen)
        for c in chosen:
            for i in range(n):
                dist[i] = min(dist[i], _cos_dist(feats[i], feats[c]))
        picked: list[int] = []
        if not chosen:
            first = random.Random(self.seed).randrange(n)
            picked.append(first)
            taken.add(first)
            for i in range(n):
                dist[i] = _cos_dist(feats[i], feats[first])
        while len(picked) < k:
            best = max((i for i in range(n) if i not in taken), key=lambda i: (dist[i], -i), default=None)
            if best is None:
                break
            picked.append(best)
            taken.add(best)
            for i in range(n):
                d = _cos_dist(feats[i], feats[best])
                if d < dist[i]:
                    dist[i] = d
        return picked


class OnlineContinualLearner:
    """Rehearsal buffer with reservoir sampling; mixes replay into each round at ``replay_ratio``."""

    def __init__(self, buffer_size: int = 4096, replay_ratio: float = 0.3, *, seed: int = 0):
        if not 0.0 <= replay_ratio < 1.0:
            raise ValueError("replay_ratio must be in [0, 1)")
        self.buffer_size = buffer_size
        self.replay_ratio = replay_ratio
        self.buffer: list[dict[str, Any]] = []
        self.seen = 0
        self.rng = random.Random(seed)

    def replay_count(self, n_new: int) -> int:
        if self.replay_ratio <= 0 or not self.buffer:
            return 0
        return min(len(self.buffer), int(round(self.replay_ratio / (1.0 - self.replay_ratio) * n_new)))

    def mix(self, new: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """This round's data: ``new`` plus replayed examples (marked ``replay=True``), shuffled; then remember ``new``."""
        k = self.replay_count(len(new))
        replay = [dict(ex, replay=True) for ex in self.rng.sample(self.buffer, k)] if k else []
        round_data = [dict(ex, replay=False) for ex in new] + replay
        self.rng.shuffle(round_data)
        self.add(new)
        return round_data

    def add(self, examples: Sequence[dict[str, Any]]) -> None:
        for ex in examples:
            self.seen += 1
            if len(self.buffer) < self.buffer_size:
                self.buffer.append(ex)
            else:
                j = self.rng.randrange(self.seen)
                if j < self.buffer_size:
                    self.buffer[j] = ex


__all__ = ["CoresetSelector", "OnlineContinualLearner", "annotate", "lexical_diversity", "model_loss_fn"]
