"""``toolgym eval retrieval``: BM25, base MiniLM, the fine-tuned model and the hybrid, side by side.

Settings (all over the full catalogue of the suite, every category's tools):

- ``unseen_queries``: held-out task groups whose tools were all trained on;
- ``unseen_tools``: queries needing a tool the trainer never saw (held out whole);
- ``paraphrase``: :data:`~toolgym.evals.retrieval_paraphrases.PARAPHRASES`, queries that share no
  content word with their tool;
- ``unseen_categories``: queries from the categories the model was not trained on.

The split is recomputed from the fine-tuned model's ``toolgym_retriever.json`` (seed, fractions,
categories), so the eval never scores a query the model trained on; with no fine-tuned model the
defaults of :class:`~toolgym.trainer.retriever_config.RetrieverConfig` are used.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolgym.env.retrieval.base import rrf_fuse
from toolgym.evals.retrieval_metrics import METRICS, mean_metrics, query_metrics

__all__ = ["DEFAULT_RETRIEVERS", "SETTINGS", "RetrievalEvalConfig", "run_retrieval_eval"]

SETTINGS = ("unseen_queries", "unseen_tools", "paraphrase", "unseen_categories")
DEFAULT_RETRIEVERS = ("bm25", "dense", "finetuned", "hybrid")
#: Entries fetched per query before collapsing to names (same-name variants take several slots).
DEPTH = 50


@dataclass
class RetrievalEvalConfig:
    suite: str = field(default="default", metadata={"help": "suite whose tools form the catalogue and whose tasks give the queries"})
    model_dir: str = field(default="", metadata={"help": "fine-tuned model dir; empty: the default retriever's"})
    retrievers: tuple[str, ...] = field(default=DEFAULT_RETRIEVERS, metadata={"help": "which retrievers to compare"})
    settings: tuple[str, ...] = field(default=SETTINGS, metadata={"help": "which settings to run"})
    limit: int = field(default=0, metadata={"help": "at most this many queries per setting (0: all)"})
    show_progress: bool = field(default=False, metadata={"help": "progress bar while encoding the catalogue"})


def _split_params(model_dir: Path | None) -> dict[str, Any]:
    from toolgym.trainer.retriever import META_FILE
    from toolgym.trainer.retriever_config import RetrieverConfig

    d = RetrieverConfig().to_dict()
    if model_dir is not None and (model_dir / META_FILE).is_file():
        d.update(json.loads((model_dir / META_FILE).read_text(encoding="utf-8")).get("config", {}))
    return {k: d[k] for k in ("seed", "test_fraction", "unseen_tool_fraction", "train_categories", "suite")}


def _queries(cfg: RetrievalEvalConfig, catalogue: Any, params: dict[str, Any]) -> dict[str, list[Any]]:
    from toolgym.env.retrieval.pairs import Example, examples_from_tasks, split_examples
    from toolgym.env.tasks.suite import load_suite
    from toolgym.evals.retrieval_paraphrases import PARAPHRASES

    examples = examples_from_tasks(load_suite(cfg.suite))
    cats = set(params["train_categories"])
    split = split_examples([e for e in examples if e.category in cats], seed=params["seed"],
                           test_fraction=params["test_fraction"], unseen_tool_fraction=params["unseen_tool_fraction"])
    trained_queries = {e.query for e in split.train}
    known = set(catalogue.names())
    out = {
        "unseen_queries": split.unseen_queries,
        "unseen_tools": split.unseen_tools,
        "paraphrase": [Example(q, frozenset([n]), f"paraphrase_{i}", "paraphrase") for i, (q, n) in enumerate(PARAPHRASES) if n in known],
        "unseen_categories": [e for e in examples if e.category not in cats and e.query not in trained_queries],
    }
    return {s: (out[s][: cfg.limit] if cfg.limit else out[s]) for s in cfg.settings}


def run_retrieval_eval(cfg: RetrievalEvalConfig) -> dict[str, Any]:
    from toolgym.env.retrieval.factory import build_retriever, default_model_dir, load_catalogue

    bad = [s for s in cfg.settings if s not in SETTINGS]
    if bad:
        raise ValueError(f"unknown setting(s) {', '.join(bad)}; choose from: {', '.join(SETTINGS)}")
    model_dir = Path(cfg.model_dir).expanduser() if cfg.model_dir else default_model_dir()
    tuned = model_dir if (model_dir / "modules.json").is_file() else None
    retrievers = [r for r in cfg.retrievers if r != "finetuned" or tuned is not None]
    notes = [] if tuned is not None or "finetuned" not in cfg.retrievers else [
        f"no fine-tuned model at {model_dir}: 'finetuned' skipped and 'hybrid' fuses BM25 with the base model"]
    catalogue = load_catalogue(cfg.suite)
    params = _split_params(tuned)
    queries = _queries(cfg, catalogue, params)
    report: dict[str, Any] = {
        "kind": "retrieval",
        "catalogue": {"tools": len(catalogue), "names": len(catalogue.names()), "hash": catalogue.content_hash},
        "model_dir": str(tuned) if tuned else None,
        "train_categories": params["train_categories"],
        "split": {k: params[k] for k in ("seed", "test_fraction", "unseen_tool_fraction")},
        "retrievers": retrievers,
        "notes": notes,
        "settings": {s: {"n": len(q), "results": {}} for s, q in queries.items()},
        "misses": {},
    }
    # Each retriever ranks each setting's queries once; the hybrid fuses the rankings of its parts
    # (BM25 and the fine-tuned model, or the base model without one) instead of encoding again.
    rankings: dict[tuple[str, str], tuple[list[np.ndarray], float]] = {}

    def ranked(name: str, setting: str) -> tuple[list[np.ndarray], float]:
        if (name, setting) not in rankings:
            exs = queries[setting]
            if name == "hybrid":
                parts = [ranked(p, setting) for p in ("bm25", "finetuned" if tuned is not None else "dense")]
                t0 = time.perf_counter()
                fused = [rrf_fuse([p[0][i] for p in parts], DEPTH)[0] for i in range(len(exs))]
                rankings[(name, setting)] = (fused, sum(p[1] for p in parts) + time.perf_counter() - t0)
            else:
                if name not in built:
                    built[name] = build_retriever(name, catalogue, model_dir=tuned, show_progress=cfg.show_progress)
                t0 = time.perf_counter()
                res = built[name].scores_batch([e.query for e in exs], DEPTH)
                rankings[(name, setting)] = ([idx for idx, _ in res], time.perf_counter() - t0)
        return rankings[(name, setting)]

    built: dict[str, Any] = {}
    for name in retrievers:
        for setting, exs in queries.items():
            if not exs:
                continue
            idxs, dt = ranked(name, setting)
            rows, misses = [], []
            for e, idx in zip(exs, idxs):
                names = [catalogue[i].name for i in idx.tolist()]
                m = query_metrics(names, e.tools)
                rows.append(m)
                if m["recall@5"] < 1.0 and len(misses) < 5:
                    misses.append({"query": e.query[:300], "needed": sorted(e.tools), "top5": list(dict.fromkeys(names))[:5]})
            res = mean_metrics(rows)
            res["queries_per_s"] = len(exs) / dt if dt > 0 else None
            report["settings"][setting]["results"][name] = res
            report["misses"].setdefault(name, {})[setting] = misses
    return report


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table: one row per (setting, retriever)."""
    head = f"{'setting':18s} {'n':>5s} {'retriever':10s} " + " ".join(f"{m:>9s}" for m in METRICS)
    lines = [head, "-" * len(head)]
    for setting, block in report["settings"].items():
        for name, res in block["results"].items():
            lines.append(f"{setting:18s} {block['n']:5d} {name:10s} " + " ".join(
                f"{res[m]:9.3f}" if res[m] is not None else f"{'n/a':>9s}" for m in METRICS))
    return "\n".join(lines)


def write_outputs(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    from toolgym.evals.retrieval_report import render_html, render_markdown

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "retrieval.json", "html": out / "report.html", "md": out / "report.md"}
    paths["json"].write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    paths["html"].write_text(render_html(report), encoding="utf-8")
    paths["md"].write_text(render_markdown(report), encoding="utf-8")
    return paths


def settings_arg(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(values) if values else SETTINGS
