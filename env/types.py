"""Core value types shared by parsers, tasks, the reward engine, the env and the server.

Everything here is a plain, immutable-by-convention dataclass with no behaviour beyond
(de)serialisation, so any layer can construct and pass them without importing another
layer's internals.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

_SURROGATES = re.compile("[\ud800-\udfff]")


def utf8_safe(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD, so it is valid UTF-8.

    Python strings may hold lone surrogates (model output decoded leniently, a tool that printed
    one); protobuf string fields refuse them, which would turn a reply into an INTERNAL error.
    Local and remote envs both apply this to observations so they stay identical.
    """
    try:
        text.encode("utf-8")  # fast path: almost always valid
        return text
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)


JSONValue = Any
"""A value that survives ``json.dumps`` (dict/list/str/int/float/bool/None)."""

TaskKind = Literal["ast", "irrelevance", "relevance", "multi_turn", "final_answer"]
"""How a task's completion is checked (see :mod:`toolgym.env.reward`).

- ``ast``: single-turn call tasks; the calls must match the ground truth under BFCL's AST rules.
- ``irrelevance``: no offered tool fits; completion means no call was made.
- ``relevance``: some call must be made (BFCL ``live_relevance``); its content is not checked.
- ``multi_turn``: stateful tasks; backend state and results are compared to a ground-truth replay.
- ``final_answer``: the task's own answer check (see :class:`AnswerCheck`).
"""


@dataclass(frozen=True)
class ToolSpec:
    """One tool offered to the model.

    ``parameters`` is a JSON Schema object (``{"type": "object", "properties": ..., "required": ...}``).
    BFCL's own types (``dict``, ``float``, ``tuple``, ``any``) are mapped at load time.
    """

    name: str
    description: str = ""
    parameters: dict[str, JSONValue] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def to_dict(self) -> dict[str, JSONValue]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    @classmethod
    def from_dict(cls, d: dict[str, JSONValue]) -> ToolSpec:
        return cls(name=d["name"], description=d.get("description", ""), parameters=d.get("parameters") or {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ToolCall:
    """A call the model asked for: a name and keyword arguments.

    ``raw`` keeps the exact text span the call was parsed from (for feedback and logs).
    """

    name: str
    arguments: dict[str, JSONValue] = field(default_factory=dict)
    raw: str = ""

    def key(self) -> str:
        """Canonical identity (name + args) used for redundancy detection."""
        return self.name + "\x00" + json.dumps(self.arguments, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class ParseIssue:
    """A problem found while parsing one model output.

    The full offending text (e.g. the whole arguments string) is kept in ``fragment`` so a
    trainer or a person can see exactly what the model wrote.
    """

    template: str
    kind: str  # e.g. "invalid_json", "missing_field", "unterminated_tag", "no_structure"
    message: str
    offset: int = -1  # character offset into the output, -1 when unknown
    line: int = -1
    column: int = -1
    fragment: str = ""

    def __str__(self) -> str:
        where = f" at line {self.line}, column {self.column}" if self.line >= 0 else ""
        return f"[{self.template}] {self.kind}{where}: {self.message}"


class ToolParseError(ValueError):
    """Raised by strict parsing; carries the :class:`ParseIssue` list."""

    def __init__(self, issues: list[ParseIssue]):
        self.issues = list(issues)
        super().__init__("; ".join(str(i) for i in self.issues) or "unparseable output")


@dataclass(frozen=True)
class ParsedAction:
    """The result of parsing one model output under one template.

    ``calls`` are the well-formed calls; a call whose arguments could not be decoded is left
    out of ``calls`` and reported in ``issues`` instead (kind ``invalid_json`` etc.).
    ``final_answer`` is set when the output ends the turn with an answer; ``give_up`` when the
    model explicitly gives up (ToolLlama's ``give_up_and_restart``).
    """

    template: str
    calls: tuple[ToolCall, ...] = ()
    thought: str | None = None
    final_answer: str | None = None
    give_up: bool = False
    issues: tuple[ParseIssue, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.issues


@dataclass(frozen=True)
class AnswerCheck:
    """How a ``final_answer`` task checks the model's answer.

    ``mode``: ``exact`` (after whitespace/case normalisation), ``contains``, ``regex`` or
    ``numeric`` (|a-b| <= tolerance).
    """

    mode: Literal["exact", "contains", "regex", "numeric"] = "exact"
    expected: tuple[str, ...] = ()
    tolerance: float = 1e-6


@dataclass(frozen=True)
class Task:
    """One task, whatever its source (BFCL, toolgym JSONL, inline in a request).

    ``turns`` is a list of user turns, each a list of chat messages ({"role", "content"}).
    ``ground_truth``:
      - ``ast``: BFCL possible answers, a list of ``{func_name: {param: [allowed values...]}}``.
      - ``multi_turn``: one list of call strings per user turn (BFCL's format).
      - others: empty.
    ``weights`` / ``penalties`` override the suite's reward config per task.
    """

    id: str
    kind: TaskKind
    turns: tuple[tuple[dict[str, str], ...], ...]
    tools: tuple[ToolSpec, ...]
    category: str = ""
    ground_truth: tuple[JSONValue, ...] = ()
    optimal_steps: int = 1
    answer: AnswerCheck | None = None
    weights: dict[str, float] = field(default_factory=dict)
    penalties: dict[str, float] = field(default_factory=dict)
    language: str = "python"
    # Stateful (multi-turn) tasks: backend classes, their initial state, and functions held back
    # until a later turn (BFCL miss_func).
    involved_classes: tuple[str, ...] = ()
    initial_config: dict[str, JSONValue] = field(default_factory=dict)
    missed_function: dict[str, tuple[str, ...]] = field(default_factory=dict)
    metadata: dict[str, JSONValue] = field(default_factory=dict)

    @cached_property
    def tool_names(self) -> frozenset[str]:
        # cached_property writes the instance __dict__ directly, so it works on a frozen
        # dataclass; it is on the scoring hot path.
        return frozenset(t.name for t in self.tools)
