"""What an eval run is and where it lives: :class:`RunConfig` and the resumable run folder.

``predictions.jsonl`` is appended and flushed per item; an interrupted run resumes where it
stopped, so a line cut by the interruption is dropped before appending again. Shared by the run
loop (:mod:`toolgym.evals.runner`), the BFCL suite (:mod:`toolgym.evals.bfcl_run`) and the
generators, which all read the config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunConfig:
    model: str
    suite: str = "kagentbench"
    out: str = "runs/eval"
    data: str | None = None
    backend: str = "auto"  # auto | transformers | vllm | openai
    model_name: str | None = None  # served model id for OpenAI endpoints
    api_key_env: str = "OPENAI_API_KEY"
    max_new_tokens: int = 512
    max_input_tokens: int = 3072
    temperature: float = 0.0
    batch_size: int = 8
    limit: int = 0
    system: str = ""
    templates: tuple[str, ...] = ()  # kagentbench: only these prompt templates; bfcl: templates to cycle
    server: str | None = None
    categories: tuple[str, ...] = ()
    max_steps: int = 8
    strict: bool = False
    bleu: bool = True
    name: str = ""
    progress: bool = True
    timeout: float = 120.0
    extra: dict[str, Any] = field(default_factory=dict)


def read_predictions_file(path: Path) -> list[dict]:
    out = []
    if not path.exists():
        return out
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by an interruption: everything after it is regenerated
    return out


def _truncate_partial_tail(path: Path) -> None:
    """Drop a last line without its newline (an interrupted write) so appends stay valid JSONL."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n")
        path.write_bytes(data[: cut + 1] if cut >= 0 else b"")


def _progress(iterable, total: int, enabled: bool, desc: str):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="item", dynamic_ncols=True)
