"""The one interface every retriever has, and reciprocal-rank fusion.

``retrieve(query, k) -> [(tool_id, score)]``, best first, at most ``k`` items, scores comparable
only within one retriever. ``retrieve_indices`` is the same on catalogue positions (what the eval
and the batch paths use, to skip id lookups).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np

from toolgym.env.retrieval.catalogue import Catalogue

__all__ = ["RRF_K", "HybridRetriever", "Retriever", "check_query", "rrf_fuse"]

RRF_K = 60
"""The constant of reciprocal-rank fusion, 1/(RRF_K + rank): 60 is the value from Cormack et al.
(2009) and works without tuning; it keeps one retriever's top hit from drowning the other's."""


def check_query(query: object, k: object) -> tuple[str, int]:
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"the query must be a non-empty string, got {query!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return query, k


class Retriever(ABC):
    """A retriever over one :class:`Catalogue`."""

    name: str = "retriever"

    def __init__(self, catalogue: Catalogue):
        self.catalogue = catalogue

    @abstractmethod
    def scores_batch(self, queries: Sequence[str], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query, (catalogue indices, scores) of its top ``k``, best first."""

    def retrieve_indices(self, query: str, k: int) -> list[tuple[int, float]]:
        query, k = check_query(query, k)
        idx, sc = self.scores_batch([query], min(k, len(self.catalogue)))[0]
        return [(int(i), float(s)) for i, s in zip(idx, sc)]

    def best_per_name(self, query: str, k: int, keep: Callable[[str], bool] | None = None) -> list[tuple[int, float]]:
        """The best-ranked entry of each tool name, best first, at most ``k`` names (and only names
        ``keep`` accepts): what a caller shows, where same-name variants would repeat a tool. A
        small accepted set in a large catalogue may need the whole ranking to fill ``k``."""
        n = len(self.catalogue)
        depth = min(n, k * 4 + 10)  # room for same-name variants
        while True:
            out: list[tuple[int, float]] = []
            names: set[str] = set()
            for i, score in self.retrieve_indices(query, depth):
                name = self.catalogue[i].name
                if name in names or (keep is not None and not keep(name)):
                    continue
                names.add(name)
                out.append((i, score))
                if len(out) == k:
                    return out
            if depth >= n:
                return out
            depth = n

    def retrieve(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        return [(self.catalogue[i].id, s) for i, s in self.retrieve_indices(query, k)]


class HybridRetriever(Retriever):
    """Reciprocal-rank fusion of several retrievers: each contributes 1/(RRF_K + rank) for the
    tools in its top ``depth``. Ranks, not scores, are fused, so BM25's unbounded scores and a
    cosine in [-1, 1] need no calibration."""

    name = "hybrid"

    def __init__(self, parts: Sequence[Retriever], *, depth: int = 100, weights: Sequence[float] | None = None):
        if not parts:
            raise ValueError("a hybrid retriever needs at least one part")
        cat = parts[0].catalogue
        if any(p.catalogue.content_hash != cat.content_hash for p in parts):
            raise ValueError("the parts of a hybrid retriever must index the same catalogue")
        super().__init__(cat)
        self.parts = list(parts)
        self.depth = depth
        self.weights = list(weights) if weights is not None else [1.0] * len(parts)

    def scores_batch(self, queries: Sequence[str], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        depth = min(max(self.depth, k), len(self.catalogue))
        per_part = [p.scores_batch(queries, depth) for p in self.parts]
        return [rrf_fuse([results[qi][0] for results in per_part], k, self.weights) for qi in range(len(queries))]


def rrf_fuse(rankings: Sequence[np.ndarray], k: int, weights: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fuse rankings (arrays of catalogue indices, best first) by reciprocal rank; ties by index."""
    fused: dict[int, float] = {}
    for w, idx in zip(weights or [1.0] * len(rankings), rankings):
        for rank, i in enumerate(np.asarray(idx).tolist()):
            fused[i] = fused.get(i, 0.0) + w / (RRF_K + rank + 1)
    top = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return np.array([i for i, _ in top], dtype=np.int64), np.array([s for _, s in top], dtype=np.float32)
