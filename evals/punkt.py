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

Layout: the algorithm is :mod:`toolgym.evals.punkt_splitter`; the parameter sources, the fetch and the
process-wide splitter are :mod:`toolgym.evals.punkt_params`. This module re-exports both (importers and the
docs name ``toolgym.evals.punkt``) and holds the ``python -m toolgym.evals.punkt fetch|status`` CLI.
"""

from __future__ import annotations

from pathlib import Path

# Re-exported so ``toolgym.evals.punkt.NAME`` stays the same object as before the split (tokenize.py, the
# tests' conftest ``_reset`` and ``read_punkt_tab`` among the users); the state they touch lives in punkt_params.
from toolgym.evals.punkt_params import (  # noqa: F401
    LLAMA_INDEX_WHEEL,
    _reset,
    cache_dir,
    fetch_english_params,
    get_splitter,
    load_params,
    params_status,
    read_punkt_pickle,
    read_punkt_tab,
    write_punkt_tab,
)
from toolgym.evals.punkt_splitter import PunktParams, PunktSplitter

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
