"""A step's outcome as the protocol-neutral reply the store keeps and every adapter sends.

The reply is built once, normalised through JSON, stored, and only then handed to the
adapter: the first answer, a retry's answer and a restored session's check all see the same
bytes. No NaN/inf ever leaves (design §4): a non-finite score becomes valid=false.
"""

from __future__ import annotations

import json
import math
from typing import Any

from toolgym.env.episode import StepOutcome
from toolgym.env.reward.trajectory import ScoreResult
from toolgym.env.server.convert import finite_score, json_text
from toolgym.env.types import utf8_safe


def score_dict(r: ScoreResult) -> dict[str, Any]:
    return {"total": r.total, "components": dict(r.components), "penalties": dict(r.penalties), "valid": r.valid,
            "feedback": r.feedback, "details": r.details}


def score_from_dict(d: dict[str, Any]) -> ScoreResult:
    return ScoreResult(total=float(d["total"]), components=dict(d["components"]), penalties=dict(d["penalties"]),
                       valid=bool(d["valid"]), feedback=str(d["feedback"]), details=dict(d.get("details") or {}))


def reply_of(out: StepOutcome, index: int) -> dict[str, Any]:
    reward, info, score = out.reward, out.info, None
    if out.score is not None:
        safe = finite_score(out.score)
        if safe is not out.score:  # the terminal step says valid=false instead of carrying NaN/inf
            reward = safe.total
            info = {**info, "total": safe.total, "components": dict(safe.components), "penalties": dict(safe.penalties),
                    "valid": False, "feedback": safe.feedback}
        score = score_dict(safe)
    elif not math.isfinite(reward):
        reward, info = 0.0, {**info, "valid": False, "feedback": f"non-finite shaping reward {out.reward!r} replaced by 0"}
    reply = {"step_index": index, "observation": utf8_safe(out.observation), "reward": reward, "terminated": out.terminated,
             "truncated": out.truncated, "info": info, "score": score}
    return json.loads(json_text(reply))


def first_difference(recorded: dict[str, Any], replayed: dict[str, Any]) -> str | None:
    """The first field where two replies differ, as 'field: recorded X, replayed Y' (None if equal)."""
    if recorded == replayed:
        return None
    for key in ("observation", "reward", "terminated", "truncated", "score", "info"):
        a, b = recorded.get(key), replayed.get(key)
        if a != b:
            return f"{key}: recorded {_short(a)}, replayed {_short(b)}"
    return "reply fields differ"


def _short(v: Any, n: int = 120) -> str:
    s = repr(v)
    return s if len(s) <= n else s[:n] + "…"
