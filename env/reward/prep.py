"""Per-task facts the reward engine needs for every output, computed once per task object.

A task is scored many times (one output per sample, thousands of samples); what depends on the
task alone — its ground truth read against its tool schemas, the needed tool names, the optimal
number of calls, the schema of each tool, the wording of each expected call in error messages —
is computed on first use and kept on the :class:`~toolgym.env.types.Task` object itself.

Keyed by object identity, never by task id: two inline tasks with the same id and different
content are two objects and never share an entry. The entry also remembers the exact
``ground_truth`` and ``tools`` objects it was computed from and is rebuilt if either is not the
task's own any more. Nothing is cached across tasks; values are read, never modified.
"""

from __future__ import annotations

from typing import Any

from toolgym.env.reward import components as C
from toolgym.env.reward.ast_call import _prepare
from toolgym.env.types import Task

_KEY = "_toolgym_reward_prep"


class TaskPrep:
    __slots__ = ("ground_truth", "tools", "_ast", "_needed", "schemas", "expected_text")

    def __init__(self, task: Task):
        self.ground_truth = task.ground_truth
        self.tools = task.tools
        self._ast: tuple[list, int] | None = None
        self._needed: tuple[list[str] | None, int] | None = None
        self.schemas: dict[str, Any] = {t.name: t.parameters for t in task.tools}
        #: ground-truth index → its wording in "expected call #j ... has no matching call"
        self.expected_text: dict[int, str] = {}

    def needed(self, task: Task) -> tuple[list[str] | None, int]:
        """(:func:`components.expected_tool_names`, :func:`components.optimal_calls`) of the task;
        computed where the engine used to compute them, so an error surfaces at the same point."""
        if self._needed is None:
            names = C.expected_tool_names(task)
            self._needed = (names, C.optimal_calls(task, names))
        return self._needed

    def ast(self) -> tuple[list, int]:
        """The ground truth read against the schemas (:func:`ast_call._prepare`); a malformed
        ground truth raises ``ValueError`` every time (nothing is cached then)."""
        if self._ast is None:
            self._ast = _prepare(self.ground_truth, self.tools)
        return self._ast


def task_prep(task: Task) -> TaskPrep:
    d = task.__dict__
    p = d.get(_KEY)
    if p is None or p.ground_truth is not task.ground_truth or p.tools is not task.tools:
        p = d[_KEY] = TaskPrep(task)
    return p
