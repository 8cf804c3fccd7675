"""Conversions between engine values and protobuf messages, and request validation.

Kept apart from the servicers so the client and the server agree on one mapping.
"""

from __future__ import annotations

import json
from typing import Any

from toolgym.env.reward.config import COMPONENTS, PENALTIES, RewardConfig
from toolgym.env.reward.trajectory import ScoreResult
from toolgym.env.types import utf8_safe
from toolgym.v1 import reward_pb2


def json_text(d: object) -> str:
    # ensure_ascii escapes every non-ASCII character (lone surrogates included) as \uXXXX: valid
    # UTF-8, and json.loads gives back exactly the same strings.
    return json.dumps(d, ensure_ascii=True, sort_keys=True, default=str)


def score_to_proto(r: ScoreResult) -> reward_pb2.ScoreResult:
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
