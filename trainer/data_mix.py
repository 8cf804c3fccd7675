"""Task-type weighting of the SFT mix: sample examples so their task types follow ``sft.task_weights``.

Types absent from the data (or weighted 0) are dropped and the shares renormalised over the rest; a type with
fewer examples than its share asks for is up-sampled (``allow_upsample``) or capped. Works on any example dicts
carrying a type key (``task_type`` by default, see :func:`toolgym.trainer.data.task_type`). Import through
:mod:`toolgym.trainer.data`.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from toolgym.trainer.config import TASK_TYPES


def normalized_weights(weights: dict[str, float], present: Iterable[str]) -> dict[str, float]:
    present = set(present)
    w = {k: float(v) for k, v in weights.items() if k in present and v > 0}
    s = sum(w.values())
    return {k: v / s for k, v in w.items()} if s > 0 else {}


def weighted_mix(
    examples: Sequence[dict[str, Any]],
    weights: dict[str, float],
    n: int,
    rng: random.Random,
    *,
    allow_upsample: bool = True,
    type_key: str = "task_type",
) -> list[dict[str, Any]]:
    """Sample ``n`` examples whose task types follow ``weights`` (``n == 0``: the largest mix that needs no repeats).

    Types absent from ``examples`` or weighted 0 are dropped and the weights renormalised over the rest.
    """
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ex in examples:
        by_type[ex[type_key]].append(ex)
    w = normalized_weights(weights, by_type)
    if not w:
        return []
    if n <= 0:  # biggest n such that every type's share fits without repetition
        n = int(min(len(by_type[k]) / share for k, share in w.items()))
    targets = {k: share * n for k, share in w.items()}
    counts = {k: int(math.floor(v)) for k, v in targets.items()}
    for k in sorted(targets, key=lambda k: targets[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
        counts[k] += 1  # largest remainders
    out: list[dict[str, Any]] = []
    for k in sorted(counts):
        pool = list(by_type[k])
        rng.shuffle(pool)
        c = counts[k]
        if c <= len(pool):
            out.extend(pool[:c])
        elif allow_upsample:
            out.extend(pool)
            out.extend(rng.choice(pool) for _ in range(c - len(pool)))
        else:
            out.extend(pool)
    rng.shuffle(out)
    return out


def type_distribution(examples: Sequence[dict[str, Any]], type_key: str = "task_type") -> dict[str, float]:
    c = Counter(ex[type_key] for ex in examples)
    n = sum(c.values()) or 1
    return {k: c[k] / n for k in TASK_TYPES if k in c}


__all__ = [
    "normalized_weights",
    "type_distribution",
    "weighted_mix",
]
