"""DPO: sample N, score on the server, best vs worst pairs (ties and invalid skipped), TRL DPOTrainer."""

from __future__ import annotations

import json

import pytest

from toolgym.trainer.config_load import config_from_dict
from toolgym.trainer.data import TaskSplit
from toolgym.trainer.dpo import build_preference_pairs, server_score_fn, train_dpo, train_dpo_on_groups

TASKS = ["simple_python_0", "simple_python_1", "simple_python_2"]


def test_pairs_from_best_and_worst():
    groups = [
        {"prompt": [{"role": "user", "content": "a"}], "completions": ["c0", "c1", "c2"], "scores": [(0.2, True), (0.9, True), (-0.1, True)], "task_id": "t1"},
        {"prompt": [{"role": "user", "content": "b"}], "completions": ["x", "y"], "scores": [(0.5, True), (0.5, True)]},  # tie
        {"prompt": [{"role": "user", "content": "c"}], "completions": ["x", "y", "z"], "scores": [(1.0, True), (None, False), (0.0, False)]},  # one valid
        {"prompt": [{"role": "user", "content": "d"}], "completions": ["x", "y", "z"], "scores": [(0.3, True), (5.0, False), (0.1, True)]},  # invalid max ignored
    ]
    pairs, skipped = build_preference_pairs(groups)
    assert skipped == {"too_few_valid": 1, "tie": 1}
    assert len(pairs) == 2
    assert pairs[0]["chosen"][0]["content"] == "c1" and pairs[0]["rejected"][0]["content"] == "c2"
    assert pairs[1]["chosen"][0]["content"] == "x" and pairs[1]["rejected"][0]["content"] == "z"


@pytest.fixture(scope="module")
def scored_groups(live_server, trainer_suite, gt_text, unscorable_task):
    """Groups of hand-written completions, scored by the live server's ScoreBatch (the DPO scorer trainers use):
    per task the ground-truth call, a malformed call and a call of a tool the task does not offer; plus a group of
    two identical ground-truth calls (a tie) and one on a task the server cannot score (no valid score)."""
    from toolgym.env.client import ToolgymClient
    from toolgym.trainer.data import prompt_messages

    malformed = '<tool_call>\n{"name": broken\n</tool_call>'
    hallucinated = '<tool_call>\n{"name": "no_such_tool", "arguments": {}}\n</tool_call>'
    groups = [{"task_id": t, "template": "hermes", "prompt": prompt_messages(trainer_suite[t], "hermes"),
               "completions": [malformed, gt_text(t), hallucinated]} for t in TASKS]
    groups.append({"task_id": "simple_python_3", "template": "hermes", "prompt": prompt_messages(trainer_suite["simple_python_3"], "hermes"),
                   "completions": [gt_text("simple_python_3")] * 2})
    groups.append({"task_id": unscorable_task, "template": "hermes", "prompt": prompt_messages(trainer_suite[unscorable_task], "hermes"),
                   "completions": ["x", hallucinated]})
    items = [{"output": c, "task_id": g["task_id"], "template": "hermes"} for g in groups for c in g["completions"]]
    with ToolgymClient(live_server.address, timeout=60.0) as c:
        scores = server_score_fn(c)(items)
    k = 0
    for g in groups:
        g["scores"] = scores[k : k + len(g["completions"])]
        k += len(g["completions"])
    return groups


def test_pairs_from_server_scores(scored_groups):
    for g in scored_groups[: len(TASKS)]:
        (s_bad, ok_bad), (s_gt, ok_gt), (s_tool, ok_tool) = g["scores"]
        assert ok_bad and ok_gt and ok_tool
        assert s_gt == pytest.approx(1.0) and s_gt > max(s_bad, s_tool)  # the ground truth is the one right answer
        assert s_bad != s_tool  # the server tells the two mistakes apart
    assert scored_groups[-2]["scores"][0] == scored_groups[-2]["scores"][1]  # identical outputs: identical scores
    assert all(not ok and s is None for s, ok in scored_groups[-1]["scores"])  # unscorable: no valid score at all
    pairs, skipped = build_preference_pairs(scored_groups)
    assert skipped == {"too_few_valid": 1, "tie": 1}
    assert [p["task_id"] for p in pairs] == TASKS
    for p, g in zip(pairs, scored_groups):
        worst = min(range(3), key=lambda i: g["scores"][i][0])
        assert p["chosen"][0]["content"] == g["completions"][1] and p["chosen_score"] == pytest.approx(1.0)
        assert p["rejected"][0]["content"] == g["completions"][worst] and p["rejected_score"] == g["scores"][worst][0]
        assert p["prompt"] == g["prompt"]


def test_train_dpo_on_server_scored_pairs(tiny_model_dir, tmp_path, scored_groups):
    cfg = config_from_dict({
        "output_dir": str(tmp_path), "model": {"name_or_path": tiny_model_dir},
        "dpo": {"max_steps": 2, "per_device_train_batch_size": 2, "max_length": 512},
    })
    summary = train_dpo_on_groups(cfg, scored_groups)
    assert summary["pairs"] == len(TASKS) and summary["skipped"] == {"too_few_valid": 1, "tie": 1}
    assert summary["final_model"] and (tmp_path / "dpo" / "final").is_dir()
    rows = [json.loads(line) for line in (tmp_path / "dpo" / "pairs.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in rows] == TASKS and all(r["chosen_score"] > r["rejected_score"] for r in rows)


def test_train_dpo_samples_and_scores_on_live_server(tiny_model_dir, tmp_path, live_server, client):
    """The whole stage: resets for the prompts, N samples each, every sample scored on the server, pairs, training."""
    cfg = config_from_dict({
        "output_dir": str(tmp_path), "model": {"name_or_path": tiny_model_dir},
        "dpo": {"num_prompts": 4, "num_samples": 3, "max_new_tokens": 8, "max_steps": 2, "per_device_train_batch_size": 2, "max_length": 768},
    })
    split = TaskSplit(train=["simple_python_0", "simple_python_1", "irrelevance_0", "toolgym_python_0"], heldout=[], prompts={}, kinds={})
    seen, results = [], []
    scorer = server_score_fn(client)

    def score_fn(items):  # the server's scorer, recording what it was asked and what it answered
        seen.extend(items)
        out = scorer(items)
        results.extend(out)
        return out

    summary = train_dpo(cfg, address=live_server.address, split=split, score_fn=score_fn)
    assert len(seen) == 12 and {i["task_id"] for i in seen} == set(split.train)
    assert all(ok for _, ok in results)  # every sample of these tasks gets a valid server score
    assert summary["prompts"] == 4 and summary["pairs"] + sum(summary["skipped"].values()) == 4
    rows = [json.loads(line) for line in (tmp_path / "dpo" / "pairs.jsonl").read_text().splitlines()]
    assert len(rows) == summary["pairs"]
    assert all(r["chosen_score"] > r["rejected_score"] and r["chosen_score"] in [s for s, _ in results] for r in rows)
    assert bool(summary["final_model"]) == (summary["pairs"] > 0)


def test_dpo_scores_on_live_server(tiny_model_dir, tmp_path, live_server):
    from toolgym.env.client import ToolgymClient
    from toolgym.trainer.common import load_model, load_tokenizer
    from toolgym.trainer.dpo import sample_groups

    cfg = config_from_dict({"output_dir": str(tmp_path), "dpo": {"num_samples": 2, "max_new_tokens": 6}})
    tok = load_tokenizer(tiny_model_dir)
    with ToolgymClient(live_server.address) as c:
        groups = sample_groups(load_model(tiny_model_dir, cfg.model), tok, c, ["simple_python_0", "irrelevance_0"], cfg)
    assert [g["task_id"] for g in groups] == ["simple_python_0", "irrelevance_0"]
    assert all(len(g["scores"]) == 2 and all(ok for _, ok in g["scores"]) for g in groups)
