"""``memory``: sessions and rollouts in this process's memory (the pre-store behaviour).

Lost when the process exits; not shared, so one server's sessions are its own. Rollouts are
kept under the retention limits so the dashboard and ``rollouts`` tooling see recent episodes.
"""

from __future__ import annotations

import collections
import itertools
import threading
from typing import Any, Iterator

from toolgym.env.sessions.errors import SessionLimitError, SessionNotFound, StepIndexError
from toolgym.env.sessions.records import SessionSpec, StepEntry, StoredSession
from toolgym.env.sessions.store import RolloutFilter, SessionStore

# A memory store keeps only recent rollouts (the dashboard's "recent episodes"): each holds a whole
# transcript, and this process must not grow without bound whatever --rollout-max-count says.
_MEMORY_ROLLOUT_CAP = 1_000


class MemoryStore(SessionStore):
    url = "memory"
    shared = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, StoredSession] = {}
        self._last_used: dict[str, float] = {}
        self._owned: collections.Counter[str] = collections.Counter()
        self._rollouts: collections.OrderedDict[int, dict[str, Any]] = collections.OrderedDict()
        self._rid = itertools.count(1)

    def create(self, sid: str, spec: SessionSpec, owner: str, now: float, *, max_sessions: int, max_per_owner: int) -> None:
        with self._lock:
            if len(self._sessions) >= max_sessions:
                raise SessionLimitError(f"the server holds {len(self._sessions)} sessions, its limit (--max-sessions {max_sessions}); "
                                        "Close finished sessions, wait for idle ones to expire, or raise the limit")
            if max_per_owner and self._owned[owner] >= max_per_owner:
                raise SessionLimitError(f"client {owner or '(anonymous)'} holds {self._owned[owner]} sessions, the per-client limit "
                                        f"(--max-sessions-per-client {max_per_owner}); Close finished sessions or wait for idle ones to expire")
            self._sessions[sid] = StoredSession(sid, spec, owner, now, [])
            self._last_used[sid] = now
            self._owned[owner] += 1

    def load(self, sid: str) -> StoredSession | None:
        with self._lock:
            s = self._sessions.get(sid)
            return None if s is None else StoredSession(s.id, s.spec, s.owner, s.created, list(s.entries))

    def entry(self, sid: str, index: int) -> StepEntry | None:
        with self._lock:
            s = self._sessions.get(sid)
            return s.entries[index] if s is not None and 0 <= index < len(s.entries) else None

    def append(self, sid: str, entry: StepEntry, now: float, rollout: dict[str, Any] | None = None, release: str = "") -> None:
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                raise SessionNotFound(f"no open session {sid!r}: it was closed or expired while this step ran")
            if len(s.entries) != entry.index:
                raise StepIndexError(f"step {entry.index} of session {sid!r} was stored by another writer first")
            s.entries.append(entry)
            self._last_used[sid] = now
            if rollout is not None:
                rid = next(self._rid)
                self._rollouts[rid] = {**rollout, "id": rid}
                while len(self._rollouts) > _MEMORY_ROLLOUT_CAP:
                    self._rollouts.popitem(last=False)

    def close(self, sid: str) -> bool:
        with self._lock:
            s = self._sessions.pop(sid, None)
            if s is None:
                return False
            self._last_used.pop(sid, None)
            self._owned[s.owner] -= 1
            if self._owned[s.owner] <= 0:
                del self._owned[s.owner]
            return True

    def count(self, owner: str | None = None) -> int:
        return len(self._sessions) if owner is None else self._owned.get(owner, 0)

    def idle(self, before: float) -> list[str]:
        with self._lock:
            return [sid for sid, t in self._last_used.items() if t < before]

    def rollouts(self, where: RolloutFilter = RolloutFilter()) -> Iterator[dict[str, Any]]:
        with self._lock:
            rows = [r for r in self._rollouts.values() if where.matches(r)]
        if where.limit:
            rows = rows[::-1][: where.limit]
        yield from rows

    def prune_rollouts(self, *, max_count: int = 0, max_age_s: float = 0.0, now: float) -> int:
        with self._lock:
            before = len(self._rollouts)
            if max_age_s > 0:
                for rid in [k for k, r in self._rollouts.items() if r["finished_at"] < now - max_age_s]:
                    del self._rollouts[rid]
            while max_count and len(self._rollouts) > max_count:
                self._rollouts.popitem(last=False)
            return before - len(self._rollouts)
