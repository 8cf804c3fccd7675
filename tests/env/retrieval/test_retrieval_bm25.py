from __future__ import annotations

import pytest

from toolgym.env.retrieval.bm25 import BM25Retriever, tokenize


def test_tokenize_splits_identifiers_and_drops_stop_words():
    assert tokenize("What is the getWeather of my_city?") == ["get", "weather", "city"]


def test_bm25_finds_the_tool_and_scores_best_first(catalogue):
    r = BM25Retriever(catalogue)
    hits = r.retrieve("translate this text into French", 3)
    assert hits[0][0] == catalogue.get("translate_text").id
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert len(r.retrieve("move file", 100)) == len(catalogue)  # k larger than the catalogue


def test_bm25_index_is_cached_by_content_hash(catalogue, private_cache):
    first = BM25Retriever(catalogue)
    saved = list((private_cache / "retrieval").iterdir())
    assert len(saved) == 1 and saved[0].name.startswith("bm25-") and first.key in saved[0].name
    again = BM25Retriever(catalogue)  # loaded from disk
    assert again.retrieve("weather in Paris", 3) == first.retrieve("weather in Paris", 3)


def test_a_corrupt_cached_index_is_rebuilt(catalogue, private_cache):
    BM25Retriever(catalogue)
    (d,) = (private_cache / "retrieval").iterdir()
    for f in d.iterdir():
        f.write_bytes(b"garbage")
    r = BM25Retriever(catalogue)
    assert r.retrieve("weather", 1)[0][0] == catalogue.get("get_weather").id


def test_query_with_no_known_word_scores_zero(catalogue):
    hits = BM25Retriever(catalogue, use_cache=False).retrieve("zzzz qqqq", 2)
    assert len(hits) == 2 and all(s == 0.0 for _, s in hits)


@pytest.mark.parametrize("query,k,msg", [("", 3, "non-empty string"), ("weather", 0, "k must be an integer"),
                                         (None, 3, "non-empty string"), ("weather", True, "k must be an integer")])
def test_bad_queries_are_clear_errors(catalogue, query, k, msg):
    with pytest.raises(ValueError, match=msg):
        BM25Retriever(catalogue, use_cache=False).retrieve(query, k)
