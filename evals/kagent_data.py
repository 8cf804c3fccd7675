"""Loading KAgentBench inputs: items and predictions from JSONL/JSON-array files or in-memory records.

Items use KAgentBench's schema (``id``, ``query``, ``type``, ``golden_result_list``, ``funcs``,
``prompt_input``, ``memory``, ``memory_type``, ``memory_last_task``); predictions are
``{"id", "model_predict"}`` records. :func:`validate_item` checks only the shapes the scorer iterates, so a
malformed file fails here with the field named rather than deep inside scoring. The scorer itself is
:mod:`toolgym.evals.kagentbench`, which re-exports these loaders.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["load_items", "load_predictions", "validate_item"]


def _iter_json_records(src) -> Iterable[dict]:
    if isinstance(src, (str, os.PathLike)):
        text = Path(src).read_text(encoding="utf-8")
        stripped = text.lstrip()
        if stripped.startswith("["):
            yield from json.loads(stripped)
            return
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{src}:{n}: not a JSON object: {e}") from e
        return
    if isinstance(src, Mapping):
        yield src
        return
    yield from src


_LIST_FIELDS = ("golden_result_list", "funcs")


def validate_item(rec: Any) -> dict:
    """Check the fields the scorer iterates have the right shape; ValueError says which is wrong."""
    if not isinstance(rec, dict) or "id" not in rec:
        raise ValueError(f"not a KAgentBench item (needs an 'id'): {str(rec)[:200]}")
    for key in _LIST_FIELDS:
        value = rec.get(key)
        if value is not None and not isinstance(value, list):
            raise ValueError(f"item {str(rec['id'])[:80]!r}: {key!r} must be a list (KAgentBench schema), got {type(value).__name__}")
    return rec


def load_items(src) -> list[dict]:
    """Items from a JSONL/JSON-array file or an iterable of dicts (kept as dicts, key order kept)."""
    return [validate_item(rec) for rec in _iter_json_records(src)]


def load_predictions(src) -> dict[str, Any]:
    """``{id: model_predict}`` from ``{"id", "model_predict"}`` records (a mapping is returned as is)."""
    if isinstance(src, Mapping) and "id" not in src:
        return dict(src)
    out: dict[str, Any] = {}
    for rec in _iter_json_records(src):
        if not isinstance(rec, dict) or "id" not in rec:
            raise ValueError(f"not a prediction record (needs an 'id'): {str(rec)[:200]}")
        out[str(rec["id"])] = rec.get("model_predict", {})
    return out
