"""What the reward engine scores: a trajectory of model steps and (optionally) their executed calls.

Offline scoring (``Score``) builds a one-step trajectory whose calls were never executed;
the environment builds one step per model action with every call's :class:`CallOutcome`.
One shape for both is what keeps RL reward and eval score from ever disagreeing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toolgym.env.types import ParsedAction, ToolCall


@dataclass(frozen=True)
class CallOutcome:
    """The result of executing one call in the sandbox.

    ``state_digest`` is a hash of the backend state right after the call, None when unknown
    (offline scoring or a stateless tool); the redundancy check then treats the tool as pure.
    ``failed_precondition`` marks a tool error that says the information or object the call
    depends on does not exist yet (used by timing_quality).
    """

    call: ToolCall
    ok: bool = True
    output: str = ""
    error: str | None = None
    timed_out: bool = False
    state_digest: str | None = None
    failed_precondition: bool = False


@dataclass(frozen=True)
class StepRecord:
    """One model action: its raw text, how it parsed and, in the env, what its calls did.

    ``offered``: the tool names the model was offered when it wrote this action (the env records
    it: BFCL miss_func withholds tools until a later turn). None means "derive it from the task"
    (:func:`toolgym.env.reward.components.offered_at`), which gives the same set for BFCL tasks.
    A call to a name outside it is a hallucinated tool. ``timed_out``: the step itself ran past
    its budget (charged once, and only when none of its calls' outcomes is already charged).
    """

    output: str
    parsed: ParsedAction
    outcomes: tuple[CallOutcome, ...] = ()
    turn: int = 0
    timed_out: bool = False
    offered: frozenset[str] | None = None


@dataclass(frozen=True)
class Trajectory:
    """All steps of an episode (a single step for offline scoring).

    ``multi_turn`` carries the env's state/result verdict for stateful tasks (it needs the
    sandbox to compute, so the engine takes it as an input rather than recomputing it).
    ``retrieved`` is set for a retrieval episode: the names of every tool the model was shown (by
    ``search_tools`` or pre-retrieved), which the ``retrieval`` component checks; None otherwise.
    """

    steps: tuple[StepRecord, ...]
    episode_timed_out: bool = False
    truncated: bool = False
    multi_turn: Any = None  # toolgym.env.reward.multi_turn.MultiTurnVerdict
    retrieved: frozenset[str] | None = None

    @property
    def calls(self) -> list[ToolCall]:
        return [c for s in self.steps for c in s.parsed.calls]


@dataclass
class ScoreResult:
    """The reward and its breakdown, exactly as every RPC and CLI reports it.

    ``components`` are each in [0, 1]; ``penalties`` hold the (negative) amount applied per
    kind (absent when not applied); ``total = sum(w_k * c_k) + sum(penalties)`` (penalty sum
    floored at ``RewardConfig.max_penalty_total``). ``valid`` is false only when scoring itself
    failed, and then ``feedback`` says why; the numbers are still finite.
    """

    total: float
    components: dict[str, float]
    penalties: dict[str, float]
    valid: bool
    feedback: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "components": dict(self.components),
            "penalties": dict(self.penalties),
            "valid": self.valid,
            "feedback": self.feedback,
            "details": dict(self.details),
        }
