"""``toolgym tools list | show | search``: the tool catalogue and its retrievers from the shell.

    toolgym tools list [--suite default] [--tools my_tools.jsonl] [--json]
    toolgym tools show cd
    toolgym tools search --query "move a file into another folder" -k 10 --json

``search --json`` prints one JSON list, best first, of ``{"name", "id", "score", "description"}``;
results are one per tool name (the best-scoring variant) unless ``--all-variants``. The default
retriever (``auto``) is the hybrid of BM25 and the fine-tuned model that
``toolgym train retriever --config trainer/configs/retriever.yaml`` builds (falling back to the base
model, with a warning, until it has been built).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["ACTIONS", "add_parsers", "run"]

ACTIONS = ("list", "show", "search")


def _catalogue_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default="default", help="suite whose tools form the catalogue (default: default; '' for none)")
    p.add_argument("--tools", dest="tool_files", action="append", default=[], metavar="FILE.jsonl",
                   help="add your own tools: one {name, description, parameters} JSON object per line (repeatable)")


def add_parsers(sub: Any) -> None:
    from toolgym.env.retrieval.factory import RETRIEVER_NAMES

    ls = sub.add_parser("list", help="list the tool catalogue (every distinct tool of the suite plus --tools files)")
    _catalogue_args(ls)
    ls.add_argument("--json", action="store_true", help="print one JSON list of {id, name, n_tasks, source, description}")
    ls.set_defaults(func=run)

    sh = sub.add_parser("show", help="print one catalogue entry (spec, source tasks, indexed text) as JSON")
    sh.add_argument("tool", help="a tool id (name#hash, from `tools list`) or a name (its first variant)")
    _catalogue_args(sh)
    sh.set_defaults(func=run)

    se = sub.add_parser("search", help="retrieve the tools that best fit a query",
                        epilog='example: toolgym tools search --query "move a file into another folder" -k 5 --json')
    se.add_argument("--query", "-q", required=True, help="what the tool should do, in words")
    se.add_argument("-k", type=int, default=10, help="how many tools (default: 10)")
    se.add_argument("--retriever", default="auto", choices=list(RETRIEVER_NAMES),
                    help="auto (default) = hybrid: BM25 + the fine-tuned model, fused by reciprocal rank")
    se.add_argument("--model", default=None, help="fine-tuned model dir (default: the one `toolgym train retriever` builds)")
    se.add_argument("--all-variants", action="store_true", help="list same-name tools with different schemas separately")
    se.add_argument("--json", action="store_true", help='print one JSON list [{"name", "id", "score", "description"}], best first')
    _catalogue_args(se)
    se.set_defaults(func=run)


def _search(args: argparse.Namespace, catalogue: Any) -> list[dict[str, Any]]:
    from toolgym.env.retrieval.factory import build_retriever

    if args.k < 1:
        raise ValueError(f"-k must be >= 1, got {args.k}")
    retriever = build_retriever(args.retriever, catalogue, model_dir=args.model)
    hits = retriever.retrieve_indices(args.query, args.k) if args.all_variants else retriever.best_per_name(args.query, args.k)
    return [{"name": catalogue[i].name, "id": catalogue[i].id, "score": round(score, 6), "description": catalogue[i].spec.description}
            for i, score in hits]


def run(args: argparse.Namespace) -> int:
    from toolgym.env.retrieval.factory import load_catalogue

    catalogue = load_catalogue(args.suite, args.tool_files)
    action = args.tools_command
    if action == "list":
        rows = [{"id": e.id, "name": e.name, "n_tasks": e.n_tasks, "source": e.source, "description": e.spec.description}
                for e in catalogue]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False))
        else:
            for r in rows:
                desc = " ".join(r["description"].split())
                print(f"{r['id']}\t{r['n_tasks']}\t{desc[:100]}")
            print(f"{len(catalogue)} tools ({len(catalogue.names())} distinct names)", file=sys.stderr)
        return 0
    if action == "show":
        print(json.dumps(catalogue.get(args.tool).to_dict(), ensure_ascii=False, indent=2))
        return 0
    results = _search(args, catalogue)
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        for r in results:
            desc = " ".join(r["description"].split())
            print(f"{r['score']:10.4f}  {r['name']:40s} {desc[:80]}")
    return 0
