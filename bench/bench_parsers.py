"""Parser throughput: outputs/s per template on one core.

Renders N outputs per template (mostly tool calls with a thought, some final answers, a few
malformed ones), then times ``parse(text, template)`` and ``parse(text)`` (auto-detect) over
them. The baseline is ``json.loads`` of the same outputs' argument payloads, measured in the
same run: the ratio says how many json.loads of the bare arguments one full parse costs.

    python bench/bench_parsers.py [--n 20000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import time

from toolgym.env.parsers import MULTI_CALL_TEMPLATES, TEMPLATES, parse, render_calls, render_final_answer
from toolgym.env.types import ToolCall

WORDS = ["Paris", "北京", "weather", "stock", "AAPL", "report.pdf", "metric", "tomorrow", "東京", "temp", "hello world"]
NAMES = ["get_weather", "search_flights", "math.hypot", "get_stock_price", "send_message", "查询天气", "cd", "ls"]


def _value(rng: random.Random, depth: int = 0):
    r = rng.random()
    if r < 0.35:
        return rng.choice(WORDS)
    if r < 0.55:
        return rng.randint(-1000, 100000)
    if r < 0.65:
        return round(rng.uniform(-100, 100), 3)
    if r < 0.72:
        return rng.random() < 0.5
    if r < 0.75:
        return None
    if depth < 2 and r < 0.88:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 2:
        return {f"k{i}": _value(rng, depth + 1) for i in range(rng.randint(0, 3))}
    return rng.choice(WORDS)


def _call(rng: random.Random, template: str) -> ToolCall:
    name = rng.choice(NAMES)
    if template == "pythonic" and not name.isascii():
        name = "query_weather"
    args = {f"{p}": _value(rng) for p in rng.sample(["city", "days", "units", "query", "limit", "folder", "x", "y"], rng.randint(1, 4))}
    return ToolCall(name, args)


def build(template: str, n: int, seed: int) -> tuple[list[str], list[str]]:
    """(outputs, argument payload JSON strings) for one template."""
    rng = random.Random(seed)
    outputs: list[str] = []
    payloads: list[str] = []
    for i in range(n):
        r = rng.random()
        thought = "I should look this up before answering." if rng.random() < 0.7 else None
        if r < 0.8:
            k = rng.randint(1, 3) if template in MULTI_CALL_TEMPLATES else 1
            calls = [_call(rng, template) for _ in range(k)]
            outputs.append(render_calls(calls, template, thought=thought))
            payloads.append(json.dumps([c.arguments for c in calls], ensure_ascii=False))
        elif r < 0.95:
            ans = f"The answer is {rng.randint(0, 10**6)} ({rng.choice(WORDS)})."
            outputs.append(render_final_answer(ans, template, thought=thought))
            payloads.append(json.dumps(ans, ensure_ascii=False))
        else:  # malformed: a truncated call
            c = _call(rng, template)
            text = render_calls([c], template)
            outputs.append(text[: max(1, len(text) * 2 // 3)])
            payloads.append(json.dumps(c.arguments, ensure_ascii=False))
    return outputs, payloads


def _time(fn, items, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for x in items:
            fn(x)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"{'template':11s} {'outputs/s':>11s} {'us/output':>10s} {'auto-detect/s':>14s} {'json.loads/s':>13s} {'parse/json':>11s} {'issues':>7s}")
    for template in TEMPLATES:
        outputs, payloads = build(template, args.n, args.seed)
        loads = json.loads
        t_json = _time(loads, payloads)
        t_parse = _time(lambda s: parse(s, template), outputs)
        t_auto = _time(parse, outputs)
        with_issues = sum(1 for s in outputs if parse(s, template).issues)
        n = len(outputs)
        print(
            f"{template:11s} {n / t_parse:11,.0f} {t_parse / n * 1e6:10.1f} {n / t_auto:14,.0f} {n / t_json:13,.0f} "
            f"{t_parse / t_json:10.1f}x {with_issues:7d}"
        )


if __name__ == "__main__":
    main()
