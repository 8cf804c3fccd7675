"""Punkt sentence splitting compatible with nltk 3.8.1's English model, without nltk data at run time.

KAgentBench's reference scorer tokenizes with ``nltk.word_tokenize`` (nltk 3.8.1), which first splits
the text into sentences with the pre-trained English Punkt model and then runs the Treebank-style word
tokenizer on each sentence. Sentence splitting changes the tokens: the word tokenizer only detaches a
period at the *end* of a sentence, so ``"in Beijing. Then"`` yields ``Beijing .`` when Punkt breaks
there and ``Beijing.`` when it does not (abbreviations such as ``Mr.``, ``e.g.``, ``p.m.``, initials
and ordinal numbers). Matching the reference therefore needs Punkt's *decisions*, which depend on the
learned English parameters (abbreviation types, collocations, sentence starters, orthographic context).

This module is an independent implementation of Punkt's inference (Kiss & Strunk 2006) that follows the
decisions of nltk 3.8.1 step for step. Its parameters come from, in order:

1. ``$TOOLGYM_PUNKT_DIR`` (a folder in nltk's ``punkt_tab`` text format),
2. toolgym's cache, ``$XDG_CACHE_HOME/toolgym/punkt_tab/english`` (``~/.cache/...``),
3. nltk data already on the machine (``tokenizers/punkt_tab/english`` or ``tokenizers/punkt/english.pickle``).

:func:`fetch_english_params` fills the cache once at setup time (``python -m toolgym.evals.punkt fetch``):
it asks PyPI for the wheel ``llama-index-core==0.10.30`` (which ships nltk's classic Punkt pickles),
reads ``english.pickle`` with a restricted unpickler that can only build sets, ints, defaultdicts and
inert stand-ins for nltk's Punkt classes (nothing executable), and writes the parameters as plain text.
Nothing of nltk_data is vendored in this repository.

Without parameters the splitter still runs with empty parameters (no known abbreviations) and
:func:`params_status` reports ``"approx"``; reports carry that flag so an inexact run is visible.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import string
import subprocess
import sys
import tempfile
import threading
import warnings
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "PunktParams",
    "PunktSplitter",
    "cache_dir",
    "fetch_english_params",
    "get_splitter",
    "load_params",
    "params_status",
    "read_punkt_pickle",
    "write_punkt_tab",
]

LLAMA_INDEX_WHEEL = "llama-index-core==0.10.30"
_WHEEL_MEMBER = "llama_index/core/_static/nltk_cache/tokenizers/punkt/PY3/english.pickle"

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


# ---------------------------------------------------------------------------------------------
# Parameters: punkt_tab text format, cache, and the one-time fetch from a PyPI wheel.
# ---------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "toolgym" / "punkt_tab" / "english"


def read_punkt_tab(folder: str | os.PathLike) -> PunktParams:
    folder = Path(folder)

    def lines(name: str) -> list[str]:
        p = folder / name
        if not p.exists():
            return []
        return [ln for ln in p.read_text(encoding="utf-8").split("\n") if ln]

    params = PunktParams(source=str(folder))
    params.abbrev_types = set(lines("abbrev_types.txt"))
    params.sent_starters = set(lines("sentence_starters.txt"))
    for ln in lines("collocations.tab"):
        a, _, b = ln.partition("\t")
        params.collocations.add((a, b))
    for ln in lines("ortho_context.tab"):
        typ, _, val = ln.rpartition("\t")
        params.ortho_context[typ] = int(val)
    return params


def write_punkt_tab(params: PunktParams, folder: str | os.PathLike) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "abbrev_types.txt").write_text("\n".join(sorted(params.abbrev_types)) + "\n", encoding="utf-8")
    (folder / "sentence_starters.txt").write_text("\n".join(sorted(params.sent_starters)) + "\n", encoding="utf-8")
    (folder / "collocations.tab").write_text(
        "".join(f"{a}\t{b}\n" for a, b in sorted(params.collocations)), encoding="utf-8"
    )
    (folder / "ortho_context.tab").write_text(
        "".join(f"{k}\t{v}\n" for k, v in sorted(params.ortho_context.items())), encoding="utf-8"
    )
    return folder


class _Inert:
    """Stand-in for nltk's Punkt classes while unpickling: stores state, runs nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:
            d, slots = state
            if isinstance(d, dict):
                self.__dict__.update(d)
            if isinstance(slots, dict):
                self.__dict__.update(slots)
        elif isinstance(state, dict):
            self.__dict__.update(state)


class _PunktUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "int"): int,
        ("collections", "defaultdict"): defaultdict,
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "nltk.tokenize.punkt" and name.startswith("Punkt"):
            return type(name, (_Inert,), {})
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a Punkt pickle")


def read_punkt_pickle(data: bytes) -> PunktParams:
    """Parameters from nltk's classic ``english.pickle`` bytes, loaded without running foreign code."""
    obj = _PunktUnpickler(io.BytesIO(data)).load()
    p = getattr(obj, "_params", obj)
    params = PunktParams(source="pickle")
    params.abbrev_types = {str(x) for x in getattr(p, "abbrev_types", ())}
    params.collocations = {(str(a), str(b)) for a, b in getattr(p, "collocations", ())}
    params.sent_starters = {str(x) for x in getattr(p, "sent_starters", ())}
    params.ortho_context = {str(k): int(v) for k, v in dict(getattr(p, "ortho_context", {})).items()}
    if not params.abbrev_types:
        raise ValueError("the pickle holds no Punkt parameters")
    return params


def fetch_english_params(dest: str | os.PathLike | None = None, *, wheel: str | None = None,
                         quiet: bool = True) -> Path:
    """Fill toolgym's cache with the English Punkt parameters (one-time setup; needs PyPI or ``wheel``).

    ``wheel`` may name an already downloaded ``llama_index_core-0.10.30-*.whl``.
    """
    dest = Path(dest) if dest else cache_dir()
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "-d", tmp, LLAMA_INDEX_WHEEL]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if res.returncode != 0:
                raise RuntimeError(f"pip download {LLAMA_INDEX_WHEEL} failed:\n{res.stderr[-2000:]}")
            wheels = sorted(Path(tmp).glob("llama_index_core-*.whl"))
            if not wheels:
                raise RuntimeError("pip download produced no llama_index_core wheel")
            wheel = str(wheels[0])
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(_WHEEL_MEMBER)
    params = read_punkt_pickle(data)
    write_punkt_tab(params, dest)
    if not quiet:
        print(f"wrote English Punkt parameters ({len(params.abbrev_types)} abbreviations) to {dest}")
    _reset()
    return dest


def _nltk_data_dirs() -> list[Path]:
    dirs: list[str] = []
    env = os.environ.get("NLTK_DATA")
    if env:
        dirs.extend(env.split(os.pathsep))
    dirs += [os.path.join(os.path.expanduser("~"), "nltk_data"), os.path.join(sys.prefix, "nltk_data"),
             os.path.join(sys.prefix, "share", "nltk_data"), os.path.join(sys.prefix, "lib", "nltk_data"),
             "/usr/share/nltk_data", "/usr/local/share/nltk_data", "/usr/lib/nltk_data",
             "/usr/local/lib/nltk_data"]
    return [Path(d) for d in dirs]


def load_params() -> PunktParams:
    """English Punkt parameters from the first place that has them (see module doc), else empty."""
    candidates: list[Path] = []
    env = os.environ.get("TOOLGYM_PUNKT_DIR")
    if env:
        candidates.append(Path(env))
    candidates.append(cache_dir())
    for d in candidates:
        if (d / "abbrev_types.txt").exists():
            p = read_punkt_tab(d)
            if p.abbrev_types:
                return p
    for d in _nltk_data_dirs():
        tab = d / "tokenizers" / "punkt_tab" / "english"
        if (tab / "abbrev_types.txt").exists():
            return read_punkt_tab(tab)
        for pk in (d / "tokenizers" / "punkt" / "PY3" / "english.pickle", d / "tokenizers" / "punkt" / "english.pickle"):
            if pk.exists():
                try:
                    p = read_punkt_pickle(pk.read_bytes())
                    p.source = str(pk)
                    return p
                except Exception:  # pragma: no cover - a damaged file: keep looking
                    continue
    return PunktParams(source="empty")


_lock = threading.Lock()
_splitter: PunktSplitter | None = None
_warned = False


def _reset() -> None:
    global _splitter
    with _lock:
        _splitter = None


def get_splitter() -> PunktSplitter:
    global _splitter, _warned
    s = _splitter
    if s is None:
        with _lock:
            if _splitter is None:
                params = load_params()
                if not params.exact and not _warned:
                    _warned = True
                    warnings.warn(
                        "English Punkt parameters not found: KAgentBench tokenization is approximate for "
                        "multi-sentence English text. Run `python -m toolgym.evals.punkt fetch` once.",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                _splitter = PunktSplitter(params)
            s = _splitter
    return s


def params_status() -> str:
    """``"exact"`` when the English Punkt parameters are loaded, else ``"approx"``."""
    return "exact" if get_splitter().params.exact else "approx"


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m toolgym.evals.punkt",
                                 description="English Punkt parameters for KAgentBench-compatible tokenization")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download llama-index-core==0.10.30 from PyPI once and cache the parameters")
    f.add_argument("--dest", default=None)
    f.add_argument("--wheel", default=None, help="use an already downloaded llama_index_core wheel")
    f.add_argument("--if-missing", action="store_true", help="do nothing when the cache already has them")
    sub.add_parser("status", help="print where the parameters come from")
    args = ap.parse_args(argv)
    if args.cmd == "status":
        p = load_params()
        print(f"{'exact' if p.exact else 'approx'}\t{p.source}\t{len(p.abbrev_types)} abbreviations")
        return 0
    dest = Path(args.dest) if args.dest else cache_dir()
    if args.if_missing and (dest / "abbrev_types.txt").exists():
        print(f"already present: {dest}")
        return 0
    fetch_english_params(dest, wheel=args.wheel, quiet=False)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
