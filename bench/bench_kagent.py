"""Benchmark: score 10,000 KAgentBench predictions on one core.

Synthetic data: the fixtures in tests/evals/fixtures, cloned under new ids, every template output and every
golden text perturbed with a seeded RNG (words/characters dropped, inserted, swapped), so almost every string
is new (tokenization and LCS caches only help where the data itself repeats).

Prints items/s and seconds for toolgym's scorer, and for a baseline in the same run: per item, a plain
``str.split`` tokenization and a textbook O(n·m) dynamic-programming LCS of every template output against
every golden text (no parsing, no caching) — the simplest thing that still does the ROUGE-L work.

    python bench/bench_kagent.py [--n 10000] [--seed 0] [--no-bleu] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "evals" / "fixtures"


def _perturb(rng: random.Random, text: str) -> str:
    if not text or rng.random() < 0.15:
        return text
    cjk = any("\u4e00" <= ch <= "\u9fff" for ch in text)
    toks = list(text) if cjk else text.split(" ")
    for _ in range(rng.randint(1, 4)):
        if len(toks) < 2:
            break
        i = rng.randrange(len(toks))
        c = rng.random()
        if c < 0.4:
            del toks[i]
        elif c < 0.7:
            toks.insert(i, rng.choice(["的", "了", "the", "a", "very", "今天", "now", "。", "."]))
        else:
            j = rng.randrange(len(toks))
            toks[i], toks[j] = toks[j], toks[i]
    return ("" if cjk else " ").join(toks)


def _perturb_obj(rng, obj):
    if isinstance(obj, str):
        return _perturb(rng, obj)
    if isinstance(obj, dict):
        return {k: _perturb_obj(rng, v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_perturb_obj(rng, v) for v in obj]
    return obj


def build(n: int, seed: int):
    items = [json.loads(x) for x in (FIXTURES / "kagent_items.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    preds = {}
    for x in (FIXTURES / "kagent_preds.jsonl").read_text(encoding="utf-8").splitlines():
        if x.strip():
            d = json.loads(x)
            preds[d["id"]] = d["model_predict"]
    rng = random.Random(seed)
    out_items, out_preds = [], {}
    for k in range(n):
        src = items[k % len(items)]
        it = copy.deepcopy(src)
        it["id"] = f"{src['id']}#{k}"
        gl = []
        for g in it["golden_result_list"]:
            g = dict(g)
            if "thought" in g and g["thought"] != "None":
                g["thought"] = _perturb(rng, g["thought"])
            if "golden_result" in g:
                g["golden_result"] = _perturb(rng, g["golden_result"])
            gl.append(g)
        it["golden_result_list"] = gl
        mp = preds[src["id"]]
        out_items.append(it)
        out_preds[it["id"]] = _perturb_obj(rng, mp)
    return out_items, out_preds


def _dp_lcs(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def baseline(items, preds) -> float:
    total = 0.0
    for it in items:
        mp = preds.get(it["id"], {})
        outs = list(mp.values()) if isinstance(mp, dict) else [mp]
        golds = []
        for g in it["golden_result_list"]:
            golds += [str(g.get("thought", "")), str(g.get("golden_result", ""))] if isinstance(g, dict) else [str(g)]
        golds = [g for g in golds if g]
        for o in outs:
            ot = str(o).split()
            for g in golds:
                gt = g.split()
                lcs = _dp_lcs(ot, gt)
                if lcs:
                    p, r = lcs / len(ot), lcs / len(gt)
                    total += 2 * p * r / (p + r + 1e-8)
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-bleu", action="store_true", help="leave out sacrebleu BLEU (on by default, as in the CLI)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    from toolgym.evals import punkt, rouge, tokenize
    from toolgym.evals.kagentbench import score

    items, preds = build(args.n, args.seed)
    punkt.get_splitter()  # load parameters outside the timing
    rouge.clear_caches()
    tokenize.clear_caches()
    t0 = time.perf_counter()
    rep = score(items, preds, bleu=not args.no_bleu)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    baseline(items, preds)
    base = time.perf_counter() - t0
    res = {
        "predictions": args.n,
        "seconds": round(ours, 3),
        "items_per_s": round(args.n / ours, 1),
        "baseline_seconds": round(base, 3),
        "baseline_items_per_s": round(args.n / base, 1),
        "speedup_vs_baseline": round(base / ours, 2),
        "bleu": not args.no_bleu,
        "tokenizer": rep.tokenizer,
        "overall": rep.overall,
    }
    if args.json:
        print(json.dumps(res))
    else:
        print(f"toolgym scorer : {args.n} predictions in {ours:.2f} s = {args.n / ours:,.0f} items/s "
              f"(BLEU {'on' if res['bleu'] else 'off'}, tokenizer {rep.tokenizer}, overall {rep.overall:.2f})")
        print(f"baseline       : {args.n} predictions in {base:.2f} s = {args.n / base:,.0f} items/s "
              f"(str.split tokens + DP LCS per item, no parsing, no caching)")
        print(f"ratio          : toolgym is {base / ours:.2f}x the baseline's speed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
