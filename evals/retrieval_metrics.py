"""Retrieval metrics over tool names: Recall@k, nDCG@10, MRR.

A ranking of catalogue entries is first collapsed to tool names (first occurrence kept): BFCL
offers some functions under one name with slightly different schemas, and retrieving any of them
finds the tool. Relevance is binary; a query needing several tools (``cd`` then ``mv``) has
several relevant names. Recall@k = |relevant in the top k| / |relevant|; nDCG@10 uses gains of 1
and the ideal ranking of min(|relevant|, 10) hits; MRR is 1 / rank of the first relevant name
(0 when none is in the ranking).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["METRICS", "dedupe_names", "mean_metrics", "query_metrics"]

METRICS = ("recall@1", "recall@5", "recall@10", "ndcg@10", "mrr")


def dedupe_names(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def query_metrics(ranked: Sequence[str], relevant: frozenset[str] | set[str]) -> dict[str, float]:
    if not relevant:
        raise ValueError("a query needs at least one relevant tool to be scored")
    ranked = dedupe_names(ranked)
    out = {f"recall@{k}": len(relevant.intersection(ranked[:k])) / len(relevant) for k in (1, 5, 10)}
    dcg = sum(1.0 / math.log2(i + 2) for i, n in enumerate(ranked[:10]) if n in relevant)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    out["ndcg@10"] = dcg / idcg
    first = next((i for i, n in enumerate(ranked) if n in relevant), None)
    out["mrr"] = 0.0 if first is None else 1.0 / (first + 1)
    return out


def mean_metrics(rows: Sequence[dict[str, float]]) -> dict[str, float | None]:
    if not rows:
        return {m: None for m in METRICS}  # no query in this setting: absent, never NaN
    return {m: sum(r[m] for r in rows) / len(rows) for m in METRICS}
