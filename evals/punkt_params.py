"""Where the English Punkt parameters come from, and the process-wide splitter built from them.

- nltk's ``punkt_tab`` text format (:func:`read_punkt_tab`, :func:`write_punkt_tab`) and toolgym's cache
  folder (:func:`cache_dir`);
- :func:`read_punkt_pickle`: nltk's classic ``english.pickle`` read with a restricted unpickler that can
  only build sets, ints, defaultdicts and inert stand-ins for nltk's Punkt classes (nothing executable);
- :func:`fetch_english_params`: the one-time setup that takes that pickle from the PyPI wheel
  ``llama-index-core==0.10.30`` and caches it as text;
- :func:`load_params`: the lookup order (``$TOOLGYM_PUNKT_DIR``, the cache, nltk data on the machine);
- :func:`get_splitter` / :func:`params_status`: one :class:`PunktSplitter` per process, built on first use.

The algorithm is :mod:`toolgym.evals.punkt_splitter`; :mod:`toolgym.evals.punkt` (the documented entry
point and ``python -m toolgym.evals.punkt`` CLI) re-exports everything here.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import warnings
import zipfile
from collections import defaultdict
from pathlib import Path

from toolgym.evals.punkt_splitter import PunktParams, PunktSplitter

__all__ = [
    "LLAMA_INDEX_WHEEL",
    "cache_dir",
    "fetch_english_params",
    "get_splitter",
    "load_params",
    "params_status",
    "read_punkt_pickle",
    "read_punkt_tab",
    "write_punkt_tab",
]

LLAMA_INDEX_WHEEL = "llama-index-core==0.10.30"
_WHEEL_MEMBER = "llama_index/core/_static/nltk_cache/tokenizers/punkt/PY3/english.pickle"


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


# ---------------------------------------------------------------------------------------------
# The process-wide splitter: parameters are looked up once, on first use.
# ---------------------------------------------------------------------------------------------
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
