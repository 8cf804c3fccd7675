"""Retrieval over the wire: ``RetrievalOptions`` of a reset (or a Score) and the ``RetrieveTools`` RPC.

Both go through one :class:`~toolgym.env.retrieval.source.RetrievalSource` per server, so the
tools a client finds with ``RetrieveTools`` are the ones a ``search_tools`` call in an episode
finds with the same retriever. Errors are statuses that say what to change: a bad option is
INVALID_ARGUMENT; a retriever this server cannot build (the ``finetuned`` model not trained yet,
or the ``retrieval`` extra not installed) is FAILED_PRECONDITION naming the command that fixes it.
"""

from __future__ import annotations

import json
from typing import Any

from toolgym.env.retrieval.episode_retrieval import RETRIEVAL_DEFAULTS, check_retrieval_options
from toolgym.env.retrieval.source import RetrievalSource
from toolgym.env.server.errors import invalid, precondition
from toolgym.v1 import env_pb2, reward_pb2

__all__ = ["MAX_RETRIEVE_K", "retrieval_options", "retrieve_tools", "warm_retriever"]

MAX_RETRIEVE_K = 100
"""The most tools one ``RetrieveTools`` answers (a tool index, not a catalogue dump: see ListTools)."""


def retrieval_options(msg: reward_pb2.RetrievalOptions | None) -> dict[str, Any]:
    """EpisodeOptions' retrieval fields for a request's ``RetrievalOptions`` (empty fields: defaults)."""
    if msg is None:
        return dict(RETRIEVAL_DEFAULTS)
    out = {"tool_pool": msg.tool_pool or RETRIEVAL_DEFAULTS["tool_pool"], "retrieval": msg.mode or RETRIEVAL_DEFAULTS["retrieval"],
           "retriever": msg.retriever, "retrieval_k": msg.k or RETRIEVAL_DEFAULTS["retrieval_k"]}
    try:
        check_retrieval_options(out["tool_pool"], out["retrieval"], out["retriever"], out["retrieval_k"])
    except ValueError as e:
        raise invalid(f"retrieval: {e}") from None
    return out


def warm_retriever(source: RetrievalSource, name: str) -> None:
    """Build (or fetch) a retriever now, so that a reset fails with a clear status rather than
    its episode failing later."""
    try:
        source.retriever(name)
    except ValueError as e:
        raise invalid(f"retrieval: {e}") from None
    except FileNotFoundError as e:
        raise precondition(f"retriever {name!r} is not available on this server: {e}") from None
    except ImportError as e:
        raise precondition(f"retriever {name!r} needs the retrieval extra on the server "
                           f"(pip install 'toolgym[retrieval]'; bm25 needs none): {e}") from None


def retrieve_tools(source: RetrievalSource, req: env_pb2.RetrieveToolsRequest) -> env_pb2.RetrieveToolsResponse:
    if not req.query.strip():
        raise invalid("query is empty; send the words of what the tool should do")
    if req.k < 0 or req.k > MAX_RETRIEVE_K:
        raise invalid(f"k must be in 1..{MAX_RETRIEVE_K} (0 = 10), got {req.k}")
    k = req.k or 10
    warm_retriever(source, req.retriever)
    retriever = source.retriever(req.retriever)
    cat = retriever.catalogue
    tools = [env_pb2.RetrievedTool(name=cat[i].name, id=cat[i].id, score=float(score),
                                   spec_json=json.dumps(cat[i].spec.to_dict(), ensure_ascii=False))
             for i, score in retriever.best_per_name(req.query, k)]  # one entry per name: its best-ranked variant
    return env_pb2.RetrieveToolsResponse(tools=tools, retriever=req.retriever or "bm25", catalogue_size=len(cat))
