"""Suites: named, ordered, id-indexed collections of tasks, and :func:`load_suite`.

Names understood by :func:`load_suite`:

- ``"bfcl"`` (default): every single-turn Python BFCL category plus the four multi-turn ones
  (:data:`~toolgym.env.tasks.bfcl.DEFAULT_CATEGORIES`, 4,291 tasks); ``categories=`` may pick
  any supported category, ``simple_java`` / ``simple_javascript`` included;
- ``"bfcl-single"``: the single-turn Python categories; ``"bfcl-multi"``: the multi-turn ones
  (``categories=`` must then be a subset);
- a path to a JSONL file in toolgym or BFCL format (:mod:`toolgym.env.tasks.jsonl`);
  ``categories=`` filters it.

Caching (:mod:`toolgym.env.tasks.cache`): each BFCL category is parsed once and pickled under ``$TOOLGYM_CACHE_DIR`` (default
``$XDG_CACHE_HOME/toolgym`` or ``~/.cache/toolgym``), keyed by the ``bfcl_eval`` version, the
sizes and mtimes of the category's data files, :data:`CACHE_SCHEMA_VERSION` and the field layout
of the task types. A corrupt, stale or unreadable cache file is ignored and rebuilt; an
unwritable cache directory only costs speed. Writes go to a temporary file renamed into place,
so concurrent processes never see a partial file. Within a process, suites and categories are
memoised, so a second :func:`load_suite` with the same arguments returns the same object.
"""

from __future__ import annotations

import difflib
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from toolgym.env.tasks import bfcl as _bfcl
from toolgym.env.tasks.cache import CACHE_SCHEMA_VERSION, NoGC, cache_dir, cache_key, cache_path, read_cache, write_cache
from toolgym.env.tasks.jsonl import load_jsonl
from toolgym.env.types import Task

__all__ = [
    "CACHE_SCHEMA_VERSION",
    "SUITE_NAMES",
    "Suite",
    "cache_dir",
    "clear_memo",
    "load_bfcl_category",
    "load_suite",
]

log = logging.getLogger(__name__)

BUILTIN_CATEGORIES: dict[str, str] = {
    # toolgym's own tasks shipped in the package (env/data): final-answer tasks on the sandboxed
    # `python` code tool, so the default server also exercises model-written code.
    "toolgym_python": "python_tasks.jsonl",
}

def _stem(task_id: str) -> str:
    """``simple_python_12`` / ``live_multiple_9-4-1`` → the family part of an id (its category, for BFCL)."""
    return task_id.rstrip("0123456789_-") or task_id


SUITE_NAMES: dict[str, tuple[str, ...]] = {
    "default": _bfcl.DEFAULT_CATEGORIES + tuple(BUILTIN_CATEGORIES),
    "bfcl": _bfcl.DEFAULT_CATEGORIES,
    "bfcl-single": _bfcl.SINGLE_TURN_CATEGORIES,
    "bfcl-multi": _bfcl.MULTI_TURN_CATEGORIES,
}


class Suite:
    """An ordered collection of tasks with unique ids.

    ``tasks`` is a tuple in load order; ``by_id`` a read-only id → task mapping. Iterating yields
    tasks; ``len()`` counts them; ``suite[id]`` / :meth:`get` look one up.
    """

    __slots__ = ("_by_id", "_by_stem", "_misses", "name", "tasks")

    def __init__(self, name: str, tasks: Iterable[Task]):
        self.name = name
        self.tasks: tuple[Task, ...] = tuple(tasks)
        by_id: dict[str, Task] = {}
        dups: list[str] = []
        for t in self.tasks:
            if t.id in by_id:
                dups.append(t.id)
            by_id[t.id] = t
        if dups:
            raise ValueError(f"suite {name!r}: duplicate task ids {', '.join(repr(x) for x in dups[:5])}")
        self._by_id = by_id
        self._by_stem: dict[str, list[str]] | None = None  # built on the first miss (see _suggest)
        self._misses: dict[str, list[str]] = {}  # recent misses → suggestions (a repeated miss costs a lookup)

    @property
    def by_id(self) -> Mapping[str, Task]:
        return MappingProxyType(self._by_id)

    def get(self, task_id: str) -> Task:
        """The task with this id; ``KeyError`` naming the closest ids when there is none."""
        try:
            return self._by_id[task_id]
        except (KeyError, TypeError):
            pass
        close = self._suggest(str(task_id))
        hint = f"; closest: {', '.join(close)}" if close else ""
        shown = str(task_id)
        shown = repr(shown) if len(shown) <= 200 else f"{shown[:200]!r}... ({len(shown)} chars)"
        raise KeyError(f"no task {shown} in suite {self.name!r} ({len(self.tasks)} tasks){hint}") from None

    def _suggest(self, task_id: str) -> list[str]:
        """Up to three ids close to ``task_id``, in bounded time.

        A miss is often a client's bug repeated at full rate (or a hostile one), so difflib must not
        scan every id of a 4k-task suite each time: ids are ``<stem>_<n>``, so look among the ids of
        the same stem (or of the closest stem: a mistyped category) only, and remember recent misses."""
        if not self._by_id or len(task_id) > 256:  # no real id is that long; don't spend time on it
            return []
        hit = self._misses.get(task_id)
        if hit is not None:
            return hit
        if len(self._misses) >= 1024:
            self._misses.clear()
        self._misses[task_id] = found = self._closest(task_id)
        return found

    def _closest(self, task_id: str) -> list[str]:
        if self._by_stem is None:
            by_stem: dict[str, list[str]] = {}
            for tid in self._by_id:
                by_stem.setdefault(_stem(tid), []).append(tid)
            self._by_stem = by_stem
        stem = _stem(task_id)
        if stem not in self._by_stem:
            near = difflib.get_close_matches(stem, self._by_stem.keys(), n=1, cutoff=0.6)
            if not near:
                return []
            stem = near[0]
        return difflib.get_close_matches(task_id, self._by_stem[stem], n=3, cutoff=0.5)

    def __getitem__(self, task_id: str) -> Task:
        return self.get(task_id)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._by_id

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __repr__(self) -> str:
        return f"Suite({self.name!r}, {len(self.tasks)} tasks, categories={list(self.categories())})"

    def categories(self) -> tuple[str, ...]:
        """Distinct categories in first-appearance order."""
        return tuple(dict.fromkeys(t.category for t in self.tasks))

    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.kind for t in self.tasks))

    def filter(
        self,
        categories: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        ids: Iterable[str] | None = None,
    ) -> Suite:
        """A new suite with the tasks matching every given criterion (order kept).

        An unknown category or kind raises ``ValueError`` and an unknown id ``KeyError``: a typo
        should not silently select nothing.
        """
        tasks: Iterable[Task] = self.tasks
        if categories is not None:
            cats = _as_set(categories, "categories")
            unknown = cats - set(self.categories())
            if unknown:
                raise ValueError(
                    f"suite {self.name!r} has no categor{'y' if len(unknown) == 1 else 'ies'} "
                    f"{', '.join(sorted(unknown))}; it has: {', '.join(self.categories())}"
                )
            tasks = [t for t in tasks if t.category in cats]
        if kinds is not None:
            ks = _as_set(kinds, "kinds")
            valid = {"ast", "irrelevance", "relevance", "multi_turn", "final_answer"}
            bad = ks - valid
            if bad:
                raise ValueError(f"unknown task kind(s) {', '.join(sorted(bad))}; expected: {', '.join(sorted(valid))}")
            tasks = [t for t in tasks if t.kind in ks]
        if ids is not None:
            wanted = _as_set(ids, "ids")
            for i in wanted:
                if i not in self._by_id:
                    self.get(i)  # raises a helpful KeyError
            tasks = [t for t in tasks if t.id in wanted]
        return Suite(self.name, tasks)


def _as_set(values: Iterable[str], what: str) -> set[str]:
    if isinstance(values, str):
        return {values}
    out = set(values)
    if not all(isinstance(v, str) for v in out):
        raise TypeError(f"{what} must be strings")
    return out


_lock = threading.RLock()
_category_memo: dict[str, tuple[Task, ...]] = {}
_suite_memo: dict[Any, Suite] = {}


def clear_memo() -> None:
    """Forget in-process memoised suites and categories (the disk cache is kept)."""
    with _lock:
        _category_memo.clear()
        _suite_memo.clear()


def _load_builtin(category: str) -> tuple[Task, ...]:
    from importlib import resources

    ref = resources.files("toolgym.env") / "data" / BUILTIN_CATEGORIES[category]
    with resources.as_file(ref) as path:
        return tuple(load_jsonl(path))


def load_bfcl_category(category: str, *, use_cache: bool = True) -> tuple[Task, ...]:
    """One BFCL category's tasks: memo → disk cache → parse (then cached)."""
    with _lock:
        if use_cache and category in _category_memo:
            return _category_memo[category]
        tasks: tuple[Task, ...] | None = None
        key = path = None
        if use_cache:
            key = cache_key(category)
            path = cache_path(category, key)
            tasks = read_cache(path, key)
        if tasks is None:
            with NoGC():
                tasks = tuple(_bfcl.load_category(category))
            if use_cache:
                assert path is not None and key is not None
                write_cache(path, key, tasks)
        if use_cache:
            _category_memo[category] = tasks
        return tasks


def _looks_like_path(name: str) -> bool:
    return (
        name.endswith((".jsonl", ".json", ".ndjson"))
        or os.sep in name
        or (os.altsep or "\0") in name
        or os.path.exists(name)
    )


def load_suite(
    name: str = "bfcl",
    *,
    categories: Sequence[str] | None = None,
    use_cache: bool = True,
) -> Suite:
    """Load a suite by name (``bfcl``, ``bfcl-single``, ``bfcl-multi``) or from a JSONL path.

    ``categories`` narrows (or, for ``bfcl``, chooses) the categories. ``use_cache=False``
    bypasses both the in-process memo and the disk cache.
    """
    name = os.fspath(name)
    cats = (
        None
        if categories is None
        else tuple(dict.fromkeys([categories] if isinstance(categories, str) else categories))
    )
    if name in SUITE_NAMES:
        allowed = (_bfcl.SUPPORTED_CATEGORIES + (tuple(BUILTIN_CATEGORIES) if name == "default" else ())
                   if name in ("bfcl", "default") else SUITE_NAMES[name])
        if cats is None:
            cats = SUITE_NAMES[name]
        else:
            bad = [c for c in cats if c not in allowed]
            if bad:
                extra = ""
                if any(c in ("web_search", "memory", "format_sensitivity") for c in bad):
                    extra = " (web_search, memory and format_sensitivity are not supported)"
                noun = "category" if len(bad) == 1 else "categories"
                raise ValueError(
                    f"suite {name!r} has no {noun} {', '.join(bad)}{extra}; choose from: {', '.join(allowed)}"
                )
        memo_key: Any = ("bfcl", name, cats)
        with _lock:
            if use_cache and memo_key in _suite_memo:
                return _suite_memo[memo_key]
            tasks: list[Task] = []
            for c in cats:
                tasks.extend(_load_builtin(c) if c in BUILTIN_CATEGORIES else load_bfcl_category(c, use_cache=use_cache))
            suite = Suite(name, tasks)
            if use_cache:
                _suite_memo[memo_key] = suite
            return suite

    if not _looks_like_path(name):
        close = difflib.get_close_matches(name, SUITE_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown suite {name!r}{hint}: use one of {', '.join(SUITE_NAMES)} or a path to a JSONL task file"
        )
    path = Path(name).expanduser()
    try:
        st = path.stat()
    except OSError as exc:
        raise FileNotFoundError(f"suite file {str(path)!r} not found ({exc.strerror})") from None
    memo_key = ("file", str(path.resolve()), st.st_size, st.st_mtime_ns, cats)
    with _lock:
        if use_cache and memo_key in _suite_memo:
            return _suite_memo[memo_key]
    suite = Suite(str(path), load_jsonl(path))
    if cats is not None:
        suite = suite.filter(categories=cats)
    if use_cache:
        with _lock:
            _suite_memo[memo_key] = suite
    return suite
