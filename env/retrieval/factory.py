"""Building the catalogue of a suite and a retriever by name.

Names: ``bm25``; ``dense`` (base all-MiniLM-L6-v2); ``finetuned`` (the model that
``toolgym train retriever`` saves, by default in :func:`default_model_dir`); ``hybrid``
(reciprocal-rank fusion of BM25 and the fine-tuned model, or of BM25 and the base model when no
fine-tuned model has been built); ``auto`` is what ``toolgym tools search`` uses: ``hybrid``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from toolgym.env.retrieval.base import HybridRetriever, Retriever
from toolgym.env.retrieval.catalogue import Catalogue, load_tools_jsonl

__all__ = ["BUILD_COMMAND", "RETRIEVER_NAMES", "build_retriever", "default_model_dir", "load_catalogue"]

log = logging.getLogger(__name__)

RETRIEVER_NAMES = ("auto", "bm25", "dense", "finetuned", "hybrid")

BUILD_COMMAND = "toolgym train retriever --config trainer/configs/retriever.yaml"
"""The one command that builds the default fine-tuned retriever (named in the README and errors)."""


def default_model_dir() -> Path:
    """Where ``toolgym train retriever`` saves the default model and ``finetuned`` looks for it."""
    from toolgym.env.tasks.cache import cache_dir

    return cache_dir() / "models" / "retriever-default"


def load_catalogue(suite: str = "default", tool_files: Sequence[str] = (), categories: Sequence[str] | None = None) -> Catalogue:
    """The catalogue of a suite (by name or JSONL path) plus the tools of user JSONL tool files."""
    from toolgym.env.tasks.suite import load_suite

    tasks = load_suite(suite, categories=categories) if suite else ()
    extra = [(spec, str(path)) for path in tool_files for spec in load_tools_jsonl(path)]
    cat = Catalogue.from_tasks(tasks, extra)
    if not len(cat):
        raise ValueError(f"the catalogue is empty: suite {suite!r} offers no tools and no --tools file was given")
    return cat


def _finetuned_dir(model_dir: str | Path | None) -> Path | None:
    path = Path(model_dir).expanduser() if model_dir else default_model_dir()
    return path if (path / "modules.json").is_file() else None


def build_retriever(
    name: str,
    catalogue: Catalogue,
    *,
    model_dir: str | Path | None = None,
    use_cache: bool = True,
    show_progress: bool = False,
) -> Retriever:
    """A retriever by name over ``catalogue``. ``model_dir`` is the fine-tuned model (default:
    :func:`default_model_dir`); ``finetuned`` without one raises ``FileNotFoundError`` naming
    :data:`BUILD_COMMAND`; ``hybrid`` / ``auto`` fall back to the base model with a warning."""
    if name not in RETRIEVER_NAMES:
        raise ValueError(f"unknown retriever {name!r}; choose from: {', '.join(RETRIEVER_NAMES)}")
    from toolgym.env.retrieval.bm25 import BM25Retriever

    if name == "bm25":
        return BM25Retriever(catalogue, use_cache=use_cache)
    from toolgym.env.retrieval.dense import DenseRetriever

    if name == "dense":
        return DenseRetriever(catalogue, use_cache=use_cache, show_progress=show_progress)
    tuned = _finetuned_dir(model_dir)
    if name == "finetuned":
        if tuned is None:
            where = model_dir or default_model_dir()
            raise FileNotFoundError(f"no fine-tuned retriever at {where}; build it with `{BUILD_COMMAND}`")
        r = DenseRetriever(catalogue, tuned, use_cache=use_cache, show_progress=show_progress)
        r.name = "finetuned"
        return r
    if tuned is None:
        log.warning("no fine-tuned retriever at %s: hybrid uses the base model (build it with `%s`)",
                    model_dir or default_model_dir(), BUILD_COMMAND)
    dense = DenseRetriever(catalogue, tuned, use_cache=use_cache, show_progress=show_progress)
    return HybridRetriever([BM25Retriever(catalogue, use_cache=use_cache), dense])
