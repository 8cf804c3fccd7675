"""Self-contained reports: one HTML page (inline CSS, inline SVG charts, no scripts, no network) and Markdown.

Works on the ``scores.json`` that ``toolgym eval kagentbench --report`` / ``toolgym eval run`` write:

- KAgentBench runs (``kind == "kagentbench"``): the five abilities + Overall as bars (one run) or a radar
  and grouped bars (several runs), BLEU beside ROUGE, counts, and the worst items with their parsed calls.
- BFCL/toolgym-reward runs (``kind == "bfcl"``): mean reward per category, mean reward components,
  validity, and the worst items with their parsed calls and feedback.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from toolgym.evals.kagentbench import ABILITIES, ABILITY_LABELS

__all__ = ["load_run", "render_html", "render_markdown", "write_report", "compare"]

PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#4b5563"]
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,'Noto Sans CJK SC',sans-serif;margin:24px;color:#111827;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.sub{color:#6b7280;font-size:13px;margin-bottom:16px}
table{border-collapse:collapse;font-size:13px;margin:8px 0} th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6} td.num{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.card{border:1px solid #e5e7eb;border-radius:8px;padding:12px;background:#fafafa}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px} pre{white-space:pre-wrap;word-break:break-word;margin:0;max-width:560px}
.bad{color:#b91c1c} .ok{color:#047857} .legend span{display:inline-block;margin-right:14px;font-size:13px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-1px}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _f(v: Any, nd: int = 2) -> str:
    if v is None:
        return "n/a"
    try:
        return f"{float(v):.{nd}f}"
    except (TypeError, ValueError):
        return _e(v)


# ------------------------------------------------------------------------------------------------
# Loading runs
# ------------------------------------------------------------------------------------------------
def load_run(path: str | Path) -> dict[str, Any]:
    """A run's scores: a run folder (with ``scores.json``) or a JSON file written by this package."""
    p = Path(path)
    if p.is_dir():
        p = p / "scores.json"
    data = json.loads(p.read_text(encoding="utf-8"))
    if "kind" not in data:
        data["kind"] = "kagentbench" if "planning" in data else "bfcl"
    if not data.get("name"):
        data["name"] = Path(path).name if Path(path).is_dir() else Path(path).stem
    return data


# ------------------------------------------------------------------------------------------------
# SVG charts
# ------------------------------------------------------------------------------------------------
def svg_bars(labels: list[str], series: list[tuple[str, list[float | None]]], *, vmax: float = 100.0,
             width: int = 560, height: int = 260, title: str = "") -> str:
    """Vertical grouped bars; ``series`` = [(name, values per label)]."""
    pad_l, pad_b, pad_t = 36, 46, 24
    w, h = width - pad_l - 8, height - pad_b - pad_t
    n, k = len(labels), max(1, len(series))
    group = w / max(1, n)
    bw = max(4.0, (group * 0.8) / k)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="{_e(title)}" style="background:#fff">']
    if title:
        out.append(f'<text x="{width / 2:.1f}" y="15" text-anchor="middle" font-size="13" font-weight="600">{_e(title)}</text>')
    for t in range(0, 5):
        val = vmax * t / 4
        y = pad_t + h - h * t / 4
        out.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{pad_l + w}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{pad_l - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#6b7280">{val:g}</text>')
    for i, lab in enumerate(labels):
        gx = pad_l + i * group + group * 0.1
        for j, (_name, vals) in enumerate(series):
            v = vals[i] if i < len(vals) else None
            if v is None or not math.isfinite(float(v)):
                continue
            bh = h * max(0.0, min(1.0, float(v) / vmax)) if vmax else 0
            x = gx + j * bw
            y = pad_t + h - bh
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw - 1:.1f}" height="{bh:.1f}" fill="{PALETTE[j % len(PALETTE)]}"/>')
            if k <= 3:
                out.append(f'<text x="{x + (bw - 1) / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="10">{float(v):.1f}</text>')
        out.append(f'<text x="{pad_l + i * group + group / 2:.1f}" y="{pad_t + h + 16}" text-anchor="middle" font-size="11">{_e(lab)}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_radar(axes: list[str], series: list[tuple[str, list[float | None]]], *, vmax: float = 100.0,
              size: int = 340, title: str = "") -> str:
    cx = cy = size / 2
    r = size / 2 - 52
    n = len(axes)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" role="img" aria-label="{_e(title)}" style="background:#fff">']
    if title:
        out.append(f'<text x="{cx:.1f}" y="15" text-anchor="middle" font-size="13" font-weight="600">{_e(title)}</text>')

    def pt(i, frac):
        a = -math.pi / 2 + 2 * math.pi * i / n
        return cx + r * frac * math.cos(a), cy + 8 + r * frac * math.sin(a)

    for ring in (0.25, 0.5, 0.75, 1.0):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (pt(i, ring) for i in range(n)))
        out.append(f'<polygon points="{pts}" fill="none" stroke="#e5e7eb"/>')
    for i, lab in enumerate(axes):
        x, y = pt(i, 1.0)
        out.append(f'<line x1="{cx:.1f}" y1="{cy + 8:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        lx, ly = pt(i, 1.18)
        out.append(f'<text x="{lx:.1f}" y="{ly + 4:.1f}" text-anchor="middle" font-size="11">{_e(lab)}</text>')
    for j, (_name, vals) in enumerate(series):
        col = PALETTE[j % len(PALETTE)]
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in
                       (pt(i, max(0.0, min(1.0, float(vals[i] or 0) / vmax))) for i in range(n)))
        out.append(f'<polygon points="{pts}" fill="{col}" fill-opacity="0.15" stroke="{col}" stroke-width="2"/>')
    out.append("</svg>")
    return "".join(out)


def _legend(names: list[str]) -> str:
    return '<div class="legend">' + "".join(
        f'<span><i class="sw" style="background:{PALETTE[j % len(PALETTE)]}"></i>{_e(n)}</span>' for j, n in enumerate(names)
    ) + "</div>"


# ------------------------------------------------------------------------------------------------
# Sections
# ------------------------------------------------------------------------------------------------
def _kagent_table(runs: list[dict]) -> str:
    head = "".join(f"<th>{ABILITY_LABELS[a]}</th>" for a in ABILITIES)
    rows = []
    for r in runs:
        cells = "".join(f'<td class="num">{_f(r.get(a))}</td>' for a in ABILITIES)
        b = r.get("bleu") or {}
        rows.append(f"<tr><td>{_e(r.get('name'))}</td>{cells}<td class=\"num\"><b>{_f(r.get('overall'))}</b></td>"
                    f"<td class=\"num\">{_f(b.get('concluding'))}</td><td class=\"num\">{_f(b.get('profile'))}</td></tr>")
    return (f"<table><tr><th>Run</th>{head}<th>Overall</th><th>BLEU concl.</th><th>BLEU profile</th></tr>"
            + "".join(rows) + "</table>")


def _counts_table(run: dict) -> str:
    c = run.get("counts") or {}
    keys = [k for k, v in c.items() if isinstance(v, int)]
    return ("<table><tr>" + "".join(f"<th>{_e(k)}</th>" for k in keys) + "</tr><tr>"
            + "".join(f'<td class="num">{c[k]}</td>' for k in keys) + "</tr></table>")


def _item_score(it: dict) -> float:
    s = it.get("scores") or {}
    vals = [v for k, v in s.items() if k != "bleu" and isinstance(v, (int, float))]
    return sum(vals) / len(vals) if vals else 0.0


def _short(x: Any, n: int = 300) -> str:
    s = x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)
    return s if len(s) <= n else s[:n] + "…"


def _worst_kagent(run: dict, k: int = 10) -> str:
    items = run.get("items") or []
    if not items:
        return "<p class=\"sub\">Per-item details were not kept for this run.</p>"
    worst = sorted(items, key=_item_score)[:k]
    rows = []
    for it in worst:
        parts = []
        for t in it.get("templates") or []:
            sc = ", ".join(f"{kk}={_f(v, 3)}" for kk, v in (t.get("scores") or {}).items())
            if "tool_name" in t:
                call = f"{_e(_short(t.get('tool_name'), 80))}({_e(_short(t.get('tool_args'), 200))})"
                extra = f" <i>reused {_e(t['reused_from'])}</i>" if t.get("reused_from") else ""
                if t.get("json_ok") is False:
                    extra += ' <span class="bad">JSON failed</span>'
                parts.append(f"<b>{_e(t.get('template'))}</b>: <code>{call}</code> — {sc}{extra}"
                             f"<br><small>thought: {_e(_short(t.get('thought'), 160))}</small>")
            else:
                parts.append(f"<b>{_e(t.get('template'))}</b>: {sc}<br><small>{_e(_short(t.get('text'), 160))}</small>")
        issues = "<br>".join(_e(i) for i in it.get("issues") or [])
        rows.append(f"<tr><td><code>{_e(it.get('id'))}</code><br><small>{_e(it.get('type'))}</small></td>"
                    f"<td>{_e(_short(it.get('query'), 160))}</td><td class=\"num\">{_f(_item_score(it) * 100)}</td>"
                    f"<td>{'<br>'.join(parts)}</td><td><small>{issues}</small></td></tr>")
    return ("<table><tr><th>Item</th><th>Query</th><th>Score</th><th>Parsed calls per template</th><th>Issues</th></tr>"
            + "".join(rows) + "</table>")


def _bfcl_sections(runs: list[dict]) -> str:
    out = []
    cats: list[str] = []
    for r in runs:
        for c in (r.get("summary") or {}).get("per_category", {}):
            if c not in cats:
                cats.append(c)
    series = [(r.get("name", "run"), [((r.get("summary") or {}).get("per_category", {}).get(c, {}).get("mean_total"))
                                      for c in cats]) for r in runs]
    vmax = max([1.0] + [v for _, vals in series for v in vals if isinstance(v, (int, float))])
    out.append("<h2>Reward per category</h2><div class=\"charts\"><div class=\"card\">"
               + svg_bars(cats, series, vmax=vmax, width=max(420, 90 * len(cats) + 60), title="mean total reward")
               + _legend([s[0] for s in series]) + "</div>")
    comps: list[str] = []
    for r in runs:
        for c in (r.get("summary") or {}).get("components", {}):
            if c not in comps:
                comps.append(c)
    cseries = [(r.get("name", "run"), [(r.get("summary") or {}).get("components", {}).get(c) for c in comps]) for r in runs]
    out.append("<div class=\"card\">" + svg_bars(comps, cseries, vmax=1.0, width=max(420, 110 * len(comps) + 60),
                                                    title="mean reward components") + "</div></div>")
    rows = []
    for r in runs:
        s = r.get("summary") or {}
        for c in cats:
            pc = s.get("per_category", {}).get(c)
            if not pc:
                continue
            comp = ", ".join(f"{k}={_f(v, 3)}" for k, v in (pc.get("components") or {}).items())
            rows.append(f"<tr><td>{_e(r.get('name'))}</td><td>{_e(c)}</td><td class=\"num\">{pc.get('n', 0)}</td>"
                        f"<td class=\"num\">{_f(pc.get('mean_total'), 3)}</td><td class=\"num\">{_f(pc.get('valid_rate'), 3)}</td>"
                        f"<td><small>{_e(comp)}</small></td></tr>")
    out.append("<table><tr><th>Run</th><th>Category</th><th>n</th><th>Mean reward</th><th>Valid</th><th>Components</th></tr>"
               + "".join(rows) + "</table>")
    for r in runs:
        items = sorted(r.get("items") or [], key=lambda it: it.get("total", 0.0))[:10]
        if not items:
            continue
        rows = []
        for it in items:
            calls = "<br>".join(f"<code>{_e(c.get('name'))}({_e(_short(c.get('arguments'), 200))})</code>"
                                for c in it.get("calls") or []) or "<i>no call</i>"
            rows.append(f"<tr><td><code>{_e(it.get('id'))}</code><br><small>{_e(it.get('category'))}</small></td>"
                        f"<td class=\"num\">{_f(it.get('total'), 3)}</td><td>{calls}</td>"
                        f"<td><small>{_e(_short(it.get('feedback'), 240))}</small></td></tr>")
        out.append(f"<h2>Worst items — {_e(r.get('name'))}</h2><table><tr><th>Task</th><th>Reward</th>"
                   f"<th>Parsed calls</th><th>Feedback</th></tr>" + "".join(rows) + "</table>")
    return "".join(out)


def render_html(runs: list[dict] | dict, *, title: str = "toolgym evaluation report") -> str:
    runs = [runs] if isinstance(runs, dict) else list(runs)
    names = [r.get("name") or f"run {i + 1}" for i, r in enumerate(runs)]
    for r, n in zip(runs, names):
        r["name"] = n
    body = [f"<h1>{_e(title)}</h1><div class=\"sub\">{_e(', '.join(names))}</div>"]
    kag = [r for r in runs if r.get("kind") == "kagentbench"]
    bf = [r for r in runs if r.get("kind") == "bfcl"]
    if kag:
        labels = [ABILITY_LABELS[a] for a in ABILITIES] + ["Overall"]
        series = [(r["name"], [r.get(a) for a in ABILITIES] + [r.get("overall")]) for r in kag]
        charts = ['<div class="card">' + svg_bars(labels, series, title="KAgentBench abilities (0-100)") + _legend(names_k := [s[0] for s in series]) + "</div>"]
        charts.append('<div class="card">' + svg_radar([ABILITY_LABELS[a] for a in ABILITIES],
                                                       [(r["name"], [r.get(a) for a in ABILITIES]) for r in kag],
                                                       title="five abilities") + _legend(names_k) + "</div>")
        body.append("<h2>KAgentBench</h2>" + _kagent_table(kag) + '<div class="charts">' + "".join(charts) + "</div>")
        for r in kag:
            mode = "strict" if r.get("strict") else "reference-compatible"
            tok = r.get("tokenizer", "exact")
            body.append(f"<h2>{_e(r['name'])} — counts</h2><div class=\"sub\">mode: {mode}; tokenizer: {_e(tok)}</div>"
                        + _counts_table(r) + f"<h2>{_e(r['name'])} — worst items</h2>" + _worst_kagent(r))
    if bf:
        body.append(_bfcl_sections(bf))
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + _e(title)
            + "</title><style>" + CSS + "</style></head><body>" + "".join(body) + "</body></html>")


def render_markdown(runs: list[dict] | dict) -> str:
    runs = [runs] if isinstance(runs, dict) else list(runs)
    out = []
    kag = [r for r in runs if r.get("kind") == "kagentbench"]
    if kag:
        out.append("| Run | " + " | ".join(ABILITY_LABELS[a] for a in ABILITIES) + " | Overall | BLEU concl. | BLEU profile |")
        out.append("|---|" + "---:|" * (len(ABILITIES) + 3))
        for r in kag:
            b = r.get("bleu") or {}
            out.append(f"| {r.get('name', '')} | " + " | ".join(_f(r.get(a)) for a in ABILITIES)
                       + f" | **{_f(r.get('overall'))}** | {_f(b.get('concluding'))} | {_f(b.get('profile'))} |")
    bf = [r for r in runs if r.get("kind") == "bfcl"]
    if bf:
        if out:
            out.append("")
        out.append("| Run | Category | n | Mean reward | Valid |")
        out.append("|---|---|---:|---:|---:|")
        for r in bf:
            s = r.get("summary") or {}
            out.append(f"| {r.get('name', '')} | **all** | {s.get('n', 0)} | {_f(s.get('mean_total'), 3)} | {_f(s.get('valid_rate'), 3)} |")
            for c, pc in (s.get("per_category") or {}).items():
                out.append(f"| {r.get('name', '')} | {c} | {pc.get('n', 0)} | {_f(pc.get('mean_total'), 3)} | {_f(pc.get('valid_rate'), 3)} |")
    return "\n".join(out) + "\n"


def write_report(runs: list[dict] | dict, out_dir: str | Path, *, title: str = "toolgym evaluation report") -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h = out / "report.html"
    m = out / "report.md"
    h.write_text(render_html(runs, title=title), encoding="utf-8")
    m.write_text(render_markdown(runs), encoding="utf-8")
    return {"html": h, "markdown": m}


def compare(paths: list[str | Path], out_dir: str | Path | None = None) -> tuple[str, str]:
    runs = [load_run(p) for p in paths]
    html_s = render_html(runs, title="toolgym evaluation — comparison")
    md = render_markdown(runs)
    if out_dir:
        write_report(runs, out_dir, title="toolgym evaluation — comparison")
    return html_s, md
