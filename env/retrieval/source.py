"""One suite's tool catalogue and its retrievers, built on first use and shared.

Retrieval episodes (in-process env and EnvService alike) and the ``RetrieveTools`` RPC all ask a
:class:`RetrievalSource` for the catalogue and for a retriever by name, so an episode searches the
very index a client can query. Nothing is built until the first retrieval episode or query: a
server that never retrieves pays nothing, and one that does builds each index once (BM25 in about
a second; dense indexes come from the on-disk cache of :mod:`toolgym.env.retrieval.cache`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

from toolgym.env.retrieval.base import Retriever
from toolgym.env.retrieval.catalogue import Catalogue, tool_id
from toolgym.env.types import Task

__all__ = ["DEFAULT_EPISODE_RETRIEVER", "RetrievalSource"]

DEFAULT_EPISODE_RETRIEVER = "bm25"
"""The retriever a retrieval episode uses unless it names one: BM25 needs no model (and no torch),
so it works on a serve-only install; ``dense``, ``finetuned`` and ``hybrid`` need the ``retrieval`` extra."""

_EXTENDED_KEEP = 8  # catalogues extended by inline tasks' own tools, kept by content hash


class RetrievalSource:
    """The catalogue of ``tasks`` (plus extra JSONL tools) and a memo of retrievers over it.

    ``tasks`` may be a callable, so that the suite is only walked when retrieval is first used.
    Thread-safe: many sessions may start retrieval episodes at once; each index is built once.
    """

    def __init__(self, tasks: Iterable[Task] | Callable[[], Iterable[Task]], *, model_dir: str | Path | None = None):
        self._tasks = tasks
        self._model_dir = model_dir
        self._lock = threading.Lock()
        self._catalogue: Catalogue | None = None
        self._retrievers: OrderedDict[tuple[str, str], Retriever] = OrderedDict()
        self._extended: OrderedDict[str, Catalogue] = OrderedDict()

    @property
    def catalogue(self) -> Catalogue:
        with self._lock:
            if self._catalogue is None:
                tasks = self._tasks() if callable(self._tasks) else self._tasks
                self._catalogue = Catalogue.from_tasks(tasks)
            return self._catalogue

    def catalogue_for(self, task: Task) -> Catalogue:
        """The catalogue, extended by ``task``'s own tools where it has some the catalogue lacks
        (an inline task): a search must be able to find every tool the task needs."""
        cat = self.catalogue
        missing = [t for t in task.tools if tool_id(t) not in cat]
        if not missing:
            return cat
        with self._lock:
            key = cat.content_hash + ":" + ",".join(sorted(tool_id(t) for t in missing))
            ext = self._extended.get(key)
            if ext is None:
                new = Catalogue.from_tasks([task])
                ext = self._extended[key] = Catalogue(list(cat) + [e for e in new if e.id not in cat])
                while len(self._extended) > _EXTENDED_KEEP:
                    self._extended.popitem(last=False)
            else:
                self._extended.move_to_end(key)
            return ext

    def retriever(self, name: str = "", catalogue: Catalogue | None = None) -> Retriever:
        """A retriever by name (``bm25`` when empty; see :data:`~toolgym.env.retrieval.factory.RETRIEVER_NAMES`)
        over ``catalogue`` (default: this source's). ValueError for an unknown name, FileNotFoundError
        for ``finetuned`` before it was built, ImportError when the ``retrieval`` extra is missing."""
        from toolgym.env.retrieval.factory import RETRIEVER_NAMES, build_retriever

        name = name or DEFAULT_EPISODE_RETRIEVER
        if name not in RETRIEVER_NAMES:
            raise ValueError(f"unknown retriever {name!r}; choose from: {', '.join(RETRIEVER_NAMES)}")
        cat = catalogue if catalogue is not None else self.catalogue
        key = (name, cat.content_hash)
        with self._lock:
            hit = self._retrievers.get(key)
        if hit is not None:
            return hit
        # Built outside the lock: a dense index may take a while and other retrievers stay usable.
        built = build_retriever(name, cat, model_dir=self._model_dir)
        with self._lock:
            got = self._retrievers.setdefault(key, built)
            while len(self._retrievers) > len(RETRIEVER_NAMES) * (1 + _EXTENDED_KEEP):
                self._retrievers.popitem(last=False)  # the oldest (an evicted extended catalogue's first)
            return got

