"""The Punkt sentence-splitting algorithm (Kiss & Strunk 2006) as nltk 3.8.1 runs it, parameters given.

:class:`PunktSplitter` reproduces nltk 3.8.1 ``PunktSentenceTokenizer.tokenize`` decision for decision:
the word regex, the first pass (sentence ends, ellipses, known abbreviations), the second pass
(collocations, orthographic heuristic, sentence starters, initials and numbers), nltk 3.8.1's ReDoS-safe
candidate contexts and the realignment of closing quotes/brackets. It only reads a :class:`PunktParams`;
where the English parameters come from (cache, nltk data, the one-time fetch) and the process-wide
splitter are in :mod:`toolgym.evals.punkt_params`. :mod:`toolgym.evals.punkt` re-exports both.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

__all__ = ["PunktParams", "PunktSplitter"]

# Orthographic context flags (Kiss & Strunk; same bit values as nltk so punkt_tab files are compatible).
_BEG_UC, _MID_UC, _UNK_UC = 1 << 1, 1 << 2, 1 << 3
_BEG_LC, _MID_LC, _UNK_LC = 1 << 4, 1 << 5, 1 << 6
_ORTHO_UC = _BEG_UC | _MID_UC | _UNK_UC
_ORTHO_LC = _BEG_LC | _MID_LC | _UNK_LC


@dataclass
class PunktParams:
    abbrev_types: set[str] = field(default_factory=set)
    collocations: set[tuple[str, str]] = field(default_factory=set)
    sent_starters: set[str] = field(default_factory=set)
    ortho_context: dict[str, int] = field(default_factory=dict)
    source: str = "empty"

    @property
    def exact(self) -> bool:
        return bool(self.abbrev_types)


# ---------------------------------------------------------------------------------------------
# Regular expressions of Punkt's English language variables (sentence-end chars . ? !).
# ---------------------------------------------------------------------------------------------
_NON_WORD = r"(?:[)\";}\]\*:@\'\({\[?!])"
_MULTI_CHAR = r"(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)"
_WORD_START = r"[^\(\"\`{\[:;&\#\*@\)}\]\-,]"
_WORD_RE = re.compile(
    r"""(
        %(MultiChar)s
        |
        (?=%(WordStart)s)\S+?
        (?=
            \s|
            $|
            %(NonWord)s|%(MultiChar)s|
            ,(?=$|\s|%(NonWord)s|%(MultiChar)s)
        )
        |
        \S
    )"""
    % {"NonWord": _NON_WORD, "MultiChar": _MULTI_CHAR, "WordStart": _WORD_START},
    re.UNICODE | re.VERBOSE,
)
_PERIOD_CONTEXT_RE = re.compile(
    r"""
    [\.\?!]
    (?=(?P<after_tok>
        %(NonWord)s
        |
        \s+(?P<next_tok>\S+)
    ))"""
    % {"NonWord": _NON_WORD},
    re.UNICODE | re.VERBOSE,
)
_REALIGN_RE = re.compile(r'["\')\]}]+?(?:\s+|(?=--)|$)', re.MULTILINE)
_NUMERIC_RE = re.compile(r"^-?[\.,]?\d[\d,\.-]*\.?$")
_ELLIPSIS_RE = re.compile(r"\.\.+$")
_INITIAL_RE = re.compile(r"[^\W\d]\.$", re.UNICODE)
_SENT_END = (".", "?", "!")
_PUNCT = tuple(";:,.!?")
_WHITESPACE = frozenset(string.whitespace)


class _Tok:
    """One Punkt token with its annotations (only what inference needs)."""

    __slots__ = ("tok", "type", "period_final", "sentbreak", "abbr", "ellipsis")

    def __init__(self, tok: str):
        self.tok = tok
        self.type = _NUMERIC_RE.sub("##number##", tok.lower())
        self.period_final = tok.endswith(".")
        self.sentbreak = False
        self.abbr = False
        self.ellipsis = False

    @property
    def type_no_period(self) -> str:
        t = self.type
        return t[:-1] if len(t) > 1 and t[-1] == "." else t

    @property
    def type_no_sentperiod(self) -> str:
        return self.type_no_period if self.sentbreak else self.type


class PunktSplitter:
    """Sentence splitter reproducing nltk 3.8.1 ``PunktSentenceTokenizer.tokenize`` decisions."""

    def __init__(self, params: PunktParams | None = None):
        self.params = params or PunktParams()
        self._ortho = self.params.ortho_context

    # -- tokens ---------------------------------------------------------------------------------
    def _tokens(self, text: str) -> list[_Tok]:
        out: list[_Tok] = []
        for line in text.split("\n"):
            if line.strip():
                out.extend(_Tok(t) for t in _WORD_RE.findall(line))
        return out

    def _first_pass(self, t: _Tok) -> None:
        tok = t.tok
        if tok in _SENT_END:
            t.sentbreak = True
        elif _ELLIPSIS_RE.match(tok):
            t.ellipsis = True
        elif t.period_final and not tok.endswith(".."):
            low = tok[:-1].lower()
            abbrevs = self.params.abbrev_types
            if low in abbrevs or low.split("-")[-1] in abbrevs:
                t.abbr = True
            else:
                t.sentbreak = True

    def _ortho_heuristic(self, t: _Tok):
        if t.tok in _PUNCT:
            return False
        ctx = self._ortho.get(t.type_no_sentperiod, 0)
        first = t.tok[0]
        if first.isupper() and (ctx & _ORTHO_LC) and not (ctx & _MID_UC):
            return True
        if first.islower() and ((ctx & _ORTHO_UC) or not (ctx & _BEG_LC)):
            return False
        return "unknown"

    def _second_pass(self, t1: _Tok, t2: _Tok | None) -> None:
        if t2 is None or not t1.period_final:
            return
        typ = t1.type_no_period
        next_typ = t2.type_no_sentperiod
        is_initial = bool(_INITIAL_RE.match(t1.tok))
        if (typ, next_typ) in self.params.collocations:
            t1.sentbreak = False
            t1.abbr = True
            return
        if (t1.abbr or t1.ellipsis) and not is_initial:
            starter = self._ortho_heuristic(t2)
            if starter is True:
                t1.sentbreak = True
                return
            if t2.tok[0].isupper() and next_typ in self.params.sent_starters:
                t1.sentbreak = True
                return
        if is_initial or typ == "##number##":
            starter = self._ortho_heuristic(t2)
            if starter is False:
                t1.sentbreak = False
                t1.abbr = True
                return
            if (
                starter == "unknown"
                and is_initial
                and t2.tok[0].isupper()
                and not (self._ortho.get(next_typ, 0) & _ORTHO_LC)
            ):
                t1.sentbreak = False
                t1.abbr = True

    def _contains_sentbreak(self, text: str) -> bool:
        toks = self._tokens(text)
        for t in toks:
            self._first_pass(t)
        found = False
        n = len(toks)
        for i, t in enumerate(toks):
            if found:
                return True
            self._second_pass(t, toks[i + 1] if i + 1 < n else None)
            if t.sentbreak:
                found = True
        return False

    # -- candidate contexts (nltk 3.8.1's ReDoS-safe matching) ------------------------------------
    @staticmethod
    def _last_ws(text: str) -> int:
        for i in range(len(text) - 1, -1, -1):
            if text[i] in _WHITESPACE:
                return i
        return 0

    def _end_contexts(self, text: str):
        prev_start, prev_stop = 0, 0
        prev_match = None
        for m in _PERIOD_CONTEXT_RE.finditer(text):
            before = text[prev_stop : m.start()]
            idx = self._last_ws(before)
            if idx:
                idx += prev_stop + 1
            else:
                idx = prev_start
            if prev_match is not None and prev_stop <= idx:
                yield prev_match, text[prev_start:prev_stop] + prev_match.group() + prev_match.group("after_tok")
            prev_match = m
            prev_start, prev_stop = idx, m.start()
        if prev_match is not None:
            yield prev_match, text[prev_start:prev_stop] + prev_match.group() + prev_match.group("after_tok")

    def _slices(self, text: str):
        last = 0
        for m, ctx in self._end_contexts(text):
            if self._contains_sentbreak(ctx):
                yield last, m.end()
                last = m.start("next_tok") if m.group("next_tok") else m.end()
        yield last, len(text.rstrip())

    def spans(self, text: str) -> list[tuple[int, int]]:
        slices = list(self._slices(text))
        out: list[tuple[int, int]] = []
        realign = 0
        for i, (s1, e1) in enumerate(slices):
            s1 = s1 + realign
            if i + 1 == len(slices):
                if text[s1:e1]:
                    out.append((s1, e1))
                continue
            s2, e2 = slices[i + 1]
            m = _REALIGN_RE.match(text[s2:e2])
            if m:
                out.append((s1, s2 + len(m.group(0).rstrip())))
                realign = m.end()
            else:
                realign = 0
                if text[s1:e1]:
                    out.append((s1, e1))
        return out

    def split(self, text: str) -> list[str]:
        """Sentences of ``text`` (same strings as nltk 3.8.1 ``sent_tokenize``)."""
        if "." not in text and "?" not in text and "!" not in text:
            t = text.rstrip()
            return [t] if t else []
        return [text[s:e] for s, e in self.spans(text)]
