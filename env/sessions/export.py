"""Export the rollout table as a dataset: JSONL, Parquet, or a Hugging Face ``datasets``
folder (``save_to_disk``; read back with ``datasets.load_from_disk``).

Every format has the same flat columns, one row per finished episode: ids, task, template,
the prompt, the actions and observations in step order (ready for SFT/DPO pairs), per-step
rewards and timings, and the reward breakdown with every component and penalty as its own
column (absent penalties are 0), so the schema does not depend on which rows were exported.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

from toolgym.env.reward.config import COMPONENTS, OPTIONAL_COMPONENTS, PENALTIES

FORMATS = ("jsonl", "parquet", "hf")


def flat_row(r: dict[str, Any]) -> dict[str, Any]:
    rw = r.get("reward") or {}
    steps = r.get("steps") or []
    seed = r.get("seed")
    return {
        "id": str(r.get("id", "")),
        "session_id": r.get("session_id", ""),
        "task_id": r.get("task_id", ""),
        "category": r.get("category", ""),
        "kind": r.get("kind", ""),
        "template": r.get("template", ""),
        "seed": int(seed) if isinstance(seed, int) else None,
        "config_hash": r.get("config_hash", ""),
        "prompt": r.get("prompt", ""),
        "actions": [s.get("action", "") for s in steps],
        "observations": [s.get("observation", "") for s in steps],
        "step_rewards": [float(s.get("reward", 0.0)) for s in steps],
        "step_ms": [float(s.get("elapsed_ms", 0.0)) for s in steps],
        "total": float(rw.get("total", 0.0)),
        "valid": bool(rw.get("valid", False)),
        "feedback": rw.get("feedback", ""),
        "components": {k: float((rw.get("components") or {}).get(k, 0.0)) for k in COMPONENTS},
        # Scored only in some episodes (retrieval ones): null where it was not, never a made-up 0.
        **{k: _maybe_float((rw.get("components") or {}).get(k)) for k in OPTIONAL_COMPONENTS},
        "penalties": {k: float((rw.get("penalties") or {}).get(k, 0.0)) for k in PENALTIES},
        "penalty_counts": {k: int((rw.get("penalty_counts") or {}).get(k, 0)) for k in PENALTIES},
        "terminated": bool(r.get("terminated", False)),
        "truncated": bool(r.get("truncated", False)),
        "n_steps": int(r.get("n_steps", len(steps))),
        "created_at": float(r.get("created_at", 0.0)),
        "finished_at": float(r.get("finished_at", 0.0)),
        "reward_config": json.dumps(r.get("reward_config") or {}, sort_keys=True),
    }


def _maybe_float(v: Any) -> float | None:
    return None if v is None else float(v)


def arrow_schema() -> Any:
    import pyarrow as pa

    f64, s = pa.float64(), pa.string()
    return pa.schema([
        ("id", s), ("session_id", s), ("task_id", s), ("category", s), ("kind", s), ("template", s), ("seed", pa.int64()),
        ("config_hash", s), ("prompt", s), ("actions", pa.list_(s)), ("observations", pa.list_(s)),
        ("step_rewards", pa.list_(f64)), ("step_ms", pa.list_(f64)), ("total", f64), ("valid", pa.bool_()), ("feedback", s),
        ("components", pa.struct([(k, f64) for k in COMPONENTS])), ("penalties", pa.struct([(k, f64) for k in PENALTIES])),
        ("penalty_counts", pa.struct([(k, pa.int64()) for k in PENALTIES])),
        *[(k, f64) for k in OPTIONAL_COMPONENTS], ("terminated", pa.bool_()), ("truncated", pa.bool_()),
        ("n_steps", pa.int64()), ("created_at", f64), ("finished_at", f64), ("reward_config", s),
    ])


def export(rollouts: Iterable[dict[str, Any]], fmt: str, out: str) -> int:
    """Write ``rollouts`` to ``out`` (a file for jsonl/parquet, a folder for hf); returns the row count."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {list(FORMATS)}")
    rows = [flat_row(r) for r in rollouts]
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise ValueError(f"cannot write {out}: folder {parent} does not exist")
    if fmt == "jsonl":
        tmp = out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        os.replace(tmp, out)  # a reader never sees half an export
        return len(rows)
    try:
        import pyarrow as pa
    except ImportError:
        raise ValueError(f"--format {fmt} needs pyarrow: pip install 'toolgym[train]' (or pip install pyarrow)") from None
    table = pa.Table.from_pylist(rows, schema=arrow_schema())
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, out)
        return len(rows)
    try:
        import datasets
    except ImportError:
        raise ValueError("--format hf needs the datasets library: pip install 'toolgym[train]' (or pip install datasets)") from None
    datasets.Dataset(table).save_to_disk(out)
    return len(rows)
