"""``toolgym eval ...`` commands. The main CLI mounts them with :func:`add_parser`; also runnable alone as
``python -m toolgym.evals.cli ...`` (same arguments, without the leading ``eval``).

    toolgym eval kagentbench --data ITEMS.jsonl --predictions PREDS.jsonl [--json] [--report DIR] [--strict]
    toolgym eval run --model PATH_OR_URL --suite kagentbench --data ITEMS.jsonl --out DIR
    toolgym eval run --model PATH_OR_URL --suite bfcl[:cat1,cat2] [--server HOST:PORT] --out DIR
    toolgym eval report --compare RUN1 RUN2 ... [--out DIR]
    toolgym eval punkt fetch|status
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["add_parser", "run", "main", "build_parser"]


def _add_commands(sub) -> None:
    k = sub.add_parser("kagentbench", help="score KAgentBench-format predictions (the reference's formulas)",
                       description="Score KAgentBench items against {id, model_predict} predictions.")
    k.add_argument("--data", required=True, help="items in KAgentBench's schema (JSONL or JSON array)")
    k.add_argument("--predictions", required=True, help='JSONL lines {"id", "model_predict"}')
    k.add_argument("--json", action="store_true", help="print the five abilities, overall and counts as one JSON line")
    k.add_argument("--report", metavar="DIR", help="write scores.json, report.html and report.md to DIR")
    k.add_argument("--strict", action="store_true",
                   help="score unknown-template / empty-ReACT outputs as 0 instead of reusing the previous parse")
    k.add_argument("--no-bleu", action="store_true", help="skip sacrebleu BLEU beside ROUGE")
    k.add_argument("--name", default="", help="run label in reports")
    k.add_argument("--server", metavar="HOST:PORT", help="score through a running server's EvalService instead")

    r = sub.add_parser("run", help="generate with a model, score, and write a resumable run folder")
    r.add_argument("--model", required=True, help="an HF model folder, a GGUF file or a folder holding one, an alias "
                   "(smollm2-135m-instruct), or an OpenAI-compatible http(s)://.../v1 URL")
    r.add_argument("--suite", default="kagentbench", help="kagentbench | bfcl | bfcl:CAT,CAT | any toolgym suite")
    r.add_argument("--data", help="kagentbench: the items file")
    r.add_argument("--out", required=True, help="run folder (created; an existing one is resumed)")
    r.add_argument("--backend", default="auto", choices=["auto", "transformers", "vllm", "openai"])
    r.add_argument("--model-name", help="model id to send to an OpenAI-compatible endpoint")
    r.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    r.add_argument("--max-new-tokens", type=int, default=512)
    r.add_argument("--max-input-tokens", type=int, default=3072)
    r.add_argument("--temperature", type=float, default=0.0)
    r.add_argument("--batch-size", type=int, default=8)
    r.add_argument("--limit", type=int, default=0, help="only the first N items/tasks")
    r.add_argument("--system", default="", help="system prompt for kagentbench prompts (the reference uses none)")
    r.add_argument("--template", action="append", default=[],
                   help="kagentbench: only these prompt templates; bfcl: env templates to cycle (repeatable)")
    r.add_argument("--server", help="bfcl: address of a running toolgym server (else one is started in-process)")
    r.add_argument("--category", action="append", default=[], help="bfcl: restrict to categories (repeatable)")
    r.add_argument("--max-steps", type=int, default=8, help="bfcl: step limit per episode")
    r.add_argument("--strict", action="store_true")
    r.add_argument("--no-bleu", action="store_true")
    r.add_argument("--name", default="")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--json", action="store_true", help="print the summary as one JSON line")

    c = sub.add_parser("report", help="HTML + Markdown report of one or several runs side by side")
    c.add_argument("--compare", nargs="+", required=True, metavar="RUN", help="run folders or scores.json files")
    c.add_argument("--out", help="write report.html and report.md here (default: print the Markdown)")

    from toolgym.evals.retrieval_cli import add_retrieval_parser

    add_retrieval_parser(sub)  # toolgym eval retrieval

    p = sub.add_parser("punkt", help="English Punkt parameters for nltk-compatible tokenization")
    p.add_argument("action", choices=["fetch", "status"])
    p.add_argument("--wheel", help="fetch: use an already downloaded llama_index_core-0.10.30 wheel")
    p.add_argument("--if-missing", action="store_true")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Mount ``eval`` (with its sub-commands) on the main CLI's subparsers; dispatch with :func:`run`."""
    ev = subparsers.add_parser("eval", help="KAgentBench-style evaluation and model runs",
                               description="KAgentBench-style evaluation, model runs and reports.")
    sub = ev.add_subparsers(dest="eval_cmd", required=True)
    _add_commands(sub)
    ev.set_defaults(func=run)
    return ev


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m toolgym.evals.cli", description="toolgym evaluation commands")
    sub = ap.add_subparsers(dest="eval_cmd", required=True)
    _add_commands(sub)
    return ap


def _cmd_kagentbench(args) -> int:
    from toolgym.evals.kagentbench import load_items, load_predictions, score
    from toolgym.evals.report import write_report

    items = load_items(args.data)
    preds = load_predictions(args.predictions)
    if args.server:
        from toolgym.evals.service import EvalClient

        with EvalClient(args.server) as cl:
            res = cl.evaluate(items, preds, strict=args.strict, bleu=not args.no_bleu,
                              include_items=bool(args.report), name=args.name)
        data = {"kind": "kagentbench", **res["report"]}
    else:
        rep = score(items, preds, strict=args.strict, bleu=not args.no_bleu, name=args.name or Path(args.predictions).stem)
        data = {"kind": "kagentbench", **rep.to_dict(items=True)}
    if args.report:
        out = Path(args.report)
        out.mkdir(parents=True, exist_ok=True)
        (out / "scores.json").write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        write_report(data, out, title=f"KAgentBench — {data.get('name') or 'run'}")
    summary = {k: data.get(k) for k in ("planning", "tool_use", "reflection", "concluding", "profile", "overall")}
    summary["counts"] = {k: v for k, v in (data.get("counts") or {}).items() if isinstance(v, int)}
    summary["bleu_concluding"] = (data.get("bleu") or {}).get("concluding")
    summary["bleu_profile"] = (data.get("bleu") or {}).get("profile")
    summary["strict"] = data.get("strict", False)
    summary["tokenizer"] = data.get("tokenizer")
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        def f(v):
            return "n/a" if v is None else f"{v:.2f}"
        print(f"plan : {f(summary['planning'])}, tooluse : {f(summary['tool_use'])}, reflextion : {f(summary['reflection'])}, "
              f"conclusion : {f(summary['concluding'])}, profile : {f(summary['profile'])}, overall : {f(summary['overall'])}")
        c = summary["counts"]
        print(f"items {c.get('items', 0)} (plantooluse {c.get('plantooluse', 0)}, reflextion {c.get('reflextion', 0)}, "
              f"conclusion {c.get('conclusion', 0)}, profile {c.get('profile', 0)}); missing predictions {c.get('missing', 0)}; "
              f"reused parses {c.get('reused_parses', 0)}; mode {'strict' if summary['strict'] else 'reference'}; "
              f"tokenizer {summary['tokenizer']}")
        if args.report:
            print(f"report: {Path(args.report) / 'report.html'}")
    return 0


def _cmd_run(args) -> int:
    from toolgym.evals.runner import RunConfig, run_eval

    cfg = RunConfig(
        model=args.model, suite=args.suite, out=args.out, data=args.data, backend=args.backend,
        model_name=args.model_name, api_key_env=args.api_key_env, max_new_tokens=args.max_new_tokens,
        max_input_tokens=args.max_input_tokens, temperature=args.temperature, batch_size=args.batch_size,
        limit=args.limit, system=args.system, templates=tuple(args.template), server=args.server,
        categories=tuple(args.category), max_steps=args.max_steps, strict=args.strict, bleu=not args.no_bleu,
        name=args.name, progress=not args.no_progress,
    )
    summary = run_eval(cfg)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(json.dumps(summary, ensure_ascii=False, indent=1))
        print(f"run folder: {args.out}")
    return 0


def _cmd_report(args) -> int:
    from toolgym.evals.report import compare

    _html, md = compare(args.compare, args.out)
    if args.out:
        print(f"wrote {Path(args.out) / 'report.html'} and {Path(args.out) / 'report.md'}")
    else:
        sys.stdout.write(md)
    return 0


def _cmd_punkt(args) -> int:
    from toolgym.evals import punkt

    argv = [args.action]
    if args.action == "fetch":
        if args.wheel:
            argv += ["--wheel", args.wheel]
        if args.if_missing:
            argv.append("--if-missing")
    return punkt.main(argv)


def run(args) -> int:
    cmd = getattr(args, "eval_cmd", None)
    try:
        if cmd == "kagentbench":
            return _cmd_kagentbench(args)
        if cmd == "run":
            return _cmd_run(args)
        if cmd == "report":
            return _cmd_report(args)
        if cmd == "punkt":
            return _cmd_punkt(args)
        if cmd == "retrieval":
            from toolgym.evals.retrieval_cli import run_retrieval_cmd

            return run_retrieval_cmd(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"toolgym eval {cmd}: error: {e}", file=sys.stderr)
        return 2
    print(f"toolgym eval: unknown command {cmd!r}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
