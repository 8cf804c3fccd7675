"""Completion check for stateful multi-turn tasks (BFCL ``multi_turn_*``; design §4).

The environment records one :class:`TurnRecord` per user turn (the calls the model made in
that turn, the text each call returned, and the backend state snapshot at the end of the
turn). :func:`check_multi_turn` compares them with a :class:`GroundTruthReplay` (the same
backends driven by the task's ground-truth calls, see
:func:`toolgym.env.tools.bfcl_backends.replay_ground_truth`) under BFCL v4's rules
(``bfcl_eval/eval_checker/multi_turn_eval/multi_turn_checker.py``):

- A turn whose ground truth is **empty** (the miss_func / miss_param turns where the model
  cannot act) is not checked: BFCL v4 executes whatever the model called there (so later
  turns see its effect) and moves on. BFCL also ships a ``multi_turn_irrelevance_checker``
  ("no call in an empty turn") that its v4 runner never calls; ``strict_irrelevance=True``
  applies it. Whether the model *should* have called is otherwise judged by the
  ``timing_quality`` component, not here.
- A turn whose ground truth is **non-empty** passes when all of:

  1. the model made at least one call in the turn (BFCL: ``empty_turn_model_response``);
  2. state: for every backend class and every public attribute of the ground-truth
     snapshot, the model's snapshot after the turn holds an equal value under Python's
     ``==`` on the decoded values (BFCL's ``state_checker``; private ``_``-attributes are
     never compared; keys keep their types, see :mod:`toolgym.env.tools.state_codec`);
  3. results: the ground-truth results of *this* turn are contained, as a multiset and in
     any order, in the results of *all the model's calls so far* (this turn and every
     earlier one), so a value fetched in an earlier turn need not be fetched again (BFCL's
     ``response_checker`` with ``_is_subsequence_unordered``).

BFCL stops at the first failing turn and reports the task as failed; here every turn is
judged (against the model's own state trajectory) so a partial score exists. ``ok`` is
exactly BFCL's verdict: every turn passes.

Results are compared as text, exactly as BFCL renders them: a ``str`` result as is, a
``dict`` as ``json.dumps``, anything else as ``str()``, and a failed call as
``"Error during execution: <message>"`` (which is the message of the ``ToolError`` the
BFCL toolset raises, so the env records ``str(error)`` for a failed call).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolgym.env.tools.state_codec import StateImage, decode
from toolgym.env.types import ToolCall

__all__ = [
    "TurnRecord",
    "GroundTruthReplay",
    "MultiTurnVerdict",
    "check_multi_turn",
    "state_differences",
]

#: How many differing paths / missing results one error message lists at most.
_MAX_LISTED = 3
#: Long values in error messages are cut to this many characters.
_MAX_SHOWN = 160


@dataclass(frozen=True)
class TurnRecord:
    """What happened in one user turn of an episode.

    ``calls``: every call the model made in the turn that was executed, in order (a call
    to an unknown tool or with bad arguments is still a call; an unparseable action is not).
    ``results``: the text each call returned, in the same order; for a failed call the
    error text (``str`` of the ``ToolError``). ``state``: the toolset's ``state()`` after
    the turn's last call (the state before the turn if it made none).
    """

    calls: Sequence[ToolCall] = ()
    results: Sequence[str] = ()
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GroundTruthReplay:
    """The ground truth of one stateful task, executed.

    ``turn_calls[i]`` / ``turn_results[i]``: the ground-truth calls of user turn ``i`` and
    their result texts; ``turn_states[i]``: the backend state after them (for an empty turn,
    the state carried over). ``initial_state``: the state before any call. Everything is
    JSON-able (:meth:`to_dict` / :meth:`from_dict`), so a replay can be cached.
    """

    task_id: str
    turn_calls: tuple[tuple[ToolCall, ...], ...]
    turn_results: tuple[tuple[str, ...], ...]
    turn_states: tuple[dict[str, Any], ...]
    initial_state: dict[str, Any] = field(default_factory=dict)
    long_context: bool = False

    @property
    def num_turns(self) -> int:
        return len(self.turn_calls)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "long_context": self.long_context,
            "turn_calls": [[{"name": c.name, "arguments": c.arguments, "raw": c.raw} for c in turn] for turn in self.turn_calls],
            "turn_results": [list(r) for r in self.turn_results],
            "turn_states": list(self.turn_states),
            "initial_state": self.initial_state,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GroundTruthReplay:
        return cls(
            task_id=str(d.get("task_id", "")),
            turn_calls=tuple(
                tuple(ToolCall(name=c["name"], arguments=dict(c.get("arguments") or {}), raw=c.get("raw", "")) for c in turn)
                for turn in d["turn_calls"]
            ),
            turn_results=tuple(tuple(r) for r in d["turn_results"]),
            turn_states=tuple(dict(s) for s in d["turn_states"]),
            initial_state=dict(d.get("initial_state") or {}),
            long_context=bool(d.get("long_context", False)),
        )


@dataclass(frozen=True)
class MultiTurnVerdict:
    """The completion verdict of a stateful task.

    ``turns_ok[i]``: whether user turn ``i`` passed (an unchecked empty-ground-truth turn
    counts as passed). ``score``: the fraction of *checked* turns that passed (turns with a
    non-empty ground truth, plus the empty ones under ``strict_irrelevance``), in [0, 1].
    ``ok``: every turn passed and the episode covered every turn (BFCL's task verdict).
    ``errors``: one readable line per problem, prefixed with its turn.
    """

    ok: bool
    turns_ok: tuple[bool, ...]
    score: float
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "turns_ok": list(self.turns_ok), "score": self.score, "errors": list(self.errors)}


def _short(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr)
        except (TypeError, ValueError):  # non-str keys of a decoded state: Python's own spelling
            text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _diff(model: Any, truth: Any, path: str, out: list[str]) -> None:
    """Append up to ``_MAX_LISTED`` readable differences between two decoded values."""
    if len(out) >= _MAX_LISTED or model == truth:
        return
    before = len(out)
    if isinstance(model, Mapping) and isinstance(truth, Mapping):
        for key in truth:
            sub = f"{path}.{key!s}" if isinstance(key, str) else f"{path}[{key!r}]"
            if key not in model:
                out.append(f"{sub}: missing (expected {_short(truth[key])})")
            else:
                _diff(model[key], truth[key], sub, out)
            if len(out) >= _MAX_LISTED:
                return
        for key in model:
            if key not in truth:
                sub = f"{path}.{key!s}" if isinstance(key, str) else f"{path}[{key!r}]"
                out.append(f"{sub}: unexpected {_short(model[key])}")
                if len(out) >= _MAX_LISTED:
                    return
    elif isinstance(model, StateImage) and isinstance(truth, StateImage) and model.kind == truth.kind:
        _diff(model.fields, truth.fields, path, out)  # a File / Directory: walk what its __eq__ compares
    elif isinstance(model, (list, tuple)) and type(model) is type(truth) and len(model) == len(truth):
        for i, (m, t) in enumerate(zip(model, truth)):
            _diff(m, t, f"{path}[{i}]", out)
            if len(out) >= _MAX_LISTED:
                return
    if len(out) == before:  # a leaf, or a difference the walk cannot name (type, nan, file kind)
        if type(model) is type(truth):
            out.append(f"{path}: {_short(model)} != expected {_short(truth)}")
        else:
            out.append(f"{path}: {_short(model)} ({type(model).__name__}) != expected {_short(truth)} ({type(truth).__name__})")


def state_differences(model_state: Mapping[str, Any], truth_state: Mapping[str, Any]) -> list[str]:
    """Differences that fail BFCL's state check, as readable ``Class.attr...`` paths.

    Snapshots are :mod:`toolgym.env.tools.state_codec` images; values are compared after
    decoding, with Python's ``==`` as BFCL's ``_compare_instances`` does (``2 == 2.0``,
    ``"2" != 2``, dict and set order ignored). Like BFCL, only the public attributes of the
    ground-truth snapshot are compared (the model's extra attributes are not); a class or
    attribute the model's snapshot lacks is a difference. Empty when equal.
    """
    out: list[str] = []
    for cls_name, truth_attrs in truth_state.items():
        model_attrs = model_state.get(cls_name)
        if not isinstance(model_attrs, Mapping):
            out.append(f"{cls_name}: no state recorded")
            continue
        for attr, truth_value in truth_attrs.items():
            if attr.startswith("_"):
                continue  # BFCL never compares private attributes (a snapshot has none anyway)
            if attr not in model_attrs:
                out.append(f"{cls_name}.{attr}: missing")
            else:
                model_value, truth_decoded = decode(model_attrs[attr]), decode(truth_value)
                if model_value != truth_decoded:
                    _diff(model_value, truth_decoded, f"{cls_name}.{attr}", out)
            if len(out) >= _MAX_LISTED:
                return out
    return out


def _missing_results(truth_results: Sequence[str], model_results: Sequence[str]) -> list[str]:
    """Ground-truth results not contained (as a multiset) in the model's results."""
    available = Counter(model_results)
    missing: list[str] = []
    for item in truth_results:
        if available[item] > 0:
            available[item] -= 1
        else:
            missing.append(item)
    return missing


def check_multi_turn(
    model_turns: Sequence[TurnRecord],
    gt: GroundTruthReplay,
    *,
    strict_irrelevance: bool = False,
) -> MultiTurnVerdict:
    """Judge an episode of a stateful task against its ground-truth replay (module docstring).

    ``model_turns`` may be shorter than the ground truth (the episode ended early: the
    missing turns fail); longer is a caller error (``ValueError``).
    """
    n = gt.num_turns
    if len(model_turns) > n:
        raise ValueError(f"{len(model_turns)} turn records for a task of {n} turns")
    if len(gt.turn_results) != n or len(gt.turn_states) != n:
        raise ValueError("inconsistent ground-truth replay: calls, results and states differ in length")

    turns_ok: list[bool] = []
    errors: list[str] = []
    checked = 0
    passed = 0
    all_results: list[str] = []
    for i in range(n):
        truth_calls = gt.turn_calls[i]
        if i >= len(model_turns):
            turns_ok.append(False)
            checked += 1
            errors.append(f"turn {i}: not reached (the episode ended after {len(model_turns)} turns)")
            continue
        rec = model_turns[i]
        if len(rec.results) != len(rec.calls):
            raise ValueError(f"turn {i}: {len(rec.calls)} calls but {len(rec.results)} results")
        all_results.extend(str(r) for r in rec.results)

        if not truth_calls:
            if strict_irrelevance:
                checked += 1
                if rec.calls:
                    names = ", ".join(c.name for c in rec.calls)
                    errors.append(f"turn {i}: calls made when none could be ({names})")
                    turns_ok.append(False)
                    continue
                passed += 1
            turns_ok.append(True)
            continue

        checked += 1
        turn_errors: list[str] = []
        if not rec.calls:
            turn_errors.append(f"turn {i}: no call made ({len(truth_calls)} expected)")
        diffs = state_differences(rec.state, gt.turn_states[i])
        if diffs:
            turn_errors.append(f"turn {i}: state differs from the ground truth: " + "; ".join(diffs))
        missing = _missing_results(gt.turn_results[i], all_results)
        if missing:
            shown = "; ".join(_short(m) for m in missing[:_MAX_LISTED])
            more = f" (+{len(missing) - _MAX_LISTED} more)" if len(missing) > _MAX_LISTED else ""
            turn_errors.append(f"turn {i}: {len(missing)} expected result(s) never returned: {shown}{more}")
        errors.extend(turn_errors)
        turns_ok.append(not turn_errors)
        passed += not turn_errors

    ok = all(turns_ok) and len(model_turns) == n
    score = passed / checked if checked else (1.0 if ok else 0.0)
    return MultiTurnVerdict(ok=ok, turns_ok=tuple(turns_ok), score=score, errors=tuple(errors))
