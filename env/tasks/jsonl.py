"""toolgym's JSONL task format: bring your own tasks and tools.

A task file holds one JSON object per line (UTF-8). Blank lines are skipped; ids must be unique
within a file. Errors name the file, the line, the field, what came and what was expected, e.g.
``tasks.jsonl:3: field 'answer.mode': expected one of exact, contains, regex, numeric, got string "fuzzy"``.

Fields
------

====================  =======================  ===============================================
field                 type                     meaning
====================  =======================  ===============================================
``id``                string, required         unique task id
``kind``              string                   ``ast`` | ``irrelevance`` | ``relevance`` |
                                               ``multi_turn`` | ``final_answer`` (inferred
                                               when absent, see below)
``turns``             list of turns, required  each turn a list of messages ``{"role":
                                               "system"|"user"|"assistant"|"tool", "content":
                                               "..."}``; a turn may be a plain string (one
                                               user message) and the whole field a string (one
                                               turn); ``question`` is accepted as BFCL's name
``tools``             list of tools            ``{"name", "description", "parameters"}``,
                                               ``parameters`` a JSON Schema object; OpenAI's
                                               ``{"type": "function", "function": {...}}``
                                               wrapper is accepted; names are unique
``ground_truth``      list                     ``ast``: BFCL possible answers, one object per
                                               expected call, ``{"fn": {"param": [allowed
                                               values...]}}`` (``""`` among the allowed values
                                               marks an optional parameter); ``multi_turn``:
                                               one list of call strings per turn, e.g.
                                               ``[["cd(folder='docs')"], []]``, each calling
                                               one of ``tools``; other kinds: empty
``optimal_steps``     integer >= 1             best number of steps; default 1, for
                                               ``multi_turn`` the number of ground-truth calls
``answer``            object                   ``final_answer`` check: ``{"mode": "exact" |
                                               "contains" | "regex" | "numeric", "expected":
                                               "42" or ["42", "forty-two"], "tolerance":
                                               1e-6}``
``weights``           object name → number     per-task reward weight overrides
``penalties``         object name → number     per-task penalty overrides (usually negative)
``category``          string                   free label (used by suite filters)
``language``          string                   ``python`` (default), ``java``, ``javascript``
``involved_classes``  list of strings          ``multi_turn``: backend classes (e.g.
                                               ``GorillaFileSystem``); when ``tools`` is
                                               omitted the BFCL docs of these classes are used
                                               (minus ``metadata.excluded_function``)
``initial_config``    object                   ``multi_turn``: class name → initial state
``missed_function``   object turn → names      ``multi_turn``: tools withheld until that turn
                                               (``{"3": ["sort"]}``); each must be in
                                               ``tools``
``metadata``          object                   anything else you want carried along
====================  =======================  ===============================================

Unknown fields are an error (with a "did you mean" hint); put extras under ``metadata``.

``kind`` inference when absent: ``answer`` present → ``final_answer``; otherwise from
``category`` (contains ``irrelevance`` → ``irrelevance``, ``relevance`` → ``relevance``,
``multi_turn`` → ``multi_turn``); otherwise ``involved_classes`` present → ``multi_turn``;
otherwise a non-empty ``ground_truth`` → ``ast``; otherwise it is an error.

BFCL-format lines
-----------------

A line with no ``kind``, ``tools`` or ``turns`` but a BFCL ``function`` list (or, for
multi-turn, ``involved_classes``) is read as a BFCL record — the format of
``toolgym score --tasks``: ``id``, ``category`` (default: derived from the id the way BFCL does,
``live_simple_3-2-0`` → ``live_simple``), ``question``, ``function`` (BFCL types: ``dict``,
``float``, ``tuple``, ``any`` ... mapped to JSON Schema) and ``ground_truth`` (BFCL possible
answers; multi-turn: call strings per turn, plus ``initial_config``, ``involved_classes``,
``path``, ``missed_function``, ``excluded_function``; ``tools`` then come from the BFCL docs of
those classes). The kind comes from the category as above; other fields (``source``,
``num_hops`` ...) are kept in ``metadata``. Both kinds of lines may be mixed in one file. A BFCL
record's tools keep their BFCL type names as ``x-bfcl-type``, so :func:`task_to_dict` writes
them back losslessly.

Modules
-------

This module reads and writes task files (:func:`load_jsonl`, :func:`parse_line`,
:func:`dump_jsonl`) and is the format's public entry point: it re-exports
:class:`TaskFormatError` and the field names from :mod:`toolgym.env.tasks.jsonl_fields` (one
check per field, and every error message) and the dict ↔ task conversions
(:func:`task_from_dict`, :func:`task_to_dict`, :func:`task_from_bfcl_record`,
:func:`is_bfcl_record`) from :mod:`toolgym.env.tasks.jsonl_records`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

from toolgym.env.tasks.jsonl_fields import (
    ANSWER_MODES,
    BFCL_FIELDS,
    KINDS,
    ROLES,
    TASK_FIELDS,
    TaskFormatError,
    _jtype,
    _show,
)
from toolgym.env.tasks.jsonl_records import (
    is_bfcl_record,
    task_from_bfcl_record,
    task_from_dict,
    task_to_dict,
)
from toolgym.env.types import Task

__all__ = [
    "TASK_FIELDS",
    "TaskFormatError",
    "dump_jsonl",
    "is_bfcl_record",
    "load_jsonl",
    "parse_line",
    "task_from_bfcl_record",
    "task_from_dict",
    "task_to_dict",
]

# ANSWER_MODES, BFCL_FIELDS, KINDS and ROLES are imported only to stay reachable here, where
# they lived before the split; __all__ is unchanged.


def parse_line(text: str, *, path: str | os.PathLike[str] | None = None, line: int | None = None) -> Task:
    """Parse one JSONL line (toolgym or BFCL format), errors located at ``path:line``."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskFormatError(path, line, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(d, dict):
        raise TaskFormatError(path, line, f"expected a JSON object (one task per line), got {_jtype(d)} {_show(d, 40)}")
    try:
        return task_from_dict(d)
    except TaskFormatError as exc:
        raise TaskFormatError(path, line, exc.message, exc.field) from None


def load_jsonl(path: str | os.PathLike[str]) -> list[Task]:
    """Load a JSONL task file (toolgym and/or BFCL-format lines); raises :class:`TaskFormatError`."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError as exc:
        raise TaskFormatError(path, None, f"not UTF-8 text: {exc}") from None
    tasks: list[Task] = []
    first_line: dict[str, int] = {}
    for n, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        if n == 1 and text.lstrip().startswith("[") and len(lines) > 1:
            stripped = text.strip()
            if stripped == "[" or not stripped.endswith("]"):
                raise TaskFormatError(
                    path, n, "expected one JSON object per line (JSONL), this looks like a JSON array spanning lines"
                )
        task = parse_line(text, path=path, line=n)
        if task.id in first_line:
            raise TaskFormatError(path, n, f"duplicate id {task.id!r} (first on line {first_line[task.id]})", "id")
        first_line[task.id] = n
        tasks.append(task)
    return tasks


def dump_jsonl(tasks: Iterable[Task], path: str | os.PathLike[str]) -> None:
    """Write tasks as toolgym JSONL (one canonical :func:`task_to_dict` per line), atomically."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for t in tasks:
                try:
                    line = json.dumps(task_to_dict(t), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"task {t.id!r} is not JSON-serialisable: {exc}") from None
                fh.write(line)
                fh.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
