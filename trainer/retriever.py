"""``toolgym train retriever``: contrastive fine-tuning of the dense tool retriever.

Pairs come from the suite's tasks (:mod:`toolgym.env.retrieval.pairs`): (user query, the text of a
tool its ground truth calls), restricted to ``train_categories`` and to the ``train`` side of the
split, so held-out task groups, held-out tools and held-out categories are never seen. The loss is
MultipleNegativesRankingLoss: every other tool in the batch is a negative, plus ``hard_negatives``
mined per pair (tools the base retriever ranks near the query that the query does not need; the
held-out tools are never used, not even as negatives). Batches never hold the same text twice
(``NO_DUPLICATES``), so a query that needs two tools is not pushed away from its second one.

The result is a sentence-transformers directory (plus ``toolgym_retriever.json``: the config, the
split and timings), by default the one ``toolgym tools search`` uses.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

from toolgym.trainer.retriever_config import RetrieverConfig

__all__ = ["META_FILE", "build_pairs", "train_retriever"]

log = logging.getLogger(__name__)

META_FILE = "toolgym_retriever.json"


def _split(cfg: RetrieverConfig) -> tuple[Any, Any, Any]:
    from toolgym.env.retrieval.factory import load_catalogue
    from toolgym.env.retrieval.pairs import examples_from_tasks, split_examples
    from toolgym.env.tasks.suite import load_suite

    suite = load_suite(cfg.suite)
    catalogue = load_catalogue(cfg.suite)
    cats = set(cfg.train_categories)
    unknown = cats - set(suite.categories())
    if unknown:
        raise ValueError(f"train_categories: suite {cfg.suite!r} has no {', '.join(sorted(unknown))}; it has {', '.join(suite.categories())}")
    examples = [e for e in examples_from_tasks(suite) if e.category in cats]
    split = split_examples(examples, seed=cfg.seed, test_fraction=cfg.test_fraction, unseen_tool_fraction=cfg.unseen_tool_fraction)
    return catalogue, split, examples


def build_pairs(cfg: RetrieverConfig, catalogue: Any, split: Any) -> list[dict[str, str]]:
    """Training rows ``{"anchor", "positive"[, "negative_1", ...]}``, one per (query, needed tool)."""
    rng = random.Random(cfg.seed)
    rows: list[tuple[Any, str]] = []
    for e in split.train:
        for tid in e.tool_ids:
            rows.append((e, tid))
    rng.shuffle(rows)
    if cfg.max_pairs_per_tool:
        per_tool: dict[str, int] = {}
        kept = []
        for e, tid in rows:
            per_tool[tid] = per_tool.get(tid, 0) + 1
            if per_tool[tid] <= cfg.max_pairs_per_tool:
                kept.append((e, tid))
        rows = kept
    if cfg.max_pairs:
        rows = rows[: cfg.max_pairs]
    out = [{"anchor": e.query, "positive": catalogue[catalogue.index_of(tid)].text} for e, tid in rows]
    if cfg.hard_negatives <= 0 or not rows:
        return out
    from toolgym.env.retrieval.factory import build_retriever

    miner = build_retriever(cfg.hard_negative_source, catalogue, show_progress=cfg.show_progress)
    held = split.held_out_tools
    queries = list(dict.fromkeys(e.query for e, _ in rows))
    depth = cfg.hard_negative_pool + 20  # room for the needed tools and held-out ones ranked above
    ranked: dict[str, list[int]] = {}
    batch = 256
    for start in _progress(range(0, len(queries), batch), cfg.show_progress, "mining hard negatives", unit="batch"):
        chunk = queries[start:start + batch]
        for q, (idx, _) in zip(chunk, miner.scores_batch(chunk, depth)):
            ranked[q] = idx.tolist()
    n_tools = len(catalogue)
    for row, (e, _) in zip(out, rows):
        def usable(i: int) -> bool:
            return catalogue[i].name not in e.tools and catalogue[i].name not in held

        wrong = [i for i in ranked[e.query] if usable(i)]
        picked = rng.sample(wrong[: cfg.hard_negative_pool], min(cfg.hard_negatives, len(wrong[: cfg.hard_negative_pool])))
        # A query whose near neighbours are all needed or held out gets random wrong tools for the
        # rest: every row must carry the same number of negatives, and cutting all rows to the
        # shortest one (as a single such query would) silently trains without hard negatives.
        tries = 0
        while len(picked) < cfg.hard_negatives and tries < 50 * cfg.hard_negatives:
            i = rng.randrange(n_tools)
            tries += 1
            if usable(i) and i not in picked:
                picked.append(i)
        if len(picked) < cfg.hard_negatives:
            raise ValueError(f"the catalogue has too few tools for {cfg.hard_negatives} negatives per query "
                             f"({n_tools} tools); lower hard_negatives")
        for j, i in enumerate(picked):
            row[f"negative_{j + 1}"] = catalogue[i].text
    return out


def _progress(it: Any, show: bool, desc: str, **kw: Any) -> Any:
    if not show:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, **kw)


def _freeze_below(model: Any, top: int) -> None:
    """Freeze the embeddings and every transformer layer but the top ``top`` (a BERT-style encoder)."""
    import re

    layer = re.compile(r"encoder\.layer\.(\d+)\.")
    n_layers = 1 + max((int(m.group(1)) for n, _ in model.named_parameters() if (m := layer.search(n))), default=-1)
    for name, p in model.named_parameters():
        m = layer.search(name)
        if "embeddings" in name or (m is not None and int(m.group(1)) < n_layers - top):
            p.requires_grad_(False)


def train_retriever(cfg: RetrieverConfig) -> dict[str, Any]:
    """Train, save, and return a summary (paths, split sizes, steps, seconds)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    t0 = time.monotonic()
    catalogue, split, _ = _split(cfg)
    rows = build_pairs(cfg, catalogue, split)
    if not rows:
        raise ValueError(f"no training pairs: train_categories {cfg.train_categories} give no (query, tool) examples")
    t_pairs = time.monotonic() - t0

    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from toolgym.env.retrieval.dense import base_model_dir

    torch.manual_seed(cfg.seed)
    base = Path(cfg.base_model).expanduser() if cfg.base_model else base_model_dir()
    model = SentenceTransformer(str(base), device="cpu", local_files_only=True)
    model.max_seq_length = cfg.max_seq_length
    if cfg.trainable_layers:
        _freeze_below(model, cfg.trainable_layers)
    out_dir = cfg.resolved_output_dir()
    work = out_dir.parent / (out_dir.name + ".work")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=min(cfg.batch_size, len(rows)),
        learning_rate=cfg.learning_rate,
        warmup_ratio=cfg.warmup_ratio,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        seed=cfg.seed,
        save_strategy="no",
        report_to="none",
        logging_steps=10,
        disable_tqdm=not cfg.show_progress,
        use_cpu=True,
        dataloader_pin_memory=False,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                         loss=MultipleNegativesRankingLoss(model))
    t1 = time.monotonic()
    result = trainer.train()
    t_train = time.monotonic() - t1
    # Save to a sibling and swap, so a reader never loads half a model (and a failed run keeps the old one).
    tmp = out_dir.parent / (out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    summary = {
        "output_dir": str(out_dir),
        "base_model": str(base),
        "catalogue_tools": len(catalogue),
        "catalogue_names": len(catalogue.names()),
        "catalogue_hash": catalogue.content_hash,
        "split": split.sizes(),
        "pairs": len(rows),
        "columns": sorted(rows[0]),
        "steps": int(result.global_step),
        "train_loss": float(result.training_loss),
        "seconds": {"pairs_and_mining": round(t_pairs, 1), "train": round(t_train, 1), "total": round(time.monotonic() - t0, 1)},
        "config": cfg.to_dict(),
        "held_out_tools": sorted(split.held_out_tools),
    }
    (tmp / META_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    shutil.rmtree(work, ignore_errors=True)
    return {k: v for k, v in summary.items() if k != "held_out_tools"}
