"""A scripted, in-memory stand-in for ``ToolgymClient`` (reset/step/close/score_batch/list_tasks).

For unit tests of the trainer's plumbing without a server: deterministic, no sandbox, no gRPC. Tasks:

- ``single/<name>``: one action ends the episode; reward 1 when the action holds ``<tool_call>``, else 0.
- ``multi/<name>``: the first action with a ``<tool_call>`` gets an observation back; the next action ends it.
- ``invalid/<name>``: terminates with ``valid=False`` (scoring failed).
- ``slow/<name>``: never terminates on its own (tests the turn/token budgets); truncates at ``max_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toolgym.trainer.rollout import COMPONENTS, DEFAULT_WEIGHTS


@dataclass
class _Reset:
    session_id: str
    observation: str
    info: dict[str, Any]


@dataclass
class _Step:
    observation: str
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]


@dataclass
class _Score:
    total: float
    components: dict[str, float]
    penalties: dict[str, float]
    valid: bool
    feedback: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def fake_score(task_id: str, actions: list[str]) -> _Score:
    if task_id.startswith("invalid/"):
        return _Score(0.0, {k: 0.0 for k in COMPONENTS}, {}, False, "scoring failed")
    called = any("<tool_call>" in a for a in actions)
    comps = {k: (1.0 if called else 0.0) for k in COMPONENTS}
    pens = {} if called else {"format_error": -0.1}
    total = sum(DEFAULT_WEIGHTS[k] * v for k, v in comps.items()) + sum(pens.values())
    return _Score(total, comps, pens, True, "ok" if called else "no call")


class FakeClient:
    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.n = 0
        self.calls: list[tuple[str, Any]] = []

    def reset(self, task_id: str | None = None, *, seed: int | None = None, template: str | None = None,
              max_steps: int | None = None, **kw: Any) -> _Reset:
        self.n += 1
        sid = f"s{self.n}"
        tid = task_id or "single/a"
        self.sessions[sid] = {"task": tid, "actions": [], "max_steps": max_steps or 8, "seed": seed}
        self.calls.append(("reset", (tid, seed, template)))
        info = {"task_id": tid, "template": template or "hermes", "system_prompt": f"You have tools. Task {tid}.",
                "user_prompt": f"Please solve {tid} (seed {seed}).", "tools": [], "turn": 0}
        return _Reset(sid, info["system_prompt"] + "\n\n" + info["user_prompt"], info)

    def step(self, session_id: str, action: str, step_index: int | None = None, **kw: Any) -> _Step:
        s = self.sessions[session_id]
        s["actions"].append(action)
        self.calls.append(("step", (session_id, action)))
        tid = s["task"]
        n = len(s["actions"])
        done = tid.startswith(("single/", "invalid/")) or (tid.startswith("multi/") and n >= 2)
        truncated = not done and n >= s["max_steps"]
        if done or truncated:
            sc = fake_score(tid, s["actions"])
            info = {"total": sc.total, "components": sc.components, "penalties": sc.penalties, "valid": sc.valid,
                    "feedback": sc.feedback}
            return _Step("", sc.total, done, truncated, info)
        return _Step("<tool_response>\n{\"result\": 42}\n</tool_response>", 0.0, False, False, {"turn": 0})

    def close_session(self, session_id: str, **kw: Any) -> bool:
        return self.sessions.pop(session_id, None) is not None

    def score_batch(self, items: list[dict[str, Any]], **kw: Any) -> list[_Score]:
        return [fake_score(i["task_id"], [i["output"]]) for i in items]

    def list_tasks(self, categories: Any = None, kinds: Any = None, limit: int = 0, **kw: Any) -> list[Any]:
        return []

    def close(self) -> None:
        pass


__all__ = ["FakeClient", "fake_score"]
