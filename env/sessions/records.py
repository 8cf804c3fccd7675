"""What the store keeps for a session: its spec (everything a Reset decided) and its steps.

A session is deterministic given its spec, so the spec plus the action log rebuilds it; each
step also keeps the reply that was sent, so retries get the identical answer and a replay can
be checked against it. Everything here round-trips through JSON (the stores hold text).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any


def dumps(obj: Any) -> str:
    # allow_nan: a reward config may hold max_penalty_total=-inf; the store is internal and
    # Python's json reads "-Infinity" back. Replies themselves are made finite before this.
    # Insertion order is kept (no sort_keys): a retried step's reply must be the recorded one
    # byte for byte, tool specs included, whose parameters keep their declared order.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(action: str) -> str:
    """Fingerprint of an action: a retry must resend the same text for the same step_index."""
    return hashlib.blake2b(action.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class SessionSpec:
    """Everything a Reset decided. ``task_json`` is the inline task as sent ("" = a suite task)."""

    task_id: str = field(metadata={"help": "Id of the task (a suite id, or the inline task's own id)."})
    template: str = field(metadata={"help": "Prompt/parse template the episode uses."})
    options: dict[str, Any] = field(default_factory=dict, metadata={"help": "EpisodeOptions as a dict."})
    reward: dict[str, Any] = field(default_factory=dict, metadata={"help": "RewardConfig.to_dict() of the episode."})
    task_json: str = field(default="", metadata={"help": "Inline task JSON, when the Reset carried one."})
    category: str = field(default="", metadata={"help": "Task category (filters of the rollout table)."})

    def to_json(self) -> str:
        return dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SessionSpec:
        d = json.loads(text)
        return cls(**{k: d[k] for k in ("task_id", "template", "options", "reward", "task_json", "category") if k in d})

    def config_hash(self) -> str:
        """Same hash = same template, episode options and reward config (rollouts group by it)."""
        blob = json.dumps({"template": self.template, "options": self.options, "reward": self.reward},
                          sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)  # canonical: order-free
        return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class StepEntry:
    """One applied step: the action, its digest, the reply sent, and when/how long it ran."""

    index: int
    action: str
    digest: str
    reply: dict[str, Any]
    elapsed_ms: float
    at: float  # wall-clock time (s since epoch) when it was applied

    def to_json(self) -> str:
        # Not asdict(): it deep-copies the reply, and this runs on every step's hot path.
        return dumps({"index": self.index, "action": self.action, "digest": self.digest, "reply": self.reply,
                      "elapsed_ms": self.elapsed_ms, "at": self.at})

    @classmethod
    def from_json(cls, text: str) -> StepEntry:
        d = json.loads(text)
        return cls(index=int(d["index"]), action=d["action"], digest=d["digest"], reply=d["reply"],
                   elapsed_ms=float(d["elapsed_ms"]), at=float(d["at"]))

    @property
    def done(self) -> bool:
        return bool(self.reply.get("terminated") or self.reply.get("truncated"))


@dataclass
class StoredSession:
    """A session as read back from a store."""

    id: str
    spec: SessionSpec
    owner: str
    created: float
    entries: list[StepEntry]

    @property
    def done(self) -> bool:
        return bool(self.entries) and self.entries[-1].done
