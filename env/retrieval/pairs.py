"""(query, needed tools) examples from a suite's tasks, and the splits the trainer and the eval share.

- single-turn call tasks (``ast``): the user's text → the tools its ground-truth calls name;
- multi-turn tasks: each user turn → the tools that turn's ground-truth calls name (a turn with
  no call, or no text, gives no example). BFCL's four multi-turn categories reuse the same
  conversations, so identical (query, tools) examples are kept once.

Tasks with no needed tool (irrelevance, relevance, final-answer) give none; their tools are still
in the catalogue, as distractors.

Splits (:func:`split_examples`) are deterministic functions of a seed, never of load order:
whole tools are held out first (every example needing one goes to ``unseen_tools``, and the
trainer never sees those tools, not even as negatives); the rest is split by task group, and a
test example whose tools all occur in training is an ``unseen_queries`` example (else it joins
``unseen_tools``). Multi-turn tasks are grouped by their conversation number, so ``base_7`` and
``long_context_7`` can't straddle the split.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from toolgym.env.retrieval.catalogue import tool_id
from toolgym.env.types import Task

__all__ = ["Example", "Split", "examples_from_tasks", "split_examples"]

_CALL_NAME = re.compile(r"\s*([A-Za-z_][\w.]*)\s*\(")
_MULTI_TURN_GROUP = re.compile(r"^multi_turn_[a-z_]+?_(\d+)$")


@dataclass(frozen=True)
class Example:
    """A query and the names of the tools it needs (all of them count as relevant)."""

    query: str
    tools: frozenset[str]
    task_id: str
    category: str
    group: str = ""
    tool_ids: tuple[str, ...] = ()  # catalogue ids of the exact specs the task offered for ``tools``

    def to_dict(self) -> dict[str, object]:
        return {"query": self.query, "tools": sorted(self.tools), "task_id": self.task_id, "category": self.category}


@dataclass
class Split:
    train: list[Example] = field(default_factory=list)
    unseen_queries: list[Example] = field(default_factory=list)
    unseen_tools: list[Example] = field(default_factory=list)
    held_out_tools: frozenset[str] = frozenset()

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "unseen_queries": len(self.unseen_queries), "unseen_tools": len(self.unseen_tools),
                "held_out_tools": len(self.held_out_tools)}


def _user_text(turn: Sequence[dict[str, str]]) -> str:
    return "\n".join(m.get("content", "") for m in turn if m.get("role") == "user" and m.get("content")).strip()


def _group(task: Task) -> str:
    m = _MULTI_TURN_GROUP.match(task.id)
    return f"multi_turn:{m.group(1)}" if m else task.id


def examples_from_tasks(tasks: Iterable[Task]) -> list[Example]:
    out: list[Example] = []
    seen: set[tuple[str, frozenset[str]]] = set()

    def add(query: str, names: Iterable[str], task: Task) -> None:
        tools = frozenset(names)
        if not query or not tools or (query, tools) in seen:
            return
        seen.add((query, tools))
        ids = tuple(tool_id(s) for s in task.tools if s.name in tools)
        out.append(Example(query, tools, task.id, task.category, _group(task), ids))

    for task in tasks:
        if task.kind == "ast" and task.turns:
            names = [n for call in task.ground_truth if isinstance(call, dict) for n in call]
            add(" ".join(_user_text(t) for t in task.turns).strip(), names, task)
        elif task.kind == "multi_turn":
            for turn, calls in zip(task.turns, task.ground_truth):
                names = [m.group(1) for c in calls if isinstance(c, str) and (m := _CALL_NAME.match(c))]
                add(_user_text(turn), names, task)
    return out


def _unit(seed: int, salt: str, key: str) -> float:
    """A uniform number in [0, 1) from a key: the same key always falls on the same side."""
    h = hashlib.sha256(f"{seed}\x00{salt}\x00{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def split_examples(
    examples: Sequence[Example],
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    unseen_tool_fraction: float = 0.1,
    held_out_tools: Iterable[str] | None = None,
) -> Split:
    """Hold out whole tools (``unseen_tool_fraction`` of the needed tool names, or exactly
    ``held_out_tools``), then split the rest by task group (``test_fraction`` to test)."""
    for name, v in (("test_fraction", test_fraction), ("unseen_tool_fraction", unseen_tool_fraction)):
        if not 0.0 <= v < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {v!r}")
    needed = sorted({n for e in examples for n in e.tools})
    held = (frozenset(held_out_tools) if held_out_tools is not None
            else frozenset(n for n in needed if _unit(seed, "tool", n) < unseen_tool_fraction))
    split = Split(held_out_tools=held)
    rest: list[Example] = []
    for e in examples:
        (split.unseen_tools if e.tools & held else rest).append(e)
    test: list[Example] = []
    for e in rest:
        (test if _unit(seed, "group", e.group) < test_fraction else split.train).append(e)
    trained_tools = {n for e in split.train for n in e.tools}
    trained_queries = {e.query for e in split.train}
    for e in test:
        if e.query in trained_queries:
            continue  # the same text under another task id: not an unseen query
        (split.unseen_queries if e.tools <= trained_tools else split.unseen_tools).append(e)
    return split
