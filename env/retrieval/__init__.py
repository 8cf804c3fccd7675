"""Tool retrieval over thousands of tools: a catalogue, BM25 / dense / hybrid retrievers, an index cache.

Every retriever answers ``retrieve(query, k) -> [(tool_id, score)]``, best first. Build one with
:func:`toolgym.env.retrieval.factory.build_retriever` (``bm25``, ``dense``, ``finetuned``, ``hybrid``).
"""

from toolgym.env.retrieval.base import HybridRetriever, Retriever
from toolgym.env.retrieval.catalogue import Catalogue, CatalogueEntry, load_tools_jsonl, render_tool, tool_id

__all__ = ["Catalogue", "CatalogueEntry", "HybridRetriever", "Retriever", "load_tools_jsonl", "render_tool", "tool_id"]
