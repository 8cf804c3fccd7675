"""The HTML and Markdown report of ``toolgym eval retrieval``: one table per setting, retrievers as
rows, the best value of each metric in bold; the same page style as the other eval reports."""

from __future__ import annotations

from typing import Any

from toolgym.evals.report import CSS, _e
from toolgym.evals.retrieval_metrics import METRICS

__all__ = ["render_html", "render_markdown"]

_TITLES = {
    "unseen_queries": "Unseen queries for seen tools",
    "unseen_tools": "Unseen tools (held out of training entirely)",
    "paraphrase": "Paraphrases (no word shared with the tool's text)",
    "unseen_categories": "Categories never trained on",
}


def _best(results: dict[str, dict[str, Any]], metric: str) -> float | None:
    vals = [r[metric] for r in results.values() if r.get(metric) is not None]
    return max(vals) if vals else None


def render_html(report: dict[str, Any]) -> str:
    cat = report["catalogue"]
    body = [f"<h1>Tool retrieval</h1><div class=\"sub\">catalogue: {cat['tools']} tools ({cat['names']} distinct names); "
            f"fine-tuned model: {_e(report.get('model_dir') or 'none')}; trained on: {_e(', '.join(report.get('train_categories') or []))}</div>"]
    for note in report.get("notes") or []:
        body.append(f"<div class=\"sub bad\">{_e(note)}</div>")
    for setting, block in report["settings"].items():
        res = block["results"]
        rows = []
        for name, r in res.items():
            cells = []
            for m in METRICS:
                v = r.get(m)
                txt = "n/a" if v is None else f"{v:.3f}"
                cells.append(f"<td class=\"num\">{'<b>' + txt + '</b>' if v is not None and v == _best(res, m) else txt}</td>")
            qps = r.get("queries_per_s")
            cells.append(f"<td class=\"num\">{'n/a' if qps is None else f'{qps:.0f}'}</td>")
            rows.append(f"<tr><td>{_e(name)}</td>{''.join(cells)}</tr>")
        head = "".join(f"<th>{_e(m)}</th>" for m in (*METRICS, "queries/s"))
        body.append(f"<h2>{_e(_TITLES.get(setting, setting))} — {block['n']} queries</h2>"
                    f"<table><tr><th>retriever</th>{head}</tr>{''.join(rows)}</table>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>toolgym tool retrieval</title><style>"
            + CSS + "</style></head><body>" + "".join(body) + "</body></html>")


def render_markdown(report: dict[str, Any]) -> str:
    out = [f"# Tool retrieval\n\ncatalogue: {report['catalogue']['tools']} tools ({report['catalogue']['names']} names)\n"]
    for setting, block in report["settings"].items():
        out.append(f"\n## {_TITLES.get(setting, setting)} ({block['n']} queries)\n\n| retriever | " + " | ".join(METRICS) + " |\n|---|"
                   + "---|" * len(METRICS))
        for name, r in block["results"].items():
            out.append(f"| {name} | " + " | ".join("n/a" if r.get(m) is None else f"{r[m]:.3f}" for m in METRICS) + " |")
    return "\n".join(out) + "\n"
