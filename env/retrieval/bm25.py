"""Lexical retrieval: BM25 (``bm25s``) over the tools' rendered texts, cached on disk.

Tokens are lower-cased words with identifiers split (``getWeather`` → ``get``, ``weather``) and
English stop words dropped; the query is tokenized the same way. Words the catalogue never uses
are dropped from the query (they cannot match anything); a query left with no known word scores
every tool 0, and the result is then the first ``k`` tools in catalogue order with score 0.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

from toolgym.env.retrieval.base import Retriever
from toolgym.env.retrieval.cache import index_key, index_path, write_index_dir
from toolgym.env.retrieval.catalogue import Catalogue, split_identifier

__all__ = ["BM25Retriever", "tokenize"]

log = logging.getLogger(__name__)

_WORD = re.compile(r"[0-9a-z]+")
TOKENIZER_VERSION = "words-en-plus-1"
"""Part of the index key: an index built with another tokenization is never loaded."""


def _stopwords() -> frozenset[str]:
    # The larger list: queries are questions ("what is", "can you"), and those words say nothing.
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS)


_STOP: frozenset[str] | None = None


def tokenize(text: str) -> list[str]:
    global _STOP
    if _STOP is None:
        _STOP = _stopwords()
    return [w for w in _WORD.findall(split_identifier(text).lower()) if w not in _STOP]


class BM25Retriever(Retriever):
    name = "bm25"

    def __init__(self, catalogue: Catalogue, *, use_cache: bool = True, k1: float = 1.5, b: float = 0.75):
        super().__init__(catalogue)
        import bm25s

        self.key = index_key("bm25", catalogue.content_hash, f"{k1}:{b}", TOKENIZER_VERSION)
        path = index_path("bm25", self.key)
        model = None
        if use_cache and path.is_dir():
            try:
                model = bm25s.BM25.load(str(path), show_progress=False, verbosity=0)
            except Exception as e:  # noqa: BLE001 - a corrupt cache is rebuilt, never fatal
                log.warning("ignoring unreadable BM25 index %s (%s)", path, e)
        if model is None:
            model = bm25s.BM25(k1=k1, b=b)
            # An empty document would break bm25s's vocabulary; "_" is a token no query yields.
            model.index([tokenize(t) or ["_"] for t in catalogue.texts()], show_progress=False)
            if use_cache:
                write_index_dir(path, lambda tmp: model.save(str(tmp), show_progress=False))
        self.model = model
        self.vocab = set(model.vocab_dict)

    def scores_batch(self, queries: Sequence[str], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        k = min(k, len(self.catalogue))
        out = []
        for q in queries:
            toks = [t for t in tokenize(q) if t in self.vocab]
            if not toks:
                out.append((np.arange(k, dtype=np.int64), np.zeros(k, dtype=np.float32)))
                continue
            scores = self.model.get_scores(toks)
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            top = top[np.lexsort((top, -scores[top]))]
            out.append((top.astype(np.int64), scores[top].astype(np.float32)))
        return out

