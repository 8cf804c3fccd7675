"""`toolgym rollouts export|rescore|prune` on a store filled by real episodes over gRPC."""

from __future__ import annotations

import json

import pytest

from toolgym.env.cli.main import main
from toolgym.env.client import ToolgymClient
from toolgym.env.server.app import ServerConfig, start_server

from gym_helpers import gt_single_turn_action
from sessions_support import gt_actions

N_MULTI, N_SINGLE = 2, 6


@pytest.fixture(scope="module")
def store_url(bfcl_suite, tmp_path_factory):
    """A SQLite store holding finished episodes of two categories, good and bad ones."""
    url = f"sqlite:///{tmp_path_factory.mktemp('rollouts')}/s.db"
    multi = sorted(bfcl_suite.filter(categories=["multi_turn_base"]), key=lambda t: t.id)[:N_MULTI]
    single = sorted(bfcl_suite.filter(categories=["simple_python"]), key=lambda t: t.id)[:N_SINGLE]
    with start_server(ServerConfig(port=0, session_store=url, sandbox_workers=1, max_steps=64), suite=bfcl_suite) as srv, \
            ToolgymClient(srv.address, timeout=60) as c:
        for t in multi:
            sid = c.reset(t.id, template="hermes", max_steps=64).session_id
            for i, a in enumerate(gt_actions(t)):
                c.step(sid, a, step_index=i)
        for k, t in enumerate(single):
            sid = c.reset(t.id, template="hermes").session_id
            # Half right, half a call to a tool that does not exist (a penalty to re-weight).
            act = gt_single_turn_action(t) if k % 2 == 0 else '<tool_call>{"name": "no_such_tool", "arguments": {}}</tool_call>'
            c.step(sid, act, step_index=0)
    return url


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["rollouts", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_export_jsonl_parquet_and_hf_with_filters(store_url, tmp_path, capsys):
    out = tmp_path / "all.jsonl"
    assert _run(capsys, "export", "--session-store", store_url, "--format", "jsonl", "--out", str(out))[0] == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == N_MULTI + N_SINGLE
    multi = [r for r in rows if r["category"] == "multi_turn_base"]
    assert len(multi) == N_MULTI and all(r["total"] > 0.9 and r["n_steps"] == len(r["actions"]) == len(r["observations"]) for r in multi)
    assert all(set(r["components"]) == {"task_completion", "tool_accuracy", "efficiency", "timing_quality", "format_compliance"} for r in rows)
    bad = [r for r in rows if r["penalty_counts"]["hallucinated_tool"]]
    assert len(bad) == N_SINGLE // 2 and all(r["penalties"]["hallucinated_tool"] < 0 for r in bad)

    sel = tmp_path / "sel.jsonl"
    _run(capsys, "export", "--session-store", store_url, "--format", "jsonl", "--out", str(sel),
         "--category", "simple_python", "--min-reward", "0.5", "--since", "2000-01-01T00:00")
    got = [json.loads(x) for x in sel.read_text().splitlines()]
    assert got and all(r["category"] == "simple_python" and r["total"] >= 0.5 for r in got)
    assert len(got) == sum(1 for r in rows if r["category"] == "simple_python" and r["total"] >= 0.5)
    _run(capsys, "export", "--session-store", store_url, "--format", "jsonl", "--out", str(sel), "--until", "2000-01-01")
    assert sel.read_text() == ""

    import datasets
    import pyarrow.parquet as pq

    pq_path = tmp_path / "r.parquet"
    _run(capsys, "export", "--session-store", store_url, "--format", "parquet", "--out", str(pq_path))
    table = pq.read_table(pq_path)
    assert table.num_rows == len(rows) and sorted(table.column("task_id").to_pylist()) == sorted(r["task_id"] for r in rows)

    hf = tmp_path / "hf"
    code, said, _ = _run(capsys, "export", "--session-store", store_url, "--format", "hf", "--out", str(hf))
    assert code == 0 and f"exported {len(rows)} rollout(s)" in said
    ds = datasets.load_from_disk(str(hf))
    assert len(ds) == len(rows) and "actions" in ds.column_names and "penalties" in ds.column_names
    first = next(r for r in ds if r["category"] == "multi_turn_base")
    assert first["actions"] == next(r for r in rows if r["id"] == first["id"])["actions"]


def test_rescore_reproduces_stored_totals_and_applies_new_weights(store_url, tmp_path, capsys):
    same = tmp_path / "same.yaml"
    same.write_text("{}\n")  # the defaults the episodes were scored with
    pairs = tmp_path / "pairs.jsonl"
    code, said, _ = _run(capsys, "rescore", "--session-store", store_url, "--reward-config", str(same), "--out", str(pairs))
    assert code == 0 and "(0 changed)" in said
    assert all(abs(p["before"] - p["after"]) < 1e-9 for p in map(json.loads, pairs.read_text().splitlines()))

    new = tmp_path / "new.yaml"
    new.write_text("reward:\n  weights: {task_completion: 1.0, tool_accuracy: 0, efficiency: 0, timing_quality: 0, format_compliance: 0}\n"
                   "  penalties: {hallucinated_tool: -1.0}\n")
    code, said, _ = _run(capsys, "rescore", "--session-store", store_url, "--reward-config", str(new), "--out", str(pairs),
                         "--category", "simple_python")
    assert code == 0 and "before: n=6" in said and "after:  n=6" in said
    after = {p["task_id"]: p for p in map(json.loads, pairs.read_text().splitlines())}
    for p in after.values():
        # completion 1 and no penalty, or completion 0 and one hallucinated call at -1.0
        assert p["after"] in (1.0, -1.0), p


def test_prune_and_bad_input(store_url, tmp_path, capsys):
    import shutil

    from toolgym.env.sessions.sqlite_store import sqlite_path

    copy = tmp_path / "copy.db"
    shutil.copy(sqlite_path(store_url)[0], copy)
    code, said, _ = _run(capsys, "prune", "--session-store", f"sqlite:///{copy}", "--max-count", "3")
    assert code == 0 and f"removed {N_MULTI + N_SINGLE - 3} rollout(s)" in said
    bad = tmp_path / "bad.yaml"
    bad.write_text("weights: {speed: 1.0}\n")
    code, _, err = _run(capsys, "rescore", "--session-store", store_url, "--reward-config", str(bad))
    assert code == 2 and "unknown reward component" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, "export", "--session-store", f"sqlite:///{tmp_path}/none.db", "--out", str(tmp_path / "x"))
    assert code == 2 and "no session store at" in err
