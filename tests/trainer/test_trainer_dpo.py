"""DPO: sample N, score on the server, best vs worst pairs (ties and invalid skipped), TRL DPOTrainer."""

from __future__ import annotations

from toolgym.trainer.config import config_from_dict
from toolgym.trainer.data import TaskSplit
from toolgym.trainer.dpo import build_preference_pairs, train_dpo
from toolgym.trainer.testing import FakeClient


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


def test_train_dpo_with_injected_scorer(tiny_model_dir, tmp_path):
    cfg = config_from_dict({
        "output_dir": str(tmp_path), "model": {"name_or_path": tiny_model_dir},
        "dpo": {"num_prompts": 4, "num_samples": 3, "max_new_tokens": 8, "max_steps": 2, "per_device_train_batch_size": 2, "max_length": 256},
    })
    split = TaskSplit(train=["single/a", "single/b", "single/c", "single/d"], heldout=[], prompts={}, kinds={})
    seen = []

    def score_fn(items):  # longer output = better; deterministic and tie-free enough
        seen.extend(items)
        return [(float(len(i["output"])) + 0.001 * k, True) for k, i in enumerate(items)]

    summary = train_dpo(cfg, address=FakeClient(), split=split, score_fn=score_fn)
    assert len(seen) == 12 and {i["task_id"] for i in seen} == set(split.train)
    assert summary["pairs"] == 4 and summary["final_model"]
    assert (tmp_path / "dpo" / "pairs.jsonl").is_file()


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
