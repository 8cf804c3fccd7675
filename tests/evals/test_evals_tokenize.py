"""Tokenization as KAgentBench's reference sees text (nltk 3.8.1 word_tokenize + CJK character split)."""

import json
import pickle
import pickletools

import pytest

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
ITEMS = FIXTURES / "kagent_items.jsonl"
PREDS = FIXTURES / "kagent_preds.jsonl"

NLTK381 = json.loads((FIXTURES / "nltk381_tokens.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("text", list(NLTK381))
def test_word_tokenize_matches_nltk_381(punkt_exact, text):
    from toolgym.evals.tokenize import mixed_tokenize, word_tokenize

    assert word_tokenize(text) == NLTK381[text]["word_tokenize"]
    assert mixed_tokenize(text) == NLTK381[text]["mixed"]


def test_sentence_splitting_changes_tokens(punkt_exact):
    """Without sentence splitting (preserve_line) periods inside the text stay glued to the word."""
    from toolgym.evals.tokenize import treebank_tokenize, word_tokenize

    differs = [t for t, v in NLTK381.items() if v["word_tokenize"] != v["preserve_line"]]
    assert len(differs) >= 5
    for t in differs:
        assert treebank_tokenize(t) == NLTK381[t]["preserve_line"]  # one "sentence" = nltk preserve_line
        assert word_tokenize(t) == NLTK381[t]["word_tokenize"]
    # abbreviations known to the English model do not end sentences; ordinary words do
    assert word_tokenize("Mr. Smith is here. He left.") == ["Mr.", "Smith", "is", "here", ".", "He", "left", "."]


def test_cjk_split_into_characters():
    from toolgym.evals.tokenize import mixed_tokenize, rouge_words

    assert mixed_tokenize("北京今天晴天") == list("北京今天晴天")
    assert mixed_tokenize("快手 stock") == ["快", "手", "stock"]
    # Japanese kana and Hangul are category 'Lo' too (the reference splits every such token)
    assert mixed_tokenize("ない") == ["な", "い"]
    assert rouge_words("") == ()
    assert rouge_words("   ") == ()


def test_rouge_score_default_tokenizer_drops_chinese():
    """Why we tokenize ourselves: rouge-score's default tokenizer scores identical Chinese 0."""
    rs = pytest.importorskip("rouge_score.rouge_scorer")
    sc = rs.RougeScorer(["rougeL"])
    assert sc.score("北京今天晴天", "北京今天晴天")["rougeL"].fmeasure == 0.0
    from toolgym.evals.rouge import kagent_rouge

    assert kagent_rouge("北京今天晴天", "北京今天晴天") == pytest.approx(2 / (2 + 1e-8), abs=0)


def test_cut_sent_splits_inside_token():
    # rouge_chinese cuts "sentences" after ！ even inside a non-CJK token
    from toolgym.evals.tokenize import rouge_words

    assert rouge_words("ok！ok") == ("ok！", "ok")


def test_punkt_pickle_loader_refuses_foreign_code():
    from toolgym.evals.punkt import read_punkt_pickle

    import os

    evil = pickle.dumps(os.system)  # a global that is not a Punkt class, a set, an int or a defaultdict
    with pytest.raises(pickle.UnpicklingError):
        read_punkt_pickle(evil)
    with pytest.raises(pickle.UnpicklingError):
        read_punkt_pickle(pickle.dumps(pickletools.genops))


def test_punkt_tab_roundtrip(tmp_path):
    from toolgym.evals.punkt import PunktParams, PunktSplitter, read_punkt_tab, write_punkt_tab

    p = PunktParams(abbrev_types={"dr", "e.g"}, collocations={("##number##", "june")}, sent_starters={"however"},
                    ortho_context={"he": 34, "the": 54})
    q = read_punkt_tab(write_punkt_tab(p, tmp_path / "english"))
    assert (q.abbrev_types, q.collocations, q.sent_starters, q.ortho_context) == (
        p.abbrev_types, p.collocations, p.sent_starters, p.ortho_context)
    s = PunktSplitter(q)
    assert s.split("Ask Dr. Who. He knows.") == ["Ask Dr. Who.", "He knows."]
    assert PunktSplitter().split("no sentence end here  ") == ["no sentence end here"]
