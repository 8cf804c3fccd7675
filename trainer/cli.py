"""``toolgym train ...``: grpo | ppo | sft | dpo | pipeline | describe-config.

Wire into the main CLI with :func:`add_parser` (adds the ``train`` command) and dispatch with :func:`run`;
``python -m toolgym.trainer.cli train ...`` runs it standalone. Every command takes ``--config FILE.yaml`` (see
``trainer/configs/``), ``--set dotted.key=value`` overrides (YAML values), ``--output-dir`` and ``--address``
(an already running server; otherwise one is started in-process on loopback for the duration of the command).
Multi-GPU / DeepSpeed: ``accelerate launch --config_file trainer/configs/accelerate/zero3.yaml -m
toolgym.trainer.cli train grpo --config ...``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

COMMANDS = ("grpo", "ppo", "sft", "dpo", "pipeline")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True, help="YAML config (see trainer/configs/ and `toolgym train describe-config`).")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="Override a config key, e.g. --set grpo.max_steps=5 (repeatable; value parsed as YAML).")
    p.add_argument("--output-dir", default=None, help="Overrides output_dir.")
    p.add_argument("--address", default=None, help="host:port of a running toolgym server (overrides server.address).")
    p.add_argument("--seed", type=int, default=None, help="Overrides seed.")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``train`` (with its sub-commands) to an ``argparse`` sub-parser collection; returns the parser."""
    train = subparsers.add_parser("train", help="Train a policy against a toolgym server (TRL GRPO/PPO, SFT, DPO).",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = train.add_subparsers(dest="train_command", metavar="{grpo,ppo,sft,dpo,pipeline,retriever,describe-config}")
    sub.required = True
    helps = {
        "grpo": "GRPO (TRL GRPOTrainer) with multi-turn episodes on the server as rollouts.",
        "ppo": "PPO (actor-critic, GAE) with the same rollouts and reward.",
        "sft": "SFT warm-up on ground-truth trajectories in the env's templates.",
        "dpo": "DPO on best/worst server-scored samples.",
        "pipeline": "Run the configured stages (default: sft then grpo) end to end.",
    }
    for name in COMMANDS:
        _common(sub.add_parser(name, help=helps[name]))
    from toolgym.trainer.retriever_cli import add_retriever_parser

    add_retriever_parser(sub)
    sub.add_parser("describe-config", help="Print every config key with its type, default and help.")
    train.set_defaults(func=run)
    return train


def _load(args: argparse.Namespace) -> Any:
    from toolgym.trainer.config_load import load_config

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={json.dumps(args.output_dir)}")
    if args.address:
        overrides.append(f"server.address={json.dumps(args.address)}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    return load_config(args.config, overrides)


def _quiet_libraries() -> None:
    """No per-shard progress bars or CPU-only warnings in a CLI run (metrics go to metrics.jsonl and the log)."""
    import warnings

    warnings.filterwarnings("ignore", message=".*pin_memory.*")
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # pragma: no cover - transformers missing: the command will say so
        pass


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed ``train`` command; returns the process exit code."""
    cmd = args.train_command
    if cmd == "retriever":
        from toolgym.trainer.retriever_cli import run_retriever

        return run_retriever(args)
    if cmd == "describe-config":
        from toolgym.trainer.config_load import describe

        print(describe())
        return 0
    logging.basicConfig(level=getattr(logging, str(getattr(args, "log_level", "INFO")).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _quiet_libraries()
    from toolgym.trainer.config import ConfigError

    try:
        cfg = _load(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if cmd == "pipeline":
        from toolgym.trainer.pipeline import format_report, run_pipeline

        summary = run_pipeline(cfg)
        print(format_report(summary))
        return 0
    if cmd == "sft":
        from toolgym.trainer.sft import train_sft

        print(json.dumps({"final_model": train_sft(cfg)}))
        return 0
    if cmd == "grpo":
        from toolgym.trainer.grpo import train_grpo

        result = train_grpo(cfg)
    elif cmd == "ppo":
        from toolgym.trainer.ppo import train_ppo

        result = train_ppo(cfg)
    elif cmd == "dpo":
        from toolgym.trainer.dpo import train_dpo

        result = train_dpo(cfg)
    else:  # pragma: no cover - argparse restricts the choices
        print(f"unknown train command {cmd!r}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toolgym")
    parser.add_argument("--log-level", default="INFO", help="Python logging level.")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
