"""Resolving the task a request refers to: by id in the server's suite, or inline JSON."""

from __future__ import annotations

import json

from toolgym.env.server.errors import invalid, not_found
from toolgym.env.tasks.jsonl import task_from_bfcl_record, task_from_dict
from toolgym.env.tasks.suite import Suite
from toolgym.env.types import Task

MAX_INLINE_TASK_CHARS = 1 << 20


def task_from_json(text: str) -> Task:
    """Parse an inline task: a toolgym JSONL task object, or a BFCL record (has ``function``)."""
    if len(text) > MAX_INLINE_TASK_CHARS:
        raise invalid(f"inline task is {len(text)} characters; at most {MAX_INLINE_TASK_CHARS} are accepted — register large tasks in a suite file instead")
    try:
        d = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise invalid(f"task_json is not valid JSON ({e}); send one task object, e.g. {{\"id\": ..., \"kind\": ..., \"tools\": [...]}}") from None
    if not isinstance(d, dict):
        raise invalid(f"task_json must be a JSON object, got {type(d).__name__}")
    try:
        return task_from_bfcl_record(d) if "function" in d else task_from_dict(d)
    except (KeyError, TypeError, ValueError) as e:
        raise invalid(f"task_json is not a valid task: {e}") from None


def resolve_task(suite: Suite, task_id: str, task_json: str) -> Task:
    if task_id and task_json:
        raise invalid("both task_id and task_json are set; set exactly one: task_id for a task of the server's suite, "
                      "or task_json for an inline task")
    if task_json:
        return task_from_json(task_json)
    if not task_id:
        raise invalid("no task given: set task_id (a task of the server's suite; see EnvService.ListTasks) or task_json (an inline task)")
    if task_id in suite:
        return suite.get(task_id)
    raise not_found(_unknown_task(suite, task_id))


def _unknown_task(suite: Suite, task_id: str) -> str:
    """NOT_FOUND text naming the category when the id has a known one.

    Suite.get's own hint compares the id with every task id (difflib over thousands of ids,
    up to ~40 ms per request): an unknown id must not cost the server more than a known one.
    """
    shown = task_id if len(task_id) <= 80 else task_id[:80] + "…"
    msg = f"no task {shown!r} in the server's suite ({len(suite)} tasks); list the ids with EnvService.ListTasks"
    category = task_id.rsplit("_", 1)[0] if "_" in task_id and len(task_id) <= 200 else ""
    if category and category in suite.categories():
        msg += f" (categories=[{category!r}])"
    near = suite._suggest(task_id) if len(task_id) <= 200 else []  # bounded: within the id's family only
    if near:
        msg += f"; nearest ids: {', '.join(repr(n) for n in near)}"
    return msg
