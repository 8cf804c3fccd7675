"""``toolgym eval run`` with the real SmolLM2 model by alias: the CLI's --json carries per-component means.

Kept small (2 tasks, 16 new tokens) so it costs seconds of CPU; the full check of the issue is the same command
with ``--limit 5`` and the default token budget.
"""

from __future__ import annotations

import json
import subprocess
import sys


def test_eval_run_alias_json_has_components(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "toolgym.env.cli.main", "eval", "run", "--model", "smollm2-135m-instruct",
           "--suite", "bfcl:simple_python", "--limit", "2", "--batch-size", "2", "--max-new-tokens", "16",
           "--out", str(out), "--json", "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                         env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(res.stdout.strip().splitlines()[-1])
    assert data["n"] == 2 and data["valid_rate"] == 1.0
    for k in ("task_completion", "tool_accuracy", "format_compliance"):
        assert 0.0 <= data[k] <= 1.0 and data["components"][k] == data[k]
    assert data["per_category"]["simple_python"]["n"] == 2
    assert set(data["penalty_rates"]) and all(0.0 <= v <= 1.0 for v in data["penalty_rates"].values())
    rec = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["turns"] for r in rec] == [1, 1] and all(r["actions"][0] for r in rec)
