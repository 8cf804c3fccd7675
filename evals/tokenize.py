"""Tokenization exactly as KAgentBench's reference scorer sees text.

The reference (KwaiAgents ``benchmark/benchmark_eval.py``) does, for every string it compares::

    tokens = nltk.word_tokenize(text)             # nltk 3.8.1: Punkt sentences + NLTKWordTokenizer
    tokens = [c for t in tokens for c in (list(t) if any char of t has category 'Lo' else [t])]
    joined = " ".join(tokens)
    # rouge_chinese.Rouge then cuts `joined` into "sentences" at 。！？? …… and ......, normalises the
    # whitespace of each piece and splits it on " " — which can split a token that holds one of those
    # marks followed by another character (e.g. "ok！ok").

:func:`rouge_words` returns that final word list. The word tokenizer below follows the rules of
nltk 3.8.1's ``NLTKWordTokenizer`` (later nltk releases changed them: dashes, clitics, whitespace),
and sentence splitting uses :mod:`toolgym.evals.punkt`. Everything is cached per string.
"""

from __future__ import annotations

import re
import unicodedata

from toolgym.evals.punkt import get_splitter

__all__ = ["word_tokenize", "treebank_tokenize", "mixed_tokenize", "rouge_words", "clear_caches", "has_cjk"]

# --- NLTKWordTokenizer rules as of nltk 3.8.1 ------------------------------------------------------
_STARTING_QUOTES = [
    (re.compile("([«“‘„]|[`]+)", re.U), r" \1 "),
    (re.compile(r"^\""), r"``"),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
    (re.compile(r"(?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b", re.U), r"\1 \2"),
]
_ENDING_QUOTES = [
    (re.compile("([»”’])", re.U), r" \1 "),
    (re.compile(r"''"), " '' "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]
_PUNCTUATION = [
    (re.compile(r'([^\.])(\.)([\]\)}>"\'' "»”’ " r"]*)\s*$", re.U), r"\1 \2 \3 "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.{2,}", re.U), r" \g<0> "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[*]", re.U), r" \g<0> "),
]
_PARENS = (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ")
_DOUBLE_DASHES = (re.compile(r"--"), r" -- ")
_CONTRACTIONS2 = [
    re.compile(p)
    for p in (
        r"(?i)\b(can)(?#X)(not)\b",
        r"(?i)\b(d)(?#X)('ye)\b",
        r"(?i)\b(gim)(?#X)(me)\b",
        r"(?i)\b(gon)(?#X)(na)\b",
        r"(?i)\b(got)(?#X)(ta)\b",
        r"(?i)\b(lem)(?#X)(me)\b",
        r"(?i)\b(more)(?#X)('n)\b",
        r"(?i)\b(wan)(?#X)(na)(?=\s)",
    )
]
_CONTRACTIONS3 = [re.compile(r"(?i) ('t)(?#X)(is)\b"), re.compile(r"(?i) ('t)(?#X)(was)\b")]


def treebank_tokenize(text: str) -> list[str]:
    """One sentence through nltk 3.8.1's ``NLTKWordTokenizer.tokenize`` rules."""
    for rx, sub in _STARTING_QUOTES:
        text = rx.sub(sub, text)
    for rx, sub in _PUNCTUATION:
        text = rx.sub(sub, text)
    text = _PARENS[0].sub(_PARENS[1], text)
    text = _DOUBLE_DASHES[0].sub(_DOUBLE_DASHES[1], text)
    text = " " + text + " "
    for rx, sub in _ENDING_QUOTES:
        text = rx.sub(sub, text)
    for rx in _CONTRACTIONS2:
        text = rx.sub(r" \1 \2 ", text)
    for rx in _CONTRACTIONS3:
        text = rx.sub(r" \1 \2 ", text)
    return text.split()


def word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize(text)`` as nltk 3.8.1 with the English Punkt model computes it."""
    out: list[str] = []
    for sent in get_splitter().split(text):
        out.extend(treebank_tokenize(sent))
    return out


def _has_lo(tok: str) -> bool:
    if tok.isascii():
        return False
    cat = unicodedata.category
    return any(cat(ch) == "Lo" for ch in tok)


def mixed_tokenize(text: str) -> list[str]:
    """Word tokens with every token holding a 'Lo' character (CJK, kana, Hangul, ...) split into characters."""
    out: list[str] = []
    for tok in word_tokenize(text):
        if _has_lo(tok):
            out.extend(tok)
        else:
            out.append(tok)
    return out


# rouge_chinese.Rouge.cut_sent
_CUT = [
    (re.compile("([。！？\\?])([^”’])"), r"\1\n\2"),
    (re.compile("(\\.{6})([^”’])"), r"\1\n\2"),
    (re.compile("(\\…{2})([^”’])"), r"\1\n\2"),
    (re.compile("([。！？\\?][”’])([^，。！？\\?])"), r"\1\n\2"),
]
_CUT_CHARS = frozenset("。！？?…")

_cache: dict[str, tuple[str, ...]] = {}
_CACHE_MAX = 500_000


def _words_of_joined(joined: str) -> tuple[str, ...]:
    if not _CUT_CHARS.intersection(joined) and "......" not in joined:
        seg = joined.rstrip()
        return tuple(" ".join(seg.split()).split(" ")) if seg else ()
    for rx, sub in _CUT:
        joined = rx.sub(sub, joined)
    words: list[str] = []
    for seg in joined.rstrip().split("\n"):
        if len(seg) > 0:
            words.extend(" ".join(seg.split()).split(" "))
    return tuple(words)


def rouge_words(text: str) -> tuple[str, ...]:
    """The word sequence ROUGE-L is computed on (empty tuple when nothing remains)."""
    w = _cache.get(text)
    if w is None:
        w = _words_of_joined(" ".join(mixed_tokenize(text)))
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[text] = w
    return w


def clear_caches() -> None:
    _cache.clear()


_CJK_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def has_cjk(text: str) -> bool:
    return bool(_CJK_RE.search(text))
