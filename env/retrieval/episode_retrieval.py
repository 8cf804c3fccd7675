"""What a retrieval episode offers, turn by turn, and what it has shown the model.

A retrieval episode hides the task's tools in a pool (``tool_pool``: the whole catalogue, or N
distractors) and offers them one of three ways (``retrieval``):

- ``none``: the whole pool is offered in the prompt (a long tool list; the task's tools are in it);
- ``search``: only the meta-tool ``search_tools(query, k)`` is offered; each tool it returns is
  offered from the next step on. A call to a tool the model was never shown is scored as a
  hallucinated tool (the model could not have known it), though BFCL's rule of running any
  backend method still applies, as for every multi-turn call;
- ``pre_retrieved``: the top ``k`` pool tools for each user turn's text are offered (the env does
  the retrieval, as a RAG-style agent would).

The ``retrieval`` reward component is the share of the needed tools among those shown
(:func:`toolgym.env.reward.components.retrieval`). Searching costs a step but is not a scored
call: search-only steps are left out of the trajectory that efficiency and the penalties see, so
searching then playing the ground truth scores what the ground truth scores.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from toolgym.env.retrieval.episode_tools import (
    MAX_SEARCH_K,
    SEARCH_TOOLS_SPEC,
    ToolPool,
    ToolSearch,
    build_tool_pool,
    parse_tool_pool,
)
from toolgym.env.parsers import parse
from toolgym.env.retrieval.source import RetrievalSource
from toolgym.env.reward.config import RewardConfig
from toolgym.env.reward.engine import score_output, score_trajectory
from toolgym.env.reward.trajectory import ScoreResult, StepRecord, Trajectory
from toolgym.env.types import Task, ToolCall, ToolSpec

__all__ = ["RETRIEVAL_DEFAULTS", "RETRIEVAL_MODES", "SEARCH_TOOL", "EpisodeRetrieval", "check_retrieval_options",
           "retrieval_settings", "score_retrieval_output"]

RETRIEVAL_MODES = ("none", "search", "pre_retrieved")
SEARCH_TOOL = SEARCH_TOOLS_SPEC.name
#: The episode options of retrieval (EpisodeOptions fields, gym kwargs and reset options alike).
RETRIEVAL_DEFAULTS: dict[str, object] = {"tool_pool": "task", "retrieval": "none", "retriever": "", "retrieval_k": 5}


def retrieval_settings(base: dict[str, object], overrides: dict[str, object]) -> dict[str, object]:
    """``base`` with the retrieval keys of ``overrides`` applied, validated (ValueError otherwise)."""
    out = {**base, **{k: overrides[k] for k in RETRIEVAL_DEFAULTS if k in overrides}}
    check_retrieval_options(str(out["tool_pool"]), str(out["retrieval"]), str(out["retriever"]), out["retrieval_k"])  # type: ignore[arg-type]
    return out


def check_retrieval_options(tool_pool: str, mode: str, retriever: str, k: int) -> ToolPool:
    """Validate the reset options of a retrieval episode (ValueError naming what is accepted)."""
    from toolgym.env.retrieval.factory import RETRIEVER_NAMES

    pool = parse_tool_pool(tool_pool)
    if mode not in RETRIEVAL_MODES:
        raise ValueError(f"retrieval must be one of {list(RETRIEVAL_MODES)}, got {mode!r}")
    if retriever and retriever not in RETRIEVER_NAMES:
        raise ValueError(f"retriever must be one of {list(RETRIEVER_NAMES)} (empty = bm25), got {retriever!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_SEARCH_K:
        raise ValueError(f"retrieval_k must be an integer from 1 to {MAX_SEARCH_K}, got {k!r}")
    return pool


class EpisodeRetrieval:
    """The retrieval side of one episode. ``held`` arguments are the names a miss_func turn still
    withholds: they are neither offered nor found until their turn."""

    def __init__(self, task: Task, pool: Sequence[ToolSpec], mode: str, search: ToolSearch | None, k: int):
        self.task = task
        self.pool = tuple(pool)
        self.mode = mode
        self.k = k
        self._by_name = {t.name: t for t in self.pool}
        self._search = search
        self.shown: dict[str, ToolSpec] = {}  # insertion-ordered: the order the model saw them
        if SEARCH_TOOL in self._by_name and mode == "search":
            raise ValueError(f"task {task.id!r} has a tool named {SEARCH_TOOL!r}, which search mode offers itself; "
                             "use retrieval 'none' or 'pre_retrieved' for it")

    @classmethod
    def build(cls, task: Task, *, tool_pool: str, mode: str, retriever: str, k: int, seed: int,
              source: RetrievalSource | None) -> EpisodeRetrieval | None:
        """None for an ordinary episode (the task's own tools, offered as they are)."""
        pool_opt = check_retrieval_options(tool_pool, mode, retriever, k)
        if pool_opt.mode == "task" and mode == "none":
            return None
        if source is None:
            raise ValueError("this environment has no tool catalogue configured, so it cannot run retrieval episodes")
        catalogue = source.catalogue_for(task)
        pool = build_tool_pool(task, catalogue, pool_opt, seed)
        search = None
        if mode != "none":
            search = ToolSearch(source.retriever(retriever, catalogue), specs={t.name: t for t in pool})
        return cls(task, pool, mode, search, k)

    # ------------------------------------------------------------------ what is offered
    def offered(self, held: frozenset[str]) -> list[ToolSpec]:
        if self.mode == "none":
            return [t for t in self.pool if t.name not in held]
        shown = [t for n, t in self.shown.items() if n not in held]
        return [SEARCH_TOOLS_SPEC, *shown] if self.mode == "search" else shown

    def parse_specs(self, held: frozenset[str]) -> list[ToolSpec]:
        """The specs calls are parsed against: what is offered, then the rest of the pool (a call to
        a pool tool the model guessed still parses with its schema; it is scored as unoffered)."""
        offered = self.offered(held)
        names = {t.name for t in offered}
        return offered + [t for t in self.pool if t.name not in names and t.name not in held]

    def seen(self) -> frozenset[str]:
        """Every tool name the model was shown so far (the whole pool in mode ``none``)."""
        if self.mode == "none":
            return frozenset(self._by_name)
        return frozenset(self.shown)

    # ------------------------------------------------------------------ retrieving
    def search(self, call: ToolCall, held: frozenset[str]) -> tuple[bool, str]:
        """Run one ``search_tools`` call: (ok, observation text)."""
        if self._search is None or self.mode != "search":
            return False, f"{SEARCH_TOOL} is not offered in this episode"
        ok, text = self._search.call(call.arguments, exclude=held)
        if ok:
            self._show(text)
        return ok, text

    def pre_retrieve(self, text: str, held: frozenset[str]) -> None:
        """Mode ``pre_retrieved``: offer the top ``k`` pool tools for a user turn's text."""
        if self.mode != "pre_retrieved" or self._search is None or not text.strip():
            return
        ok, found = self._search.call({"query": text, "k": self.k}, exclude=held)
        if ok:
            self._show(found)

    def _show(self, found: str) -> None:
        for spec in json.loads(found):
            self.shown.setdefault(spec["name"], self._by_name[spec["name"]])


def score_retrieval_output(task: Task, output: str, template: str | None, config: RewardConfig | None,
                           retr: EpisodeRetrieval | None) -> ScoreResult:
    """Score one raw output as the only step of a retrieval episode (the ``Score`` RPC's path):
    parsed against the pool, a call to a tool that was not offered scored as hallucinated, and the
    ``retrieval`` component over what was offered. Mode ``search`` is not scorable this way (its
    results must be fed back to the model) and ``retr`` must not be in it."""
    if retr is None:
        return score_output(task, output, template, config)
    if retr.mode == "search":
        raise ValueError("a search-mode episode is played step by step (its search results are fed back), not scored from one output")
    held = frozenset(n for names in (task.missed_function or {}).values() for n in names)
    first = next((m.get("content", "") for turn in task.turns[:1] for m in turn if m.get("role") == "user"), "")
    retr.pre_retrieve(first, held)
    parsed = parse(output, template, retr.parse_specs(held))
    rec = StepRecord(output=output, parsed=parsed, offered=frozenset(t.name for t in retr.offered(held)))
    return score_trajectory(task, Trajectory(steps=(rec,), retrieved=retr.seen()), config)
