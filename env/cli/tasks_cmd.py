"""`toolgym tasks`: list the suite's categories or tasks."""

from __future__ import annotations

import argparse
import json
from collections import Counter

from toolgym.env.tasks.suite import load_suite


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="list task categories (default) or tasks of a suite")
    p.add_argument("--suite", default="default", help="suite name or JSONL file (default: default = BFCL v4 + toolgym_python)")
    p.add_argument("--category", action="append", default=[], help="only these categories (repeatable)")
    p.add_argument("--list", action="store_true", help="list task ids instead of category counts")
    p.add_argument("--show", metavar="TASK_ID", help="print one task as toolgym JSONL")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite)
    if args.show:
        from toolgym.env.tasks.jsonl import task_to_dict

        try:
            print(json.dumps(task_to_dict(suite.get(args.show)), ensure_ascii=False, indent=2))
        except KeyError as e:
            print(f"toolgym tasks: {e.args[0]}", file=__import__("sys").stderr)
            return 1
        return 0
    sel = suite.filter(categories=args.category or None)
    if args.list:
        for t in sorted(sel, key=lambda t: t.id):
            print(f"{t.id}\t{t.category}\t{t.kind}")
        return 0
    counts = Counter((t.category, t.kind) for t in sel)
    for (cat, kind), n in sorted(counts.items()):
        print(f"{cat:28s} {kind:12s} {n:6d}")
    print(f"{'total':28s} {'':12s} {sum(counts.values()):6d}")
    return 0
