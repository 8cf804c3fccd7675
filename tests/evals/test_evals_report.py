"""HTML report: renders in headless Chromium (screenshot not blank, DOM has the abilities and numbers)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from png_pixels import png_pixels

from toolgym.evals.kagentbench import score
from toolgym.evals.report import compare, render_html, render_markdown, write_report

FIXTURES = Path(__file__).parent / "fixtures"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium():
    for p in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if p and Path(p).exists():
            return p
    pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")





def _kagent_run(items, preds, name, strict=False):
    rep = score(items, preds, strict=strict, name=name)
    return {"kind": "kagentbench", **rep.to_dict()}


def _bfcl_run():
    recs = [{"id": f"simple_{i}", "category": "simple_python" if i % 2 else "multiple", "total": 0.2 * i,
             "components": {"task_completion": i % 2, "format_compliance": 1.0}, "penalties": {}, "valid": True,
             "feedback": "ok" if i % 2 else "wrong tool", "calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}
            for i in range(5)]
    from toolgym.evals.runner import summarize_bfcl

    return {"kind": "bfcl", "name": "bfcl-run", "summary": summarize_bfcl(recs), "items": recs}


def _render(html_path: Path, tmp: Path, chromium: str):
    png = tmp / "shot.png"
    common = FLAGS + [f"--user-data-dir={tmp / 'profile'}", "--window-size=1200,1600"]
    subprocess.run([chromium, *common, f"--screenshot={png}", html_path.as_uri()], capture_output=True, timeout=120, check=True)
    dom = subprocess.run([chromium, *common, "--dump-dom", html_path.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    return png, dom


def test_html_report_renders_in_chromium(tmp_path, items, preds):
    chromium = _chromium()
    runs = [_kagent_run(items, preds, "reference-mode"), _kagent_run(items, preds, "strict-mode", strict=True), _bfcl_run()]
    paths = write_report(runs, tmp_path / "out")
    html = paths["html"].read_text(encoding="utf-8")
    # self-contained: no scripts, no external stylesheets, images or fonts
    assert "<script" not in html and "<link" not in html and 'src="http' not in html and "url(" not in html
    png, dom = _render(paths["html"], tmp_path, chromium)
    px = png_pixels(png)
    assert len(px) > 100_000
    non_white = sum(1 for b in px[::7] if b < 0xF0) / len(px[::7])
    assert non_white > 0.01, "screenshot looks blank"
    assert len(set(px[::3])) > 32
    for label in ("Planning", "Tool-use", "Reflection", "Concluding", "Profile", "Overall"):
        assert label in dom
    assert f"{runs[0]['overall']:.2f}" in dom and f"{runs[0]['planning']:.2f}" in dom
    assert f"{runs[1]['planning']:.2f}" in dom
    assert "<svg" in dom and "Reward per category" in dom and "get_weather" in dom


def test_markdown_and_compare(tmp_path, items, preds):
    run1 = _kagent_run(items, preds, "a")
    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "scores.json").write_text(json.dumps(run1, ensure_ascii=False))
    run2 = _kagent_run(items, preds, "b", strict=True)
    (tmp_path / "r2.json").write_text(json.dumps(run2, ensure_ascii=False))
    html, md = compare([tmp_path / "r1", tmp_path / "r2.json"], tmp_path / "cmp")
    assert "| Run | Planning |" in md and f"{run1['overall']:.2f}" in md and f"{run2['planning']:.2f}" in md
    assert (tmp_path / "cmp" / "report.html").exists() and "<polygon" in html
    out = subprocess.run([sys.executable, "-m", "toolgym.evals.cli", "report", "--compare", str(tmp_path / "r1"),
                          str(tmp_path / "r2.json")], capture_output=True, text=True, check=True).stdout
    assert out.startswith("| Run |") and "| a |" in out and "| b |" in out
    assert "simple_python" in render_markdown(_bfcl_run())
    assert "Worst items" in render_html(_bfcl_run())
