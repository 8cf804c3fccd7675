"""Conversions between engine values and protobuf messages, and request validation.

Kept apart from the servicers so the client and the server agree on one mapping.
"""

from __future__ import annotations

import json
import math
from typing import Any

from toolgym.env.reward.config import COMPONENTS, PENALTIES, RewardConfig
from toolgym.env.reward.trajectory import ScoreResult
from toolgym.env.types import utf8_safe
from toolgym.v1 import reward_pb2


def _finite_json(x: Any) -> Any:
    """``x`` with every non-finite float replaced by its name ("nan", "inf", "-inf")."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _finite_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_json(v) for v in x]
    return x


def json_text(d: object) -> str:
    # ensure_ascii escapes every non-ASCII character (lone surrogates included) as \uXXXX: valid
    # UTF-8, and json.loads gives back exactly the same strings. allow_nan=False: strict JSON
    # parsers reject NaN/Infinity tokens, and no NaN/inf leaves the server (design §4).
    # Keys keep their insertion order (no sort_keys): a tool spec's parameters stay in their
    # declared order, which positional calls and generated clients depend on (issue 12).
    try:
        return json.dumps(d, ensure_ascii=True, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite_json(d), ensure_ascii=True, default=str, allow_nan=False)


def finite_score(r: ScoreResult) -> ScoreResult:
    """The boundary guard: a result holding any non-finite number leaves the server as valid=false
    with the reason and zeros in place of the bad numbers — never as NaN/inf."""
    bad = [f"total={r.total!r}"] if not math.isfinite(r.total) else []
    bad += [f"components.{k}={v!r}" for k, v in r.components.items() if not math.isfinite(v)]
    bad += [f"penalties.{k}={v!r}" for k, v in r.penalties.items() if not math.isfinite(v)]
    if not bad:
        return r
    return ScoreResult(
        total=0.0,
        components={k: (v if math.isfinite(v) else 0.0) for k, v in r.components.items()},
        penalties={k: v for k, v in r.penalties.items() if math.isfinite(v)},
        valid=False,
        feedback=f"scoring produced non-finite value(s) {', '.join(bad[:3])}; the result is invalid "
                 "(check reward_config overrides: huge weights or penalties overflow)",
        details={**r.details, "non_finite": bad},
    )


def score_to_proto(r: ScoreResult) -> reward_pb2.ScoreResult:
    r = finite_score(r)
    return reward_pb2.ScoreResult(
        total=r.total,
        components=r.components,
        penalties=r.penalties,
        valid=r.valid,
        feedback=utf8_safe(r.feedback),
        details_json=json_text(r.details),
    )


def _ordered(d: dict[str, float], order: tuple[str, ...]) -> dict[str, float]:
    # Proto maps are unordered; canonical order keeps JSON output byte-identical everywhere.
    out = {k: d[k] for k in order if k in d}
    out.update({k: v for k, v in sorted(d.items()) if k not in out})
    return out


def score_from_proto(m: reward_pb2.ScoreResult) -> ScoreResult:
    return ScoreResult(
        total=m.total,
        components=_ordered(dict(m.components), COMPONENTS),
        penalties=_ordered(dict(m.penalties), PENALTIES),
        valid=m.valid,
        feedback=m.feedback,
        details=json.loads(m.details_json) if m.details_json else {},
    )


def canonical(r: ScoreResult) -> ScoreResult:
    """The same result with components/penalties in canonical order and details JSON-normalised."""
    return ScoreResult(
        total=r.total,
        components=_ordered(r.components, COMPONENTS),
        penalties=_ordered(r.penalties, PENALTIES),
        valid=r.valid,
        feedback=utf8_safe(r.feedback),
        details=json.loads(json_text(r.details)),
    )


def reward_config_from_proto(m: reward_pb2.RewardConfig | None, base: RewardConfig) -> RewardConfig:
    """Apply request overrides to the server's config; ValueError (→ INVALID_ARGUMENT) on bad keys."""
    if m is None:
        return base
    d: dict[str, Any] = {}
    if m.weights:
        d["weights"] = {**base.weights, **dict(m.weights)}
    if m.penalties:
        d["penalties"] = {**base.penalties, **dict(m.penalties)}
    if m.HasField("penalty_per_occurrence"):
        d["penalty_per_occurrence"] = m.penalty_per_occurrence
    if m.HasField("max_penalty_total"):
        d["max_penalty_total"] = m.max_penalty_total
    if not d:
        return base
    merged = {**base.to_dict(), **d}
    return RewardConfig.from_dict(merged)


def reward_config_to_proto(d: dict[str, Any] | None) -> reward_pb2.RewardConfig | None:
    if not d:
        return None
    m = reward_pb2.RewardConfig(weights=d.get("weights", {}), penalties=d.get("penalties", {}))
    if "penalty_per_occurrence" in d:
        m.penalty_per_occurrence = bool(d["penalty_per_occurrence"])
    if "max_penalty_total" in d:
        m.max_penalty_total = float(d["max_penalty_total"])
    return m
