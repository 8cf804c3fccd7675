"""BFCL v4 tasks, read from the installed ``bfcl_eval`` wheel (Apache-2.0; see NOTICE).

Data is read with :mod:`importlib.resources` from ``bfcl_eval/data/``; nothing of ``bfcl_eval``
is imported except the (empty) package itself, so its pinned heavy dependencies need not be
installed (``pip install --no-deps bfcl-eval==2026.3.23``).

- Questions: ``BFCL_v4_<category>.json`` (JSON Lines despite the name).
- Ground truth: ``possible_answer/BFCL_v4_<category>.json``, joined by ``id``. Categories with no
  such file (``irrelevance``, ``live_irrelevance``, ``live_relevance``) get ``ground_truth=()``.
- Multi-turn tool docs: ``multi_turn_func_doc/<file>.json`` per backend class.

Mapping onto :class:`~toolgym.env.types.Task`:

- ``turns``: BFCL's ``question`` unchanged — a list of turns, each a list of messages. Live
  categories have multi-message turns (``system`` prompts, earlier ``assistant`` replies);
  ``multi_turn_miss_func`` has an *empty* turn where the held-back functions become available.
- ``tools``: single-turn — BFCL's ``function`` list; multi-turn — the docs of every class in
  ``involved_classes`` (in that order) minus ``excluded_function``. The functions named in
  ``missed_function`` *are* in ``tools``: the env must hide them until their turn.
  Parameters are mapped to JSON Schema by :func:`~toolgym.env.tasks.schema.bfcl_to_json_schema`
  (original BFCL types kept as ``x-bfcl-type``). Function names are kept verbatim (some contain
  dots, e.g. ``math_toolkit.sum_of_multiples``).
- ``ground_truth``: ``ast`` — BFCL possible answers (``[{func: {param: [allowed...]}}]``);
  ``multi_turn`` — one list of call strings per turn (same length as ``turns``).
- ``optimal_steps``: ``1`` for single-turn tasks (one model output answers them); for multi-turn
  tasks the number of ground-truth calls summed over all turns (at least 1).
- ``missed_function``: turn index (a string, as in BFCL) → function names withheld until then.
- ``metadata`` (multi-turn): ``path`` (BFCL's expected function path), ``excluded_function``
  (when present) and ``long_context`` (True for ``multi_turn_long_context``: the backends load
  their long-context scenario).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata as _metadata
from importlib import resources
from typing import Any

from toolgym.env.tasks.schema import bfcl_to_json_schema
from toolgym.env.types import Task, TaskKind, ToolSpec

__all__ = [
    "AST_CATEGORIES",
    "DEFAULT_CATEGORIES",
    "EXPECTED_COUNTS",
    "EXTRA_CATEGORIES",
    "MULTI_TURN_CATEGORIES",
    "MULTI_TURN_CLASS_DOCS",
    "SINGLE_TURN_CATEGORIES",
    "SUPPORTED_CATEGORIES",
    "bfcl_available",
    "bfcl_version",
    "build_task",
    "category_from_id",
    "category_language",
    "data_files",
    "kind_for_category",
    "load_category",
    "multi_turn_tools",
    "tool_from_bfcl",
]

AST_CATEGORIES: tuple[str, ...] = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)
SINGLE_TURN_CATEGORIES: tuple[str, ...] = AST_CATEGORIES + ("irrelevance", "live_irrelevance", "live_relevance")
MULTI_TURN_CATEGORIES: tuple[str, ...] = (
    "multi_turn_base",
    "multi_turn_miss_func",
    "multi_turn_miss_param",
    "multi_turn_long_context",
)
DEFAULT_CATEGORIES: tuple[str, ...] = SINGLE_TURN_CATEGORIES + MULTI_TURN_CATEGORIES
"""The ``bfcl`` suite: every single-turn Python category and the four multi-turn ones."""
EXTRA_CATEGORIES: tuple[str, ...] = ("simple_java", "simple_javascript")
"""Loadable on request, not in the default suite."""
SUPPORTED_CATEGORIES: tuple[str, ...] = DEFAULT_CATEGORIES + EXTRA_CATEGORIES
"""``web_search``, ``memory`` and ``format_sensitivity`` are deliberately not supported."""

EXPECTED_COUNTS: dict[str, int] = {
    "simple_python": 400,
    "multiple": 200,
    "parallel": 200,
    "parallel_multiple": 200,
    "irrelevance": 240,
    "live_simple": 258,
    "live_multiple": 1053,
    "live_parallel": 16,
    "live_parallel_multiple": 24,
    "live_irrelevance": 884,
    "live_relevance": 16,
    "multi_turn_base": 200,
    "multi_turn_miss_func": 200,
    "multi_turn_miss_param": 200,
    "multi_turn_long_context": 200,
    "simple_java": 100,
    "simple_javascript": 50,
}
"""Task counts of ``bfcl-eval==2026.3.23`` (design §5)."""

MULTI_TURN_CLASS_DOCS: dict[str, str] = {
    "GorillaFileSystem": "gorilla_file_system.json",
    "MathAPI": "math_api.json",
    "MessageAPI": "message_api.json",
    "TwitterAPI": "posting_api.json",
    "TicketAPI": "ticket_api.json",
    "TradingBot": "trading_bot.json",
    "TravelAPI": "travel_booking.json",
    "VehicleControlAPI": "vehicle_control.json",
}
"""Backend class → its function-doc file in ``bfcl_eval/data/multi_turn_func_doc``."""

_PACKAGE = "bfcl_eval"


def kind_for_category(category: str) -> TaskKind:
    """BFCL category → task kind (``irrelevance`` is tested before ``relevance``)."""
    if "irrelevance" in category:
        return "irrelevance"
    if "relevance" in category:
        return "relevance"
    if "multi_turn" in category:
        return "multi_turn"
    return "ast"


def category_language(category: str) -> str:
    if "javascript" in category:
        return "javascript"
    if "java" in category:
        return "java"
    return "python"


def category_from_id(task_id: str) -> str:
    """BFCL's own rule: ``live_simple_3-2-0`` → ``live_simple``, ``multi_turn_base_7`` → ``multi_turn_base``."""
    return task_id.rsplit("_", 1)[0] if "_" in task_id else task_id


def bfcl_available() -> bool:
    try:
        return _data_root().joinpath(f"BFCL_v4_{AST_CATEGORIES[0]}.json").is_file()
    except Exception:
        return False


@functools.cache
def bfcl_version() -> str:
    try:
        return _metadata.version("bfcl-eval")
    except _metadata.PackageNotFoundError:
        return "unknown"


def _data_root() -> Any:
    try:
        return resources.files(_PACKAGE).joinpath("data")
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "BFCL data needs the bfcl_eval wheel: pip install --no-deps bfcl-eval==2026.3.23"
        ) from exc


def data_files(category: str) -> list[Any]:
    """The data files a category is built from (for cache keys); missing optional files omitted."""
    _check_category(category)
    root = _data_root()
    files = [root.joinpath(f"BFCL_v4_{category}.json")]
    answers = root.joinpath("possible_answer", f"BFCL_v4_{category}.json")
    if answers.is_file():
        files.append(answers)
    if kind_for_category(category) == "multi_turn":
        files.extend(root.joinpath("multi_turn_func_doc", name) for name in sorted(set(MULTI_TURN_CLASS_DOCS.values())))
    return files


def _check_category(category: str) -> None:
    if category not in SUPPORTED_CATEGORIES:
        hint = ""
        if category in ("web_search", "memory", "format_sensitivity"):
            hint = " (left out on purpose: it needs live web access / prerequisite conversations)"
        raise ValueError(f"unknown BFCL category {category!r}{hint}; supported: {', '.join(SUPPORTED_CATEGORIES)}")


def _read_jsonl(resource: Any) -> list[dict[str, Any]]:
    text = resource.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def tool_from_bfcl(function: Mapping[str, Any], language: str = "python") -> ToolSpec:
    """One BFCL function doc → :class:`ToolSpec` (parameters mapped to JSON Schema)."""
    params = function.get("parameters") or {"type": "dict", "properties": {}}
    return ToolSpec(
        name=function["name"],
        description=function.get("description", "") or "",
        parameters=bfcl_to_json_schema(params, language),
    )


@functools.cache
def _class_tools(cls: str) -> tuple[ToolSpec, ...]:
    file = MULTI_TURN_CLASS_DOCS.get(cls)
    if file is None:
        raise ValueError(f"unknown multi-turn backend class {cls!r}; known: {', '.join(MULTI_TURN_CLASS_DOCS)}")
    docs = _read_jsonl(_data_root().joinpath("multi_turn_func_doc", file))
    return tuple(tool_from_bfcl(d) for d in docs)


def multi_turn_tools(involved_classes: Iterable[str], excluded: Iterable[str] = ()) -> tuple[ToolSpec, ...]:
    """Tools of a multi-turn task: the classes' docs in order, minus ``excluded`` names.

    ToolSpec objects are shared between tasks (one per function), which keeps memory and the
    pickle cache small; treat them as read-only.
    """
    skip = set(excluded)
    return tuple(t for cls in involved_classes for t in _class_tools(cls) if t.name not in skip)


def _turns(question: Sequence[Any]) -> tuple[tuple[dict[str, str], ...], ...]:
    return tuple(tuple(dict(m) for m in turn) for turn in question)


def build_task(
    record: Mapping[str, Any],
    ground_truth: Sequence[Any] | None = None,
    *,
    category: str | None = None,
    language: str | None = None,
    tool_cache: dict[str, ToolSpec] | None = None,
) -> Task:
    """Build a Task from one BFCL record (``id``, ``question``, ``function`` or multi-turn fields).

    ``ground_truth`` defaults to ``record["ground_truth"]`` (a joined possible-answer line).
    The record is trusted to be well-formed: :func:`toolgym.env.tasks.jsonl.task_from_bfcl_record`
    validates user-supplied records before calling this.
    """
    task_id = record["id"]
    category = category or record.get("category") or category_from_id(task_id)
    kind = kind_for_category(category)
    if kind != "multi_turn" and "involved_classes" in record and "function" not in record:
        kind = "multi_turn"
    language = language or record.get("language") or category_language(category)
    if ground_truth is None:
        ground_truth = record.get("ground_truth") or ()
    turns = _turns(record["question"])

    if kind == "multi_turn":
        involved = tuple(record.get("involved_classes") or ())
        excluded = tuple(record.get("excluded_function") or ())
        if "function" in record:
            tools = tuple(tool_from_bfcl(f, language) for f in record["function"] if f.get("name") not in set(excluded))
        else:
            tools = multi_turn_tools(involved, excluded)
        gt = tuple(list(turn) for turn in ground_truth)
        missed = {str(k): tuple(v) for k, v in (record.get("missed_function") or {}).items()}
        meta: dict[str, Any] = {"path": list(record.get("path") or [])}
        if excluded:
            meta["excluded_function"] = list(excluded)
        meta["long_context"] = "long_context" in category
        return Task(
            id=task_id,
            kind=kind,
            turns=turns,
            tools=tools,
            category=category,
            ground_truth=gt,
            optimal_steps=max(1, sum(len(t) for t in gt)),
            language=language,
            involved_classes=involved,
            initial_config=dict(record.get("initial_config") or {}),
            missed_function=missed,
            metadata=meta,
        )

    functions = record.get("function") or ()
    if tool_cache is None:
        tools = tuple(tool_from_bfcl(f, language) for f in functions)
    else:
        tools_list = []
        for f in functions:
            key = json.dumps(f, sort_keys=True) + "\x00" + language
            spec = tool_cache.get(key)
            if spec is None:
                spec = tool_cache[key] = tool_from_bfcl(f, language)
            tools_list.append(spec)
        tools = tuple(tools_list)
    gt = tuple(ground_truth) if kind == "ast" else ()
    return Task(
        id=task_id,
        kind=kind,
        turns=turns,
        tools=tools,
        category=category,
        ground_truth=gt,
        optimal_steps=1,
        language=language,
    )


def load_category(category: str) -> list[Task]:
    """Parse one BFCL category from the wheel (no caching; see :func:`toolgym.env.tasks.suite.load_suite`)."""
    _check_category(category)
    root = _data_root()
    records = _read_jsonl(root.joinpath(f"BFCL_v4_{category}.json"))
    answers_file = root.joinpath("possible_answer", f"BFCL_v4_{category}.json")
    answers: dict[str, Any] = {}
    if answers_file.is_file():
        answers = {a["id"]: a["ground_truth"] for a in _read_jsonl(answers_file)}
    kind = kind_for_category(category)
    language = category_language(category)
    tasks: list[Task] = []
    tool_cache: dict[str, ToolSpec] = {}  # identical function docs share one ToolSpec
    for rec in records:
        gt = answers.get(rec["id"])
        if gt is None and kind in ("ast", "multi_turn"):
            raise ValueError(f"BFCL {category}: no ground truth for {rec['id']!r} in possible_answer/")
        tasks.append(build_task(rec, gt or (), category=category, language=language, tool_cache=tool_cache))
    return tasks
