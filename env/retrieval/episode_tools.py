"""Retrieval inside an episode, as self-contained pieces an episode can wire in.

- :func:`parse_tool_pool` / :func:`build_tool_pool`: the task option ``tool_pool``:
  ``task`` (the task's own tools, today's behaviour), ``full_catalogue``, or ``k_distractors:N``
  (the task's tools hidden among N other catalogue tools), in an order fixed by the seed.
- :data:`SEARCH_TOOLS_SPEC` / :class:`ToolSearch`: mode ``search``, the meta-tool
  ``search_tools(query, k)`` that answers with the specs a retriever finds (within the pool), and
  remembers every tool it has shown.
- :func:`pre_retrieved`: mode ``pre_retrieved``, the top-k specs for the task's own query.
- :func:`retrieval_component`: the ``retrieval`` reward component, the fraction of the tools the
  task needs that were among those searched or offered (1.0 when it needs none).

Arguments of ``search_tools`` come from the model: they are validated here and a bad call gets
an error observation naming what was expected, never an exception.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from toolgym.env.retrieval.base import Retriever
from toolgym.env.retrieval.catalogue import Catalogue
from toolgym.env.retrieval.pairs import examples_from_tasks
from toolgym.env.types import Task, ToolSpec

__all__ = ["MAX_SEARCH_K", "SEARCH_TOOLS_SPEC", "ToolPool", "ToolSearch", "build_tool_pool", "needed_tools",
           "parse_tool_pool", "pre_retrieved", "retrieval_component"]

MAX_SEARCH_K = 20
"""The most specs one ``search_tools`` call returns: more would defeat the point of retrieving."""

SEARCH_TOOLS_SPEC = ToolSpec(
    "search_tools",
    "Search the tool catalogue. Returns the specs (name, description, parameters) of the tools that best "
    "match what you need; call one of them afterwards.",
    {"type": "object", "properties": {
        "query": {"type": "string", "description": "what the tool should do, in words"},
        "k": {"type": "integer", "description": f"how many tools to return (1-{MAX_SEARCH_K}, default 5)"},
    }, "required": ["query"]},
)

_POOL = re.compile(r"^(task|full_catalogue|k_distractors:(\d+))$")


@dataclass(frozen=True)
class ToolPool:
    mode: str = "task"  # task | full_catalogue | k_distractors
    n: int = 0


def parse_tool_pool(option: object) -> ToolPool:
    m = _POOL.match(option) if isinstance(option, str) else None
    if m is None:
        raise ValueError(f"tool_pool must be 'task', 'full_catalogue' or 'k_distractors:N' (N >= 0), got {option!r}")
    if m.group(2) is not None:
        return ToolPool("k_distractors", int(m.group(2)))
    return ToolPool(m.group(1))


def build_tool_pool(task: Task, catalogue: Catalogue, pool: ToolPool, seed: int = 0) -> tuple[ToolSpec, ...]:
    """The tools an episode offers (or searches over): the task's tools always, each under its own
    name and spec, plus catalogue tools of other names; shuffled by ``seed``."""
    if pool.mode == "task":
        return task.tools
    own = set(task.tool_names)
    others = [e.spec for e in catalogue if e.name not in own]
    # one spec per name: two same-name variants in one episode would make a call ambiguous
    others = list({s.name: s for s in others}.values())
    rng = random.Random(f"{seed}:{task.id}")
    if pool.mode == "k_distractors":
        others = rng.sample(others, min(pool.n, len(others)))
    tools = list(task.tools) + others
    rng.shuffle(tools)
    return tuple(tools)


def needed_tools(task: Task) -> frozenset[str]:
    """Names of the tools the task's ground truth calls (every turn)."""
    return frozenset(n for e in examples_from_tasks([task]) for n in e.tools)


def retrieval_component(needed: Iterable[str], seen: Iterable[str]) -> float:
    need = set(needed)
    if not need:
        return 1.0
    return len(need & set(seen)) / len(need)


@dataclass
class ToolSearch:
    """``search_tools`` over an episode's pool with one retriever; ``seen`` collects every name shown.

    ``specs`` (name -> spec), when given, is the pool: only those names are returned, each with the
    pool's own spec (the catalogue may hold other variants of a name); else ``allowed`` restricts
    the names (None: the whole catalogue) and the catalogue's spec is returned."""

    retriever: Retriever
    allowed: frozenset[str] | None = None  # names the episode offers; None: the whole catalogue
    seen: set[str] = field(default_factory=set)
    specs: dict[str, ToolSpec] | None = None

    def call(self, arguments: object, exclude: frozenset[str] = frozenset()) -> tuple[bool, str]:
        """(ok, observation text): a JSON list of specs, or an error saying what was expected.
        ``exclude``: names not to return now (tools a miss_func turn still withholds)."""
        if not isinstance(arguments, dict):
            return False, 'search_tools expects arguments {"query": string, "k": integer}'
        unknown = sorted(set(arguments) - {"query", "k"})
        if unknown:
            return False, f"search_tools takes 'query' (string) and 'k' (integer 1-{MAX_SEARCH_K}); unexpected: {unknown}"
        query, k = arguments.get("query"), arguments.get("k", 5)
        if not isinstance(query, str) or not query.strip():
            return False, f"search_tools: 'query' must be a non-empty string, got {query!r}"
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_SEARCH_K:
            return False, f"search_tools: 'k' must be an integer from 1 to {MAX_SEARCH_K}, got {k!r}"
        cat = self.retriever.catalogue
        allowed = frozenset(self.specs) if self.specs is not None else self.allowed
        hits = [cat[i] for i, _ in self.retriever.best_per_name(
            query, k, keep=lambda n: n not in exclude and (allowed is None or n in allowed))]
        self.seen |= {e.name for e in hits}
        out = [(self.specs[e.name] if self.specs is not None else e.spec).to_dict() for e in hits]
        return True, json.dumps(out, ensure_ascii=False)


def pre_retrieved(task: Task, retriever: Retriever, k: int, allowed: frozenset[str] | None = None) -> tuple[ToolSpec, ...]:
    """The top-``k`` specs for the task's first user message (mode ``pre_retrieved``)."""
    first = next((m.get("content", "") for turn in task.turns for m in turn if m.get("role") == "user"), "")
    if not first.strip():
        return ()
    search = ToolSearch(retriever, allowed)
    ok, text = search.call({"query": first, "k": min(k, MAX_SEARCH_K)})
    return tuple(ToolSpec.from_dict(d) for d in json.loads(text)) if ok else ()
