"""ROUGE-L F as KAgentBench computes it, and BLEU beside it.

KAgentBench's ``rouge_score(label, predict)``: both values go through ``str()``; an empty string on either
side scores 0; otherwise both are tokenized (:func:`toolgym.evals.tokenize.rouge_words`) and
``rouge_chinese``'s summary-level ROUGE-L is taken, which for its word lists is the plain LCS:
``P = LCS/len(pred)``, ``R = LCS/len(ref)``, ``F = 2PR/(P+R+1e-8)`` — so identical texts score
0.99999999, not 1. Where the reference would raise (a string that tokenizes to nothing, e.g. only
whitespace) this module returns 0.

LCS is computed bit-parallel (Hyyrö 2004) on Python integers: one pass over the shorter sequence with a
match-mask table of the longer one, cached per string.
"""

from __future__ import annotations

from toolgym.evals.tokenize import has_cjk, rouge_words

__all__ = ["lcs_length", "rouge_l_f", "kagent_rouge", "bleu", "clear_caches"]

_masks: dict[tuple[str, ...], dict[str, int]] = {}
_pairs: dict[tuple[str, str], float] = {}
_MAX = 200_000


def _mask_table(seq: tuple[str, ...]) -> dict[str, int]:
    t = _masks.get(seq)
    if t is None:
        t = {}
        bit = 1
        for tok in seq:
            t[tok] = t.get(tok, 0) | bit
            bit <<= 1
        if len(_masks) >= _MAX:
            _masks.clear()
        _masks[seq] = t
    return t


def lcs_length(a: tuple[str, ...] | list[str], b: tuple[str, ...] | list[str]) -> int:
    """Length of the longest common subsequence of two token sequences."""
    if not a or not b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    a = tuple(a)
    masks = _mask_table(a)
    full = (1 << len(a)) - 1
    v = full
    get = masks.get
    for tok in b:
        m = get(tok)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l_f(pred_words, ref_words) -> float:
    """ROUGE-L F of two word sequences with rouge_chinese's formula (0.0 when either is empty)."""
    n, m = len(pred_words), len(ref_words)
    if n == 0 or m == 0:
        return 0.0
    llcs = lcs_length(pred_words, ref_words)
    if llcs == 0:
        return 0.0
    p = llcs / n
    r = llcs / m
    return 2.0 * ((p * r) / (p + r + 1e-8))


def kagent_rouge(label, predict) -> float:
    """KAgentBench's ``rouge_score(label, predict)`` (argument values are compared through ``str()``)."""
    label, predict = str(label), str(predict)
    if label == "" or predict == "":
        return 0
    key = (label, predict)
    v = _pairs.get(key)
    if v is None:
        v = rouge_l_f(rouge_words(predict), rouge_words(label))
        if len(_pairs) >= _MAX:
            _pairs.clear()
        _pairs[key] = v
    return v


def bleu(hypothesis: str, references: list[str]) -> float | None:
    """Sentence BLEU (sacrebleu, 0-100) with the Chinese tokenizer when any side holds CJK text."""
    refs = [str(r) for r in references if str(r)]
    hyp = str(hypothesis)
    if not refs or not hyp:
        return 0.0
    try:
        import sacrebleu
    except ImportError:  # pragma: no cover - sacrebleu is a dependency
        return None
    tok = "zh" if has_cjk(hyp) or any(has_cjk(r) for r in refs) else "13a"
    scorer = _bleu_scorers.get(tok)
    if scorer is None:  # same settings as sacrebleu.sentence_bleu (exp smoothing, effective order)
        scorer = _bleu_scorers[tok] = sacrebleu.BLEU(tokenize=tok, effective_order=True)
    return float(scorer.sentence_score(hyp, refs).score)


_bleu_scorers: dict = {}


def clear_caches() -> None:
    _masks.clear()
    _pairs.clear()
