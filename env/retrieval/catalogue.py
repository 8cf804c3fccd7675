"""The tool catalogue: every distinct tool of a suite (plus user JSONL tools), with a stable id.

Tools are deduplicated by name and parameter schema: BFCL offers the same function in hundreds of
tasks, sometimes with a different schema under the same name, and those are different tools to a
caller. The first description seen is kept (later duplicates differ only in wording, if at all).

A tool's id is ``name#<10 hex of sha256(name + canonical schema)>``, so it does not depend on load
order or on which tasks happen to be loaded: an index built from one suite stays meaningful for
another that holds the same tool. :attr:`Catalogue.content_hash` covers the ids and the indexed
texts, and keys every cached index (:mod:`toolgym.env.retrieval.cache`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from toolgym.env.types import Task, ToolSpec

__all__ = ["Catalogue", "CatalogueEntry", "load_tools_jsonl", "render_tool", "split_identifier", "tool_id"]

#: The source-task list of a tool is capped: `cd` alone is offered by ~800 multi-turn tasks, and the
#: list is for showing where a tool comes from, not for reconstructing the suite.
MAX_SOURCE_TASKS = 50

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^0-9A-Za-z]+")


def split_identifier(name: str) -> str:
    """``ChaDri.change_drink`` → ``Cha Dri change drink``: identifiers as words, so a lexical or a
    dense retriever can match "change drink" against a tool that only says so in its name."""
    return " ".join(w for part in _NON_WORD.split(name) for w in _CAMEL.split(part) if w)


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def tool_id(spec: ToolSpec) -> str:
    """The stable id of a tool: its name and a digest of its name and schema."""
    digest = hashlib.sha256((spec.name + "\x00" + _canonical(spec.parameters)).encode("utf-8")).hexdigest()
    return f"{spec.name}#{digest[:10]}"


def render_tool(spec: ToolSpec, *, max_chars: int = 1200) -> str:
    """The text a retriever indexes for a tool: name (raw and split into words), description, and
    each parameter's name and description. Types and enums are left out: they are noise to both
    BM25 and MiniLM, and a query never mentions them. ``max_chars`` bounds a pathological spec
    (MiniLM reads 256 word pieces at most anyway)."""
    desc = spec.description.strip()
    # BFCL's multi-turn tools all open with their API's boilerplate ("This tool belongs to the Gorilla
    # file system. It is a simple file system that ... Tool description: Move a file ..."): put the
    # tool's own sentence first, so truncation and the encoder's attention keep what tells them apart.
    head, sep, own = desc.partition("Tool description:")
    if sep and own.strip():
        desc = f"{own.strip()} ({head.strip()})"
    parts = [f"{spec.name} ({split_identifier(spec.name)}): {desc}"]
    props = spec.parameters.get("properties") if isinstance(spec.parameters, dict) else None
    if isinstance(props, dict) and props:
        params = []
        for pname, pschema in props.items():
            desc = pschema.get("description", "") if isinstance(pschema, dict) else ""
            params.append(f"{split_identifier(str(pname))}: {desc}".strip().rstrip(":"))
        parts.append("Parameters: " + "; ".join(params))
    text = " ".join(parts)
    return text if len(text) <= max_chars else text[:max_chars]


@dataclass(frozen=True)
class CatalogueEntry:
    """One distinct tool. ``source_tasks`` holds up to :data:`MAX_SOURCE_TASKS` task ids (``n_tasks``
    counts them all); ``source`` says where it came from (``suite`` or a JSONL path)."""

    id: str
    spec: ToolSpec
    text: str
    source_tasks: tuple[str, ...] = ()
    n_tasks: int = 0
    source: str = "suite"

    @property
    def name(self) -> str:
        return self.spec.name

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "spec": self.spec.to_dict(),
            "source": self.source,
            "n_tasks": self.n_tasks,
            "source_tasks": list(self.source_tasks),
            "text": self.text,
        }


@dataclass
class _Builder:
    spec: ToolSpec
    source: str
    tasks: list[str] = field(default_factory=list)
    n_tasks: int = 0


class Catalogue:
    """An ordered, id-indexed set of :class:`CatalogueEntry`. Index ``i`` of every retriever's
    matrix is entry ``i`` here, so the order is part of the content hash."""

    def __init__(self, entries: Sequence[CatalogueEntry]):
        self.entries: tuple[CatalogueEntry, ...] = tuple(entries)
        self._by_id = {e.id: i for i, e in enumerate(self.entries)}
        if len(self._by_id) != len(self.entries):
            raise ValueError("catalogue entries must have unique ids")
        self._by_name: dict[str, list[int]] = {}
        for i, e in enumerate(self.entries):
            self._by_name.setdefault(e.name, []).append(i)
        h = hashlib.sha256()
        for e in self.entries:
            h.update(e.id.encode("utf-8") + b"\x00" + e.text.encode("utf-8") + b"\x01")
        self.content_hash = h.hexdigest()[:16]

    @classmethod
    def from_tasks(cls, tasks: Iterable[Task], extra_tools: Iterable[tuple[ToolSpec, str]] = ()) -> Catalogue:
        """Every distinct tool offered by ``tasks``, then ``extra_tools`` ((spec, source) pairs),
        in first-seen order."""
        builders: dict[str, _Builder] = {}
        for task in tasks:
            for spec in task.tools:
                tid = tool_id(spec)
                b = builders.get(tid)
                if b is None:
                    b = builders[tid] = _Builder(spec, "suite")
                b.n_tasks += 1
                if len(b.tasks) < MAX_SOURCE_TASKS:
                    b.tasks.append(task.id)
        for spec, source in extra_tools:
            builders.setdefault(tool_id(spec), _Builder(spec, source))
        return cls(
            [CatalogueEntry(tid, b.spec, render_tool(b.spec), tuple(b.tasks), b.n_tasks, b.source) for tid, b in builders.items()]
        )

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[CatalogueEntry]:
        return iter(self.entries)

    def __getitem__(self, index: int) -> CatalogueEntry:
        return self.entries[index]

    def __contains__(self, tool: object) -> bool:
        """Whether an entry has this id (names: see :meth:`get`)."""
        return tool in self._by_id

    def index_of(self, tool: str) -> int:
        return self._by_id[tool]

    def get(self, tool: str) -> CatalogueEntry:
        """The entry with this id, or the first one with this name; ``KeyError`` with close names."""
        if tool in self._by_id:
            return self.entries[self._by_id[tool]]
        if tool in self._by_name:
            return self.entries[self._by_name[tool][0]]
        import difflib

        close = difflib.get_close_matches(tool, self._by_name.keys(), n=3)
        hint = f"; closest names: {', '.join(close)}" if close else ""
        raise KeyError(f"no tool {tool!r} in the catalogue ({len(self)} tools; give an id or a name){hint}")

    def ids_named(self, name: str) -> list[str]:
        return [self.entries[i].id for i in self._by_name.get(name, ())]

    def names(self) -> list[str]:
        return list(self._by_name)

    def texts(self) -> list[str]:
        return [e.text for e in self.entries]


def load_tools_jsonl(path: str | Path) -> list[ToolSpec]:
    """User tools, one per line: ``{"name", "description", "parameters"}`` (JSON Schema) or OpenAI's
    ``{"type": "function", "function": {...}}``. Errors name the file, line and field."""
    from toolgym.env.tasks.jsonl_fields import TaskFormatError, _tool

    p = Path(path).expanduser()
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise FileNotFoundError(f"tool file {str(p)!r} could not be read ({e.strerror})") from None
    tools: list[ToolSpec] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}:{n}: not valid JSON ({e.msg}, column {e.colno}); expected one tool object per line") from None
        try:
            tools.append(_tool(raw, "tool"))
        except TaskFormatError as e:
            raise ValueError(f"{p}:{n}: {e}") from None
    if not tools:
        raise ValueError(f"{p}: no tools found; expected one JSON tool object per line, e.g. "
                         '{"name": "get_weather", "description": "...", "parameters": {"type": "object", "properties": {}}}')
    return tools
