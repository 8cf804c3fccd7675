"""`toolgym score --jobs N`: worker processes write exactly what one process writes, in input order."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from toolgym.env.cli.main import main

pytest.importorskip("bfcl_eval")
REPO = Path(__file__).resolve().parents[3]


def _bench():
    name = "toolgym_bench_score_realistic"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "bench" / "bench_score_realistic.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("jobs")
    bench = _bench()
    records = bench.bfcl_records()
    items = bench.realistic_items(records, 300, seed=3)  # every category, format and perturbation kind
    used = {it["id"] for it in items}
    with open(d / "tasks.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            if r["id"] in used:
                f.write(json.dumps(r) + "\n")
    with open(d / "outputs.jsonl", "w", encoding="utf-8") as f:
        for i, it in enumerate(items):
            f.write(json.dumps({"id": it["id"], "output": it["output"], "n": i}) + "\n")
    return d


def _score(files, out: Path, *extra: str) -> bytes:
    argv = ["score", "--tasks", str(files / "tasks.jsonl"), "--outputs", str(files / "outputs.jsonl"), "--out", str(out), *extra]
    assert main(argv) == 0
    return out.read_bytes()


def test_jobs_2_writes_exactly_what_jobs_1_writes(files, tmp_path):
    one = _score(files, tmp_path / "one.jsonl", "--jobs", "1")
    two = _score(files, tmp_path / "two.jsonl", "--jobs", "2")
    assert one == two
    rows = [json.loads(line) for line in one.decode().splitlines()]
    assert [r["n"] for r in rows] == list(range(300))
    assert len({r["total"] for r in rows}) > 10  # a varied set, not all-equal results
    # a declared format goes to the workers too
    assert _score(files, tmp_path / "h1.jsonl", "--format", "hermes") == _score(files, tmp_path / "h2.jsonl", "--format", "hermes", "--jobs", "3")


def test_profile_prints_the_start_up_budget(files, tmp_path, capsys):
    _score(files, tmp_path / "p.jsonl", "--profile")
    err = capsys.readouterr().err
    assert "toolgym score --profile: 300 outputs" in err
    for phase in ("imports", "load", "tasks", "read 300 outputs", "score and write"):
        assert phase in err, err


def test_bad_jobs_is_a_clear_error(files, tmp_path, capsys):
    argv = ["score", "--tasks", str(files / "tasks.jsonl"), "--outputs", str(files / "outputs.jsonl"), "--out", str(tmp_path / "x"), "--jobs", "0"]
    assert main(argv) == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err
