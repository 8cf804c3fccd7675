"""``toolgym eval retrieval``: the metrics by hand, the paraphrase set's promise, a small real run."""

from __future__ import annotations

import json
import math

import pytest

from toolgym.evals.retrieval_metrics import mean_metrics, query_metrics


def test_metrics_by_hand():
    m = query_metrics(["a", "b", "a", "c", "d"], frozenset({"c", "z"}))
    # "a" twice collapses: c is at rank 3 of [a, b, c, d]
    assert m["recall@1"] == 0 and m["recall@5"] == 0.5 and m["recall@10"] == 0.5
    assert m["mrr"] == pytest.approx(1 / 3)
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert query_metrics(["x"], frozenset({"y"}))["mrr"] == 0.0
    assert query_metrics(["y"], frozenset({"y"}))["ndcg@10"] == 1.0
    assert mean_metrics([])["recall@5"] is None  # an empty setting is absent, never NaN
    with pytest.raises(ValueError, match="at least one relevant tool"):
        query_metrics(["a"], frozenset())


def test_paraphrases_share_no_content_word_with_their_tool(bfcl_catalogue):
    from toolgym.env.retrieval.bm25 import tokenize
    from toolgym.evals.retrieval_paraphrases import PARAPHRASES

    assert len(PARAPHRASES) >= 40 and len({q for q, _ in PARAPHRASES}) == len(PARAPHRASES)
    for query, name in PARAPHRASES:
        words = {w for tid in bfcl_catalogue.ids_named(name) for w in tokenize(bfcl_catalogue.get(tid).text)}
        assert words, f"{name} is not in the catalogue"
        assert not set(tokenize(query)) & words, (query, name, set(tokenize(query)) & words)


@pytest.fixture(scope="module")
def bfcl_catalogue():
    from toolgym.env.retrieval.factory import load_catalogue

    return load_catalogue("default")


def test_bm25_run_writes_json_and_an_html_table(tmp_path, monkeypatch):
    from toolgym.env.cli.main import main

    monkeypatch.setenv("TOOLGYM_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "report"
    assert main(["eval", "retrieval", "--retriever", "bm25", "--limit", "20", "--out", str(out), "--model", str(tmp_path / "none")]) == 0
    rep = json.loads((out / "retrieval.json").read_text())
    assert rep["kind"] == "retrieval" and rep["catalogue"]["names"] >= 1800
    assert set(rep["settings"]) == {"unseen_queries", "unseen_tools", "paraphrase", "unseen_categories"}
    for block in rep["settings"].values():
        assert block["n"] == 20
        r = block["results"]["bm25"]
        assert 0.0 <= r["recall@1"] <= r["recall@5"] <= r["recall@10"] <= 1.0 and 0.0 <= r["mrr"] <= 1.0
    html = (out / "report.html").read_text()
    assert "<table>" in html and "Unseen tools" in html and "recall@5" in html
