"""Which of a step's calls run, and what the model is told about the ones that do not.

BFCL's multi-turn executor (``bfcl_eval/eval_checker/multi_turn_eval/multi_turn_utils.py``)
``eval``s each call against the task's backend instances: any public method of an involved
class runs, *whether or not it was offered* (a miss_func tool withheld until a later turn, an
``excluded_function``), a few names are refused outright (``kill``, ``exit``, ``quit``,
``remove``, ``unlink``, ``popen``, ``Popen``, ``run``), and any other name fails as an
undefined name. toolgym dispatches the same way, with one difference that matters for what the
model may learn: the message for an unknown name lists only the tools offered in the current
turn, never the toolset's full list (which holds the withheld and excluded names the category
exists to hide). Calls to tools that were not offered are marked in the step record
(``StepRecord.offered``), and the reward engine scores them as hallucinated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from toolgym.env.textsafe import clean_text
from toolgym.env.types import ToolCall

#: Names BFCL's executor refuses before evaluating a call (``multi_turn_utils``); the check is
#: on the method name, so a dotted ``x.kill`` is refused too.
BFCL_REFUSED = frozenset({"kill", "exit", "quit", "remove", "unlink", "popen", "Popen", "run"})


@dataclass(frozen=True)
class Verdict:
    """How one call is handled: ``run`` it, or refuse it with ``error`` (shown to the model).
    ``offered``: the name was offered in this turn (False = withheld, excluded or unknown)."""

    run: bool
    offered: bool
    error: str | None = None


def _method(name: str) -> str:
    # BFCL takes the part after the first "." of a dotted call as the method name.
    return name.split(".")[1] if "." in name else name


def classify(call: ToolCall, offered: Sequence[str], toolset: Iterable[str] | None, *, bfcl: bool) -> Verdict:
    """Decide one call. ``offered``: tool names offered this turn, in prompt order; ``toolset``:
    every name the backend implements (None when unknown: then only offered names run);
    ``bfcl``: apply BFCL's refused-name rule (stateful BFCL tasks)."""
    name = call.name
    is_offered = name in offered
    if bfcl and _method(name) in BFCL_REFUSED:
        return Verdict(False, is_offered, f"call to {clean_text(name)!r} is not allowed (BFCL's executor refuses {_method(name)!r})")
    if is_offered:
        return Verdict(True, True)
    if toolset is not None and name in (toolset if isinstance(toolset, (set, frozenset)) else set(toolset)):
        return Verdict(True, False)  # BFCL runs it: the method exists on the backend
    listed = ", ".join(offered) or "(none)"
    return Verdict(False, False, f"unknown tool {clean_text(name)!r}; the tools offered now are: {listed}")


def run_calls(calls: Sequence[ToolCall], verdicts: Sequence[Verdict], execute: Callable[[ToolCall], Any],
              refused: Callable[[ToolCall, str], Any], failed: Callable[[ToolCall, BaseException], Any]) -> list[Any]:
    """Run each call the verdicts allow, in order; a refused call becomes ``refused(call, error)``
    and a call whose execution raised becomes ``failed(call, exc)``, so the step always comes
    back with one outcome per call and is recorded whatever happened (issue 11: a step is never
    lost after some of its calls ran)."""
    out = []
    for call, v in zip(calls, verdicts):
        if not v.run:
            out.append(refused(call, v.error or "not run"))
            continue
        try:
            out.append(execute(call))
        except Exception as e:  # noqa: BLE001 - a sandbox failure is this call's error outcome
            out.append(failed(call, e))
    return out
