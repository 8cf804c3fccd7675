"""Training data from toolgym tasks: SFT conversations from ground truth, and RL prompt rows.

SFT (stage 2 of the seeds): every task with a ground truth becomes one chat conversation in one of the env's
agent templates, rendered with the env's own renderers (``toolgym.env.parsers``) exactly as an episode would show
it — the same system prompt (tool specs + instructions in the template), the same user text, the same
observation framing — with the ground-truth actions as the assistant turns:

- ``ast`` tasks: one assistant turn with the ground-truth calls, each argument taking BFCL's *first* allowed
  value (an optional argument whose first allowed value is ``""`` is left out, which BFCL accepts);
- ``irrelevance`` tasks: one assistant turn with a final answer that makes no call;
- ``relevance`` tasks are skipped (BFCL gives no ground truth for them);
- ``multi_turn`` tasks: per user turn, an assistant turn with that turn's ground-truth calls (parsed from BFCL's
  call strings with the env's Python-call parser — never ``eval``), a tool-result observation, and an assistant
  turn that ends the user turn; the next user turn follows as the env's observation. Tool results are a
  placeholder (``sft.multi_turn_observation``): they sit in non-trained positions and only shape context.

Task types (the seeds' four training goals) — how BFCL categories map onto them:

============== ===========================================================================================
type           BFCL categories
============== ===========================================================================================
tool_selection simple_*, live_simple, and multiple/live_multiple tasks offering fewer than
               ``sft.retrieval_min_tools`` tools: pick the right tool and fill its arguments
retrieval      single-turn tasks offering at least ``sft.retrieval_min_tools`` tools (multiple, live_multiple,
               parallel_multiple, ...): find the tool among many
planning       parallel, parallel_multiple, live_parallel, live_parallel_multiple with fewer tools than the
               retrieval threshold, multi_turn_base and multi_turn_long_context: several calls / steps
timing         irrelevance, live_irrelevance, live_relevance, multi_turn_miss_param, multi_turn_miss_func:
               when to call, when not to, and when to ask first
============== ===========================================================================================

``task_weights`` give each type's share of the SFT mix; types absent from the data are dropped and the shares
renormalised; a type with fewer examples than its share asks for is up-sampled (``allow_upsample``) or capped.
That weighting lives in :mod:`toolgym.trainer.data_mix` and is re-exported here.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from toolgym.trainer.config import TrainConfig
from toolgym.trainer.data_mix import normalized_weights, type_distribution, weighted_mix

TIMING_CATEGORIES = frozenset({"irrelevance", "live_irrelevance", "live_relevance", "multi_turn_miss_param", "multi_turn_miss_func"})
PLANNING_CATEGORIES = frozenset(
    {"parallel", "parallel_multiple", "live_parallel", "live_parallel_multiple", "multi_turn_base", "multi_turn_long_context"}
)
NO_CALL_ANSWER = "None of the available tools can help with this request, so I will not call any."
END_TURN_ANSWER = "Done."
ASK_ANSWER = "I need more information to do that. Could you provide the missing details?"


def task_type(task: Any, retrieval_min_tools: int = 4) -> str:
    """The seeds' task type of a toolgym task (see the table in the module docstring)."""
    cat = getattr(task, "category", "") or ""
    kind = getattr(task, "kind", "")
    if cat in TIMING_CATEGORIES or kind in ("irrelevance", "relevance"):
        return "timing"
    if kind == "multi_turn":
        return "planning"
    if len(getattr(task, "tools", ()) or ()) >= retrieval_min_tools:
        return "retrieval"
    if cat in PLANNING_CATEGORIES or len(getattr(task, "ground_truth", ()) or ()) > 1:
        return "planning"
    return "tool_selection"


def _first_allowed(values: Any) -> tuple[bool, Any]:
    """BFCL possible-answer list → (keep?, value). ``""`` first means "may be omitted": omit it."""
    if not isinstance(values, list):
        return True, values
    if not values:
        return False, None
    v = values[0]
    if v == "" and len(values) >= 1:
        return False, None
    return True, v


def _gt_value(v: Any) -> Any:
    """Nested BFCL values (dicts/lists of allowed-value lists) → one concrete value."""
    if isinstance(v, dict):
        out = {}
        for k, vals in v.items():
            keep, val = _first_allowed(vals)
            if keep:
                out[k] = _gt_value(val)
        return out
    if isinstance(v, list):
        return [_gt_value(x) for x in v]
    return v


class UnsatisfiableGroundTruth(ValueError):
    """A task's ground truth cannot be written as a call its own scorer accepts (a BFCL data bug:
    the listed reasons are in ``env/data/NOTES.md``); the SFT builder skips such tasks."""


def ast_ground_truth_calls(task: Any) -> list[Any]:
    """The ground-truth calls of an ``ast`` task, each argument at its first allowed value.

    Only parameters the tool's schema declares are written: BFCL's possible answers sometimes list
    one that the schema lacks (``parallel_multiple_26`` lists a nested field as a top-level
    parameter); it is left out when its allowed values let it be omitted. Raises
    :class:`UnsatisfiableGroundTruth` when no call could pass: a needed parameter the schema does not
    declare, or a required parameter with no allowed value.
    """
    from toolgym.env.types import ToolCall

    schemas = {t.name: (t.parameters or {}) for t in task.tools}
    calls = []
    for entry in task.ground_truth or ():
        if not isinstance(entry, dict):
            continue
        for name, params in entry.items():
            schema = schemas.get(name, {})
            props = schema.get("properties") or {}
            required = set(schema.get("required") or ())
            for r in required - set(params or {}):
                raise UnsatisfiableGroundTruth(f"task {task.id!r}: {name} requires {r!r} but the ground truth gives no value for it")
            args = {}
            for p, allowed in (params or {}).items():
                omittable = isinstance(allowed, list) and "" in allowed and p not in required
                if p not in props:
                    if omittable:
                        continue
                    raise UnsatisfiableGroundTruth(f"task {task.id!r}: {name}'s ground truth needs {p!r}, which its schema does not declare")
                if isinstance(allowed, list) and not allowed:
                    if p in required:
                        raise UnsatisfiableGroundTruth(f"task {task.id!r}: required {name}.{p} has no allowed value")
                    continue
                if p in required and isinstance(allowed, list) and allowed[0] == "":
                    # a required argument cannot be omitted: take its first non-empty allowed value
                    allowed = [v for v in allowed if v != ""] or [""]
                    args[p] = _gt_value(allowed[0])
                    continue
                keep, val = _first_allowed(allowed)
                if keep:
                    args[p] = _gt_value(val)
            calls.append(ToolCall(name=name, arguments=args))
    return calls


def multi_turn_ground_truth_calls(task: Any) -> list[list[Any]]:
    """One list of calls per user turn, parsed from BFCL's call strings (Python syntax, no ``eval``)."""
    from toolgym.env.parsers.pythonic import parse_python_calls

    from toolgym.env.types import ToolCall

    params = {t.name: list(((t.parameters or {}).get("properties") or {}).keys()) for t in task.tools}
    turns = []
    for turn in task.ground_truth or ():
        strings = [s for s in (turn or []) if isinstance(s, str) and s.strip()]
        calls: list[Any] = []
        for s in strings:
            for c in parse_python_calls(s, allow_positional=True):
                if any(k.startswith("__arg") for k in c.arguments):  # BFCL writes e.g. sort('a.pdf'): name by position
                    names = params.get(c.name, [])
                    args = {}
                    for k, v in c.arguments.items():
                        if k.startswith("__arg"):
                            i = int(k[5:])
                            if i >= len(names):
                                raise ValueError(f"{c.name}: positional argument #{i} has no parameter name")
                            args[names[i]] = v
                        else:
                            args[k] = v
                    c = ToolCall(name=c.name, arguments=args)
                calls.append(c)
        turns.append(calls)
    return turns


def _turn_text(task: Any, turn: int) -> str:
    msgs = task.turns[turn] if turn < len(task.turns) else ()
    return "\n".join(m.get("content", "") for m in msgs if m.get("role") != "system")


def _offered_tools(task: Any, turn: int) -> list[Any]:
    held: set[str] = set()
    for t_idx, names in (getattr(task, "missed_function", None) or {}).items():
        if int(t_idx) > turn:
            held.update(names)
    return [t for t in task.tools if t.name not in held]


def system_prompt(task: Any, template: str) -> str:
    """The system prompt an episode of ``task`` starts with (mirrors the env's episode rendering)."""
    from toolgym.env.parsers import render_system_prompt

    system = render_system_prompt(_offered_tools(task, 0), template)
    extra = "\n".join(m.get("content", "") for m in (task.turns[0] if task.turns else ()) if m.get("role") == "system")
    return extra + "\n\n" + system if extra else system


def prompt_messages(task: Any, template: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system_prompt(task, template)}, {"role": "user", "content": _turn_text(task, 0)}]


def sft_messages(task: Any, template: str, *, observation: str = "Tool executed successfully.") -> list[dict[str, str]] | None:
    """The ground-truth conversation of ``task`` in ``template`` (None when the task has no usable ground truth)."""
    from toolgym.env.parsers import render_calls, render_final_answer, render_observation, render_system_prompt

    msgs = prompt_messages(task, template)
    kind = task.kind
    if kind == "ast":
        calls = ast_ground_truth_calls(task)
        if not calls:
            return None
        msgs.append({"role": "assistant", "content": render_calls(calls, template)})
        return msgs
    if kind == "irrelevance":
        msgs.append({"role": "assistant", "content": render_final_answer(NO_CALL_ANSWER, template)})
        return msgs
    if kind == "multi_turn":
        per_turn = multi_turn_ground_truth_calls(task)
        if not per_turn:
            return None
        for i, calls in enumerate(per_turn):
            if i > 0:
                prev = {t.name for t in _offered_tools(task, i - 1)}
                new_tools = [t for t in _offered_tools(task, i) if t.name not in prev]
                obs = f"User: {_turn_text(task, i)}"
                if new_tools:
                    obs = render_system_prompt(new_tools, template, instructions="New tools are available:") + "\n\n" + obs
                msgs.append({"role": "user", "content": obs})
            # one call per action: BFCL's calls of a turn run in order and may depend on each other (cd, then ls)
            for c in calls:
                msgs.append({"role": "assistant", "content": render_calls([c], template)})
                msgs.append({"role": "user", "content": render_observation([(c.name, observation)], template)})
            answer = END_TURN_ANSWER if calls else ASK_ANSWER
            msgs.append({"role": "assistant", "content": render_final_answer(answer, template)})
        return msgs
    return None  # relevance / final_answer without a reference trajectory


def pick_template(rng: random.Random, templates: Sequence[str], diversity: bool) -> str:
    return rng.choice(list(templates)) if diversity and len(templates) > 1 else templates[0]


def load_tasks(suite: str, categories: Sequence[str] | None) -> list[Any]:
    from toolgym.env.tasks.suite import load_suite

    return list(load_suite(suite, categories=list(categories) if categories else None))


# ------------------------------------------------------------------------------------------ SFT


def sft_examples(cfg: TrainConfig, tasks: Sequence[Any] | None = None, *, exclude_ids: Iterable[str] = ()) -> list[dict[str, Any]]:
    """All formatted SFT examples (before weighting) as dicts: messages, task_id, task_type, template, category."""
    rng = random.Random(cfg.data.seed * 7919 + 1)
    if tasks is None:
        cats = cfg.data.sft_categories or list(cfg.data.categories)
        if cfg.data.sft_categories is None and cfg.sft.task_weights.get("planning", 0) > 0:
            cats = list(dict.fromkeys(list(cats) + ["multi_turn_base"]))
        tasks = load_tasks(cfg.server.suite, cats)
    excluded = set(exclude_ids)
    out = []
    for task in tasks:
        if task.id in excluded:
            continue
        template = pick_template(rng, cfg.data.templates, cfg.data.template_diversity)
        others = [t for t in cfg.data.templates if t != template]
        rng.shuffle(others)
        msgs = None
        for tpl in [template, *others]:  # e.g. a parallel task cannot be written in a one-call template
            try:
                msgs = sft_messages(task, tpl, observation=cfg.sft.multi_turn_observation)
            except ValueError:
                continue
            template = tpl
            break
        if msgs is None:
            continue
        out.append(
            {
                "messages": msgs,
                "task_id": task.id,
                "task_type": task_type(task, cfg.sft.retrieval_min_tools),
                "template": template,
                "category": task.category,
            }
        )
    return out


# ------------------------------------------------------------------------------------------ RL prompts


@dataclass
class TaskSplit:
    train: list[str]
    heldout: list[str]
    prompts: dict[str, str]  # task id -> user text (for logs)
    kinds: dict[str, str]


def prompt_token_length(tokenizer: Any, task: Any, template: str) -> int:
    ids = tokenizer.apply_chat_template(prompt_messages(task, template), tokenize=True, add_generation_prompt=True, return_dict=False)
    return len(ids)


def rl_split(cfg: TrainConfig, tokenizer: Any | None = None, tasks: Sequence[Any] | None = None) -> TaskSplit:
    """Train/held-out task ids for RL and evaluation, deterministic in ``data.seed``.

    Uses the local task definitions (``toolgym.env.tasks``) to know prompt lengths; tasks whose prompt (in the
    first configured template) exceeds ``data.max_prompt_tokens`` are dropped, and kinds without an offline
    reference (none here: every BFCL kind is scored by the server) are kept.
    """
    if tasks is None:
        tasks = load_tasks(cfg.server.suite, cfg.data.categories)
    tasks = sorted(tasks, key=lambda t: t.id)
    if cfg.data.max_prompt_tokens and tokenizer is not None:
        tpl = cfg.data.templates[0]
        tasks = [t for t in tasks if prompt_token_length(tokenizer, t, tpl) <= cfg.data.max_prompt_tokens]
    rng = random.Random(cfg.data.seed)
    tasks = list(tasks)
    rng.shuffle(tasks)
    if cfg.data.max_tasks:
        tasks = tasks[: cfg.data.max_tasks]
    k = min(cfg.data.heldout_tasks, max(0, len(tasks) - 1))
    held, train = tasks[:k], tasks[k:]
    return TaskSplit(
        train=[t.id for t in train],
        heldout=[t.id for t in held],
        prompts={t.id: _turn_text(t, 0) for t in tasks},
        kinds={t.id: t.kind for t in tasks},
    )


def rl_rows(task_ids: Sequence[str], cfg: TrainConfig, prompts: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """GRPO dataset rows: one per (task, episode seed); template fixed per row so a group shares it."""
    rng = random.Random(cfg.data.seed * 31 + 7)
    rows = []
    for tid in task_ids:
        for s in range(cfg.data.seeds_per_task):
            seed = rng.randrange(2**31)
            rows.append(
                {
                    "prompt": (prompts or {}).get(tid, tid),
                    "task_id": tid,
                    "seed": seed,
                    "template": pick_template(rng, cfg.data.templates, cfg.data.template_diversity),
                }
            )
    rng.shuffle(rows)
    return rows


def dump_jsonl(rows: Iterable[dict[str, Any]], path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


__all__ = [
    "TaskSplit",
    "UnsatisfiableGroundTruth",
    "ast_ground_truth_calls",
    "load_tasks",
    "multi_turn_ground_truth_calls",
    "normalized_weights",
    "pick_template",
    "prompt_messages",
    "rl_rows",
    "rl_split",
    "sft_examples",
    "sft_messages",
    "system_prompt",
    "task_type",
    "type_distribution",
    "weighted_mix",
]
