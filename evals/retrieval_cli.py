"""``toolgym eval retrieval``: the argparse side (mounted by :mod:`toolgym.evals.cli`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_retrieval_parser", "run_retrieval_cmd"]


def add_retrieval_parser(sub: Any) -> argparse.ArgumentParser:
    from toolgym.evals.retrieval import DEFAULT_RETRIEVERS, SETTINGS

    p = sub.add_parser("retrieval", help="tool retrieval: Recall@1/5/10, nDCG@10, MRR of BM25, MiniLM, fine-tuned, hybrid",
                       description="Compare tool retrievers over the full catalogue in four settings: unseen queries, "
                       "unseen tools, paraphrases, categories never trained on.")
    p.add_argument("--suite", default="default", help="suite (default: default)")
    p.add_argument("--model", default="", help="fine-tuned model dir (default: the one `toolgym train retriever` builds)")
    p.add_argument("--retriever", action="append", default=[], choices=list(DEFAULT_RETRIEVERS),
                   help="retrievers to compare (repeatable; default: all four)")
    p.add_argument("--setting", action="append", default=[], choices=list(SETTINGS), help="settings (repeatable; default: all)")
    p.add_argument("--limit", type=int, default=0, help="at most N queries per setting")
    p.add_argument("--out", help="write retrieval.json, report.html and report.md here")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    return p


def run_retrieval_cmd(args: argparse.Namespace) -> int:
    from toolgym.evals.retrieval import DEFAULT_RETRIEVERS, RetrievalEvalConfig, format_table, run_retrieval_eval, settings_arg, write_outputs

    if args.limit < 0:
        raise ValueError(f"--limit must be >= 0, got {args.limit}")
    cfg = RetrievalEvalConfig(suite=args.suite, model_dir=args.model, retrievers=tuple(args.retriever) or DEFAULT_RETRIEVERS,
                              settings=settings_arg(args.setting), limit=args.limit, show_progress=not args.json)
    report = run_retrieval_eval(cfg)
    if args.out:
        write_outputs(report, args.out)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        for note in report["notes"]:
            print(f"note: {note}")
        print(f"catalogue: {report['catalogue']['tools']} tools, {report['catalogue']['names']} names")
        print(format_table(report))
        if args.out:
            print(f"report: {args.out}/report.html")
    return 0
