"""``toolgym train retriever`` for two steps on CPU, and the pairs it trains on."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("sentence_transformers")

from toolgym.trainer.config import ConfigError  # noqa: E402
from toolgym.trainer.retriever import META_FILE, _split, build_pairs, train_retriever  # noqa: E402
from toolgym.trainer.retriever_config import RetrieverConfig, load_retriever_config  # noqa: E402


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLGYM_CACHE_DIR", str(tmp_path / "cache"))


def test_pairs_never_show_a_held_out_tool_and_carry_hard_negatives():
    cfg = RetrieverConfig(train_categories=["simple_python", "multi_turn_base"], hard_negatives=1, show_progress=False,
                          max_pairs_per_tool=2)
    catalogue, split, _ = _split(cfg)
    rows = build_pairs(cfg, catalogue, split)
    assert rows and all(set(r) == {"anchor", "positive", "negative_1"} for r in rows)
    held_texts = {e.text for e in catalogue if e.name in split.held_out_tools}
    assert held_texts and not any(r["positive"] in held_texts or r["negative_1"] in held_texts for r in rows)
    assert all(r["positive"] != r["negative_1"] for r in rows)
    test_queries = {e.query for e in split.unseen_queries + split.unseen_tools}
    assert not test_queries & {r["anchor"] for r in rows}


def test_every_row_keeps_all_its_negatives_when_the_mined_pool_is_short():
    """A pool of 1 mined negative for 3 asked: the rest are random wrong tools, never a row (and with
    it every row) cut down to fewer negatives."""
    cfg = RetrieverConfig(train_categories=["simple_python"], hard_negatives=3, hard_negative_pool=1, show_progress=False,
                          max_pairs_per_tool=1, max_pairs=40)
    catalogue, split, _ = _split(cfg)
    rows = build_pairs(cfg, catalogue, split)
    assert rows and all(set(r) == {"anchor", "positive", "negative_1", "negative_2", "negative_3"} for r in rows)
    assert all(len({r["positive"], r["negative_1"], r["negative_2"], r["negative_3"]}) == 4 for r in rows)


def test_two_training_steps_save_a_loadable_model(tmp_path):
    from toolgym.env.retrieval.catalogue import Catalogue
    from toolgym.env.retrieval.dense import DenseRetriever
    from toolgym.env.types import Task, ToolSpec

    cfg = load_retriever_config("trainer/configs/retriever_tiny.yaml", [f"output_dir={tmp_path / 'model'}"])
    summary = train_retriever(cfg)
    assert summary["steps"] == 2 and summary["pairs"] == 8 and summary["columns"] == ["anchor", "negative_1", "positive"]
    meta = json.loads((tmp_path / "model" / META_FILE).read_text())
    assert meta["config"]["train_categories"] == ["simple_python"] and meta["held_out_tools"]
    tools = (ToolSpec("get_weather", "Weather forecast for a city."), ToolSpec("mv", "Move a file."))
    cat = Catalogue.from_tasks([Task("t", "ast", (({"role": "user", "content": "q"},),), tools)])
    top = DenseRetriever(cat, tmp_path / "model").retrieve("is it sunny in Rome?", 1)
    assert top[0][0].startswith("get_weather#")


def test_config_errors_name_the_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("batch_sise: 4\n")
    with pytest.raises(ConfigError, match="batch_sise.*did you mean 'batch_size'"):
        load_retriever_config(p)
    with pytest.raises(ConfigError, match="batch_size must be >= 2"):
        load_retriever_config(None, ["batch_size=1"])
    with pytest.raises(ConfigError, match="hard_negative_source"):
        load_retriever_config(None, ["hard_negative_source=colbert"])
