"""Final-answer checks (``task_completion`` of ``final_answer`` tasks; issue 11 item 5).

An answer is one claim. Listing candidates in the hope that one hits is a hedge and fails, while
honest working that mentions many numbers on the way passes when its final answer is right.

- ``exact``: the whole answer equals an expected string (whitespace collapsed, case folded).
- ``contains``: an expected string occurs in the answer, *and* the sentence holding it does not offer
  alternatives: no ``or`` / ``either`` / ``nor`` / ``maybe``-style disjunction and no list of three or
  more short items (``"London, Paris or Rome"`` fails; ``"It is Paris, France."`` passes).
- ``regex``: ``re.search`` of an expected pattern (the task author owns the pattern).
- ``numeric``: the answer's number is the first number after the last answer marker (``answer``,
  ``result``, optionally followed by ``is`` / ``:`` / ``=``), or else the answer's **last** number
  that the question does not mention (``"There are 1229 primes below 10000."`` claims 1229).
  It must be within ``tolerance`` of an expected value, compared **exactly** in decimal (``2**64`` is
  ``18446744073709551616``; ``18446744073709551000`` is not within 1e-6 of it, as float comparison
  would claim). The number fails when it is one of a list of candidates: the text between it and
  the number just before or after it is only separators (``,``, ``;``, spaces, ``and``, ``or`` ...) or
  holds a disjunction (``"1, 2, 3, 4 or 338350"``, ``"5 or maybe 6"``). Thousands separators
  (``338,350``) are read as part of the number.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from toolgym.env.types import AnswerCheck

_NUM = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_MARKER = re.compile(r"\b(?:final\s+answer|answer|result)\b\s*(?:is\b|:|=|equals\b)?\s*", re.IGNORECASE)
_DISJUNCTION = re.compile(r"\b(?:or|either|nor|maybe|possibly|perhaps|alternatively)\b", re.IGNORECASE)
_ONLY_SEPARATORS = re.compile(r"^(?:[\s,;|]|\band\b|\bor\b|\bnor\b|\beither\b|\bmaybe\b|\bpossibly\b|\bperhaps\b)*$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<!\d)[.!?](?!\d)|\n")
_LIST_SEP = re.compile(r"[,;]|\band\b|\bor\b", re.IGNORECASE)
#: An item of a candidate list is short: at most this many words.
_SHORT_ITEM_WORDS = 4


def check_answer(check: AnswerCheck, answer: str | None, question: str | None = None) -> bool:
    """A final-answer task's own check (module docstring). ``question`` is the user's text:
    numbers it mentions are context a numeric answer may restate, not the answer's claim."""
    if answer is None:
        return False
    got = " ".join(answer.split()).casefold()
    for exp in check.expected:
        want = " ".join(str(exp).split()).casefold()
        if check.mode == "exact" and got == want:
            return True
        if check.mode == "contains" and want and want in got and not _hedged_contains(got, want):
            return True
        if check.mode == "regex" and re.search(str(exp), answer) is not None:
            return True
        if check.mode == "numeric" and _numeric_ok(answer, str(exp), check.tolerance, question):
            return True
    return False


def _decimal(token: str) -> Decimal | None:
    try:
        d = Decimal(token.replace(",", ""))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def answer_number(text: str, question: str | None = None) -> tuple[str | None, bool]:
    """(the answer's number as written, whether it is one of several candidates)."""
    matches = list(_NUM.finditer(text))
    if not matches:
        return None, False
    context = {_decimal(m.group(0)) for m in _NUM.finditer(question)} if question else set()
    idx = next((k for k in range(len(matches) - 1, -1, -1) if _decimal(matches[k].group(0)) not in context),
               len(matches) - 1)
    marker = None
    for marker in _MARKER.finditer(text):
        pass
    if marker is not None:
        after = next((k for k, m in enumerate(matches) if m.start() >= marker.end()), None)
        if after is not None and matches[after].start() - marker.end() <= 30:
            idx = after
    hedged = False
    for k in (idx - 1, idx):
        if 0 <= k < len(matches) - 1:
            gap = text[matches[k].end(): matches[k + 1].start()]
            if _ONLY_SEPARATORS.match(gap) or _DISJUNCTION.search(gap):
                hedged = True
    return matches[idx].group(0), hedged


def _numeric_ok(answer: str, expected: str, tolerance: float, question: str | None) -> bool:
    want = _decimal(expected.strip())
    if want is None:
        return False
    token, hedged = answer_number(answer, question)
    if token is None or hedged:
        return False
    got = _decimal(token)
    if got is None:
        return False
    return abs(got - want) <= Decimal(repr(float(tolerance)))


def _hedged_contains(got: str, want: str) -> bool:
    """Whether every occurrence of ``want`` sits in a sentence that offers alternatives."""
    start = 0
    while True:
        at = got.find(want, start)
        if at < 0:
            return True
        s0 = max((m.end() for m in _SENTENCE_END.finditer(got, 0, at)), default=0)
        end = _SENTENCE_END.search(got, at + len(want))
        sentence = got[s0: end.start() if end else len(got)]
        if not _offers_alternatives(sentence, want):
            return False
        start = at + 1


def _offers_alternatives(sentence: str, want: str) -> bool:
    rest = sentence.replace(want, " ", 1)
    if _DISJUNCTION.search(rest) and rest.strip(" ,;.:!?"):
        return True
    items = [i.strip() for i in _LIST_SEP.split(sentence)]
    items = [i for i in items if i]
    short = [i for i in items if len(i.split()) <= _SHORT_ITEM_WORDS]
    return len(items) >= 3 and len(short) >= 3
