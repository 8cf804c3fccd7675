"""``toolgym train retriever --config trainer/configs/retriever.yaml``: the argparse side."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

__all__ = ["add_retriever_parser", "run_retriever"]


def add_retriever_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "retriever",
        help="Contrastive fine-tuning of the dense tool retriever (MiniLM, in-batch + hard negatives).",
        description="Fine-tune all-MiniLM-L6-v2 on (query, tool) pairs of the suite's tasks and save a "
        "sentence-transformers dir (by default the one `toolgym tools search` uses).",
    )
    p.add_argument("--config", "-c", default=None, help="YAML config (trainer/configs/retriever.yaml); keys: see RetrieverConfig")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set max_steps=2 (repeatable; value parsed as YAML)")
    p.add_argument("--output-dir", default=None, help="overrides output_dir")
    p.add_argument("--seed", type=int, default=None, help="overrides seed")
    return p


def run_retriever(args: argparse.Namespace) -> int:
    from toolgym.trainer.config import ConfigError
    from toolgym.trainer.retriever_config import load_retriever_config

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={json.dumps(args.output_dir)}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    try:
        cfg = load_retriever_config(args.config, overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from toolgym.trainer.retriever import train_retriever

    print(json.dumps(train_retriever(cfg), indent=2))
    return 0
