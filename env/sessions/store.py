"""The ``SessionStore`` interface every backend implements (``open_store(url)``, which picks one, is in :mod:`toolgym.env.sessions.open_url`).

A store holds open sessions (spec + step log), per-session leases and the rollout table.
Three backends implement it: ``memory`` (one process, lost on exit), ``sqlite:///PATH.db``
(one server, survives restarts and kill -9) and ``redis://HOST:PORT/DB`` (shared by replicas).

The rules every backend keeps (the session manager relies on them):

- ``append`` is compare-and-append: it stores step ``entry.index`` only if the session holds
  exactly that many steps, atomically with the session's last-use time and, for a terminal
  step, its rollout. It returns only once the write is durable for that backend; any failure
  raises :class:`StoreUnavailable` (never a silent drop), so no reply leaves for a step that
  is not stored.
- ``create`` checks the caps and inserts in one atomic operation (caps hold across replicas).
- Leases (``acquire``/``release``) are short and expire on their own: a replica that dies
  mid-step blocks a session for at most the lease time.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Iterator

from toolgym.env.sessions.records import SessionSpec, StepEntry, StoredSession


@dataclass(frozen=True)
class Head:
    """Where a session stands in the store: how many steps it holds and whether it is over."""

    steps: int
    done: bool


@dataclass(frozen=True)
class RolloutFilter:
    """Which rollouts an export or rescore reads. Empty fields do not filter."""

    categories: tuple[str, ...] = field(default=(), metadata={"help": "Only these task categories."})
    min_reward: float | None = field(default=None, metadata={"help": "Only rollouts with total >= this."})
    max_reward: float | None = field(default=None, metadata={"help": "Only rollouts with total <= this."})
    since: float | None = field(default=None, metadata={"help": "Only rollouts finished at or after this time (s since epoch)."})
    until: float | None = field(default=None, metadata={"help": "Only rollouts finished before this time (s since epoch)."})
    limit: int = field(default=0, metadata={"help": "At most this many, newest first (0 = all, oldest first)."})

    def matches(self, r: dict[str, Any]) -> bool:
        total = float(r.get("reward", {}).get("total", 0.0))
        fin = float(r.get("finished_at", 0.0))
        return ((not self.categories or r.get("category") in self.categories)
                and (self.min_reward is None or total >= self.min_reward)
                and (self.max_reward is None or total <= self.max_reward)
                and (self.since is None or fin >= self.since)
                and (self.until is None or fin < self.until))


class SessionStore(abc.ABC):
    """Durable home of sessions and rollouts. Thread-safe; see the module doc for the rules."""

    url: str = ""
    #: True when other processes may step the same sessions (leases and head checks needed).
    shared: bool = False

    # -- sessions
    @abc.abstractmethod
    def create(self, sid: str, spec: SessionSpec, owner: str, now: float, *, max_sessions: int, max_per_owner: int) -> None:
        """Insert a new session, or raise SessionLimitError naming the cap that is reached."""

    @abc.abstractmethod
    def load(self, sid: str) -> StoredSession | None:
        """The session with its whole step log, or None if it is not open."""

    @abc.abstractmethod
    def entry(self, sid: str, index: int) -> StepEntry | None:
        """One stored step (None if the session or the step does not exist)."""

    @abc.abstractmethod
    def append(self, sid: str, entry: StepEntry, now: float, rollout: dict[str, Any] | None = None,
               release: str = "") -> None:
        """Compare-and-append step ``entry.index`` (see module doc); also releases the lease
        held by ``release`` when given. SessionNotFound if the session is gone, StepIndexError
        if another writer got there first."""

    @abc.abstractmethod
    def close(self, sid: str) -> bool:
        """Forget an open session (its rollout, if it finished, stays). False if it was not open."""

    @abc.abstractmethod
    def count(self, owner: str | None = None) -> int:
        """Open sessions, all or one owner's."""

    @abc.abstractmethod
    def idle(self, before: float) -> list[str]:
        """Ids of open sessions last used before ``before`` (s since epoch)."""

    def open_ids(self, sids: list[str]) -> set[str]:
        """Which of ``sids`` are still open (replicas drop live state of sessions closed elsewhere)."""
        return {sid for sid in sids if self.load(sid) is not None}

    # -- leases (no-ops for single-process stores)
    def acquire(self, sid: str, holder: str, ttl_s: float) -> Head | None | bool:
        """Take the session's lease for ``ttl_s``. Returns its Head (None if it is not open),
        or False if another holder has it. Single-process stores hold no leases: True."""
        return True

    def release(self, sid: str, holder: str) -> None:
        """Give the lease back (only if ``holder`` still holds it)."""

    # -- rollouts
    @abc.abstractmethod
    def rollouts(self, where: RolloutFilter = RolloutFilter()) -> Iterator[dict[str, Any]]:
        """Stored rollouts matching ``where``, oldest first (newest first with a limit)."""

    @abc.abstractmethod
    def prune_rollouts(self, *, max_count: int = 0, max_age_s: float = 0.0, now: float) -> int:
        """Apply retention: keep the newest ``max_count`` (0 = no cap) and drop those older
        than ``max_age_s`` (0 = no age limit). Returns how many were removed."""

    def close_store(self) -> None:
        """Release connections and files."""
