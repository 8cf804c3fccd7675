"""LCS and ROUGE-L F with KAgentBench's formula."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolgym.evals.rouge import kagent_rouge, lcs_length, rouge_l_f


def _dp_lcs(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("abcdeé北京"), max_size=40), st.lists(st.sampled_from("abcdeé北京"), max_size=40))
def test_bit_parallel_lcs_equals_dp(a, b):
    assert lcs_length(tuple(a), tuple(b)) == _dp_lcs(a, b)


def test_long_sequences():
    rng = random.Random(1)
    a = tuple(rng.choice("abcdefgh") for _ in range(700))
    b = tuple(rng.choice("abcdefgh") for _ in range(300))
    assert lcs_length(a, b) == _dp_lcs(a, b)


def test_formula_and_edges():
    E = 2 / (2 + 1e-8)
    assert rouge_l_f(("a", "b"), ("a", "b")) == E  # exact match is just below 1
    assert rouge_l_f((), ("a",)) == 0.0
    assert rouge_l_f(("x",), ("a",)) == 0.0
    # P = 1, R = 0.5
    assert rouge_l_f(("a",), ("a", "b")) == 2.0 * ((1.0 * 0.5) / (1.0 + 0.5 + 1e-8))
    assert kagent_rouge("", "x") == 0 and kagent_rouge("x", "") == 0
    assert kagent_rouge("   ", "x") == 0  # the reference would raise here
    # values are compared through str(): 3 and "3" match, 3 and 3.0 do not
    assert kagent_rouge(3, "3") == E
    assert kagent_rouge(3, 3.0) == 0.0
    assert kagent_rouge(True, "True") == E


def test_bleu_uses_chinese_tokenizer():
    from toolgym.evals.rouge import bleu

    assert bleu("北京今天晴天", ["北京今天晴天"]) == pytest.approx(100.0)
    assert bleu("It is sunny in Beijing today", ["It is sunny in Beijing today"]) == pytest.approx(100.0)
    assert bleu("", ["x"]) == 0.0
