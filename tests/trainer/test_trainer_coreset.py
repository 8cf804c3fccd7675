"""Coreset selection strategies and the online replay buffer."""

from __future__ import annotations

import pytest

from toolgym.trainer.coreset import CoresetSelector, OnlineContinualLearner, annotate, lexical_diversity


def _ex(i: int, text: str, loss: float | None = None) -> dict:
    d = {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": text}], "i": i}
    if loss is not None:
        d["loss"] = loss
    return d


def test_annotate_adds_metrics_and_respects_given_loss():
    ex = [_ex(0, "a b c d", loss=5.0), _ex(1, "a a a a")]
    annotate(ex)
    assert ex[0]["loss"] == 5.0
    assert ex[1]["lexical_diversity"] == pytest.approx(0.25)
    assert all(e["token_length"] > 0 for e in ex)
    assert lexical_diversity("") == 0.0


def test_loss_topk_and_random():
    ex = [_ex(i, f"t{i}", loss=float(i)) for i in range(10)]
    top = CoresetSelector("loss_topk", 3).select(ex)
    assert [e["i"] for e in top] == [9, 8, 7]
    r1 = CoresetSelector("random", 4, seed=1).select(ex)
    r2 = CoresetSelector("random", 4, seed=1).select(ex)
    assert [e["i"] for e in r1] == [e["i"] for e in r2] and len(r1) == 4


def test_diversity_prefers_distinct_examples():
    ex = [_ex(i, "weather city forecast") for i in range(6)] + [_ex(10, "stock price ticker"), _ex(11, "translate french sentence")]
    picked = {e["i"] for e in CoresetSelector("diversity", 3, seed=0).select(ex)}
    assert {10, 11} <= picked  # the two outliers are covered before any duplicate


def test_hybrid_mixes_loss_and_diversity():
    ex = [_ex(i, "same words here", loss=float(i)) for i in range(8)] + [_ex(20, "completely different vocabulary", loss=0.0)]
    sel = CoresetSelector("hybrid", 4, hybrid_loss_fraction=0.5).select(ex)
    ids = [e["i"] for e in sel]
    assert ids[:2] == [7, 6] and 20 in ids
    with pytest.raises(ValueError):
        CoresetSelector("bogus")


def test_replay_ratio_and_reservoir():
    learner = OnlineContinualLearner(buffer_size=10, replay_ratio=0.3, seed=0)
    first = learner.mix([{"i": i} for i in range(20)])
    assert len(first) == 20 and not any(e["replay"] for e in first)  # empty buffer: nothing to replay
    second = learner.mix([{"i": 100 + i} for i in range(14)])
    replay = [e for e in second if e["replay"]]
    assert len(replay) == 6  # 0.3 / 0.7 * 14
    assert len(replay) / len(second) == pytest.approx(0.3)
    assert len(learner.buffer) == 10 and learner.seen == 34
    with pytest.raises(ValueError):
        OnlineContinualLearner(replay_ratio=1.0)
