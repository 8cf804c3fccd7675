"""`toolgym score`: in-process and through a live server give byte-identical results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from toolgym.env.cli.main import main

ROOT_DATA = None


def _bfcl_records(category: str, n: int) -> list[dict]:
    from importlib import resources

    base = resources.files("bfcl_eval") / "data"
    q = [json.loads(l) for l in (base / f"BFCL_v4_{category}.json").read_text().splitlines()[:n]]
    if "irrelevance" in category:
        return [{**r, "category": category, "ground_truth": []} for r in q]
    a = {json.loads(l)["id"]: json.loads(l)["ground_truth"] for l in (base / "possible_answer" / f"BFCL_v4_{category}.json").read_text().splitlines()}
    return [{**r, "category": category, "ground_truth": a[r["id"]]} for r in q]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("score")
    recs = _bfcl_records("simple_python", 40) + _bfcl_records("parallel", 20) + _bfcl_records("irrelevance", 20)
    with open(d / "tasks.jsonl", "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    with open(d / "outputs.jsonl", "w") as f:
        for i, r in enumerate(recs):
            calls = [{"name": next(iter(g)), "arguments": {k: v[0] for k, v in next(iter(g.values())).items() if v and v[0] != ""}}
                     for g in r["ground_truth"]]
            text = "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls) if i % 3 else "no calls, sorry"
            f.write(json.dumps({"id": r["id"], "output": text, "model": "m1", "n": i}) + "\n")
    return d


def test_local_and_server_results_are_byte_identical(files, env_server, capsys):
    local, remote = files / "local.jsonl", files / "remote.jsonl"
    assert main(["score", "--tasks", str(files / "tasks.jsonl"), "--outputs", str(files / "outputs.jsonl"), "--out", str(local)]) == 0
    assert main(["score", "--tasks", str(files / "tasks.jsonl"), "--outputs", str(files / "outputs.jsonl"), "--out", str(remote),
                 "--server", env_server.address, "--batch-size", "7"]) == 0
    assert local.read_bytes() == remote.read_bytes()
    rows = [json.loads(l) for l in local.read_text().splitlines()]
    assert len(rows) == 80 and [r["n"] for r in rows] == list(range(80))
    assert all({"total", "components", "penalties", "valid", "model", "id"} <= set(r) and "output" not in r for r in rows)
    by_id = {r["n"]: r for r in rows}
    # Call tasks complete exactly with their ground truth (i % 3 != 0); irrelevance tasks have an
    # empty ground truth, so every output above (no calls either way) completes them.
    for n, r in by_id.items():
        is_irr = r["id"].startswith("irrelevance")
        expect = 1.0 if is_irr or n % 3 else 0.0
        assert r["components"]["task_completion"] == expect, r


def test_bad_inputs_are_clear_errors(files, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "simple_python_0", "output": "x"}\n{oops\n')
    assert main(["score", "--tasks", str(files / "tasks.jsonl"), "--outputs", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    bad.write_text('{"id": "unknown_task", "output": "x"}\n')
    assert main(["score", "--tasks", str(files / "tasks.jsonl"), "--outputs", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "unknown_task" in capsys.readouterr().err
    assert main(["score", "--tasks", str(tmp_path / "missing.jsonl"), "--outputs", str(bad), "--out", str(tmp_path / "o")]) == 2


def test_console_script_runs(files, tmp_path):
    out = subprocess.run([sys.executable, "-m", "toolgym.env.cli.main", "score", "--tasks", str(files / "tasks.jsonl"),
                          "--outputs", str(files / "outputs.jsonl"), "--out", "-", "--format", "hermes"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 80
