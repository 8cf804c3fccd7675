"""The session manager: creation under caps, idempotent steps, leases, restore, idle expiry.

Every protocol adapter calls :meth:`SessionManager.create`, :meth:`~SessionManager.step` and
:meth:`~SessionManager.close`; nothing here knows a wire format. The store is the truth, the
live :class:`~toolgym.env.episode.Episode` objects are a cache of it:

- A step's reply is stored (compare-and-append) before it is returned. If storing fails, the
  live episode, which already ran the action, is dropped: the next try rebuilds it from the log,
  so a failed write can never leave the live state one step ahead of the store.
- ``step_index`` below the stored count is a retry: the recorded reply comes back, provided
  the action is the same text; the next index applies; anything else is refused.
- A replica without live state (a restart, another replica created the session, a dropped
  cache) rebuilds it by replaying the log in a sandbox worker and checks every replayed reply
  against the recorded one; a difference is :class:`RestoreMismatch`, never a silent divergence.
- With a shared store (Redis) each step holds the session's short lease, so one session's
  steps never run on two replicas at once; a lease that outlives a dead replica expires.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from toolgym.env.episode import Episode
from toolgym.env.sessions.errors import (EpisodeOver, RestoreMismatch, SessionBusy, SessionNotFound, StepIndexError,
                                         StoreUnavailable)
from toolgym.env.sessions.records import SessionSpec, StepEntry, digest
from toolgym.env.sessions.replies import first_difference, reply_of
from toolgym.env.sessions.rollouts import build_rollout
from toolgym.env.sessions.store import Head, SessionStore

log = logging.getLogger("toolgym.sessions")


@dataclass(frozen=True)
class SessionLimits:
    """Caps and timers of the session layer (the server's flags of the same names)."""

    max_sessions: int = field(default=4096, metadata={"help": "Open sessions in the store; a create beyond it is refused."})
    ttl_s: float = field(default=900.0, metadata={"help": "Sessions idle this long are closed (0 disables)."})
    max_per_owner: int = field(default=0, metadata={"help": "Open sessions one client may hold (0 = no per-client cap)."})
    lease_s: float = field(default=10.0, metadata={"help": "How long one step holds a session's lease in a shared store."})
    lease_wait_s: float = field(default=10.0, metadata={"help": "How long a step waits for another replica's lease."})
    rollout_max_count: int = field(default=0, metadata={"help": "Keep at most this many rollouts, newest first (0 = no cap)."})
    rollout_max_age_s: float = field(default=0.0, metadata={"help": "Drop rollouts older than this (0 = keep)."})


@dataclass(frozen=True)
class Opened:
    session_id: str
    observation: str
    info: dict[str, Any]


@dataclass
class _Live:
    """What this process knows of one session: its log prefix and, maybe, a live episode."""

    id: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    spec: SessionSpec | None = None
    owner: str = ""
    created: float = 0.0
    entries: list[StepEntry] = field(default_factory=list)
    episode: Episode | None = None
    applied: int = 0  # steps the live episode has applied (<= len(entries))
    prompt: str = ""
    last_used: float = field(default_factory=time.monotonic)
    closed: bool = False

    def drop_episode(self) -> None:
        ep, self.episode, self.applied = self.episode, None, 0
        if ep is not None:
            try:
                ep.close()
            except Exception:  # noqa: BLE001 - a broken sandbox session is being discarded anyway
                log.debug("closing a dropped episode of %s", self.id, exc_info=True)


class SessionManager:
    """Sessions over one :class:`SessionStore`. ``build(spec)`` makes a fresh (unstarted) Episode."""

    def __init__(self, store: SessionStore, build: Callable[[SessionSpec], Episode], limits: SessionLimits = SessionLimits(),
                 *, id_prefix: str = "", clock: Callable[[], float] = time.time):
        self.store = store
        self.limits = limits
        self._build = build
        self._clock = clock
        self._prefix = f"{id_prefix}." if id_prefix else ""
        self._holder = f"{id_prefix or 'local'}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._live: dict[str, _Live] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.created = self.closed = self.expired = self.restored = 0
        self.races_lost = 0  # steps another replica stored first (our lease ran out mid-step)
        self._reaper: threading.Thread | None = None
        if limits.ttl_s > 0 or limits.rollout_max_count or limits.rollout_max_age_s:
            self._reaper = threading.Thread(target=self._reap_loop, name="toolgym-session-reaper", daemon=True)
            self._reaper.start()

    def __len__(self) -> int:
        return self.store.count()

    def __contains__(self, sid: object) -> bool:
        return isinstance(sid, str) and self.store.load(sid) is not None

    def owned_by(self, owner: str) -> int:
        return self.store.count(owner)

    @property
    def live(self) -> int:
        """Sessions with a live episode in this process."""
        return sum(1 for s in list(self._live.values()) if s.episode is not None)

    # ------------------------------------------------------------------ create / close
    def create(self, spec: SessionSpec, owner: str = "") -> Opened:
        sid = self._prefix + uuid.uuid4().hex
        now = self._clock()
        # Reserve the slot in the store first, so the caps hold under races (and across replicas).
        self.store.create(sid, spec, owner, now, max_sessions=self.limits.max_sessions, max_per_owner=self.limits.max_per_owner)
        live = _Live(sid, spec=spec, owner=owner, created=now)
        try:
            live.episode = self._build(spec)
            live.prompt, info = live.episode.start()
        except BaseException:
            live.drop_episode()
            try:
                self.store.close(sid)
            except StoreUnavailable:
                log.warning("could not release the slot of failed session %s; idle expiry will", sid)
            raise
        with self._lock:
            self._live[sid] = live
            self.created += 1
        return Opened(sid, live.prompt, info)

    def close(self, sid: str) -> bool:
        with self._lock:
            live = self._live.pop(sid, None)
        if live is not None:
            with live.lock:  # waits for a step in flight
                live.closed = True
                live.drop_episode()
        gone = self.store.close(sid)
        if gone:
            self.closed += 1
        return gone

    # ------------------------------------------------------------------ step
    def step(self, sid: str, action: str, step_index: int = -1) -> dict[str, Any]:
        """Apply (or replay the recorded reply of) one step; see the module doc for the rules."""
        live = self._live_for(sid)
        with live.lock:
            if live.closed:
                raise SessionNotFound(f"session {sid!r} was closed while this step waited")
            leased = False
            if self.store.shared:
                head = self._lease(sid)
                leased = True
            try:
                if self.store.shared:
                    self._sync(live, head)
                elif live.spec is None:
                    self._sync(live, None)
                live.last_used = time.monotonic()
                n = len(live.entries)
                if step_index < 0:
                    step_index = n  # no idempotency requested: apply as the next step
                if step_index < n:
                    entry = live.entries[step_index]
                    if entry.digest != digest(action):
                        # Not a retry: answering with the recorded reply would describe an action never taken.
                        raise StepIndexError(f"step_index {step_index} was already applied with a different action; a retry must "
                                             f"resend the same action, and a new step must use step_index {n}")
                    return entry.reply
                if step_index > n:
                    raise StepIndexError(f"step_index {step_index} is ahead of the session, which has applied {n} step(s); send {n}")
                if n and live.entries[-1].done:
                    raise EpisodeOver("the episode is over (terminated or truncated); call Reset to start a new one")
                entry = self._apply(live, action, n)
                rollout = None
                if entry.done:
                    rollout = build_rollout(sid, live.spec, live.episode.task if live.episode else None, live.prompt, live.created,
                                            [*live.entries, entry])
                try:
                    self.store.append(sid, entry, entry.at, rollout, release=self._holder if leased else "")
                    leased = False  # the append released it
                except StepIndexError:
                    return self._lost_race(live, entry)
                except BaseException:
                    live.drop_episode()  # it ran an action the store does not hold
                    raise
                live.entries.append(entry)
                if entry.done:
                    live.drop_episode()  # the episode closed its sandbox session; nothing left to keep
                return entry.reply
            finally:
                if leased:
                    try:
                        self.store.release(sid, self._holder)
                    except StoreUnavailable:
                        pass  # the lease expires on its own

    def _live_for(self, sid: str) -> _Live:
        with self._lock:
            live = self._live.get(sid)
            if live is None:
                live = self._live[sid] = _Live(sid)
            return live

    def _forget(self, live: _Live) -> None:
        with self._lock:
            if self._live.get(live.id) is live:
                del self._live[live.id]
        live.closed = True
        live.drop_episode()

    def _not_found(self, sid: str) -> SessionNotFound:
        if not self.store.shared and self._prefix and not sid.startswith(self._prefix) and "." in sid:
            return SessionNotFound(
                f"session {sid!r} belongs to replica {sid.rsplit('.', 1)[0]!r}, and this is replica {self._prefix[:-1]!r} with a "
                "private --session-store: send its Steps to that replica, or run the replicas on one shared store (redis://)")
        ttl = f"expired after {self.limits.ttl_s:.0f}s idle, " if self.limits.ttl_s > 0 else ""
        return SessionNotFound(f"no open session {sid!r}: it was closed, {ttl}or never existed — call Reset for a new one")

    def _lease(self, sid: str) -> Head | None:
        deadline = time.monotonic() + self.limits.lease_wait_s
        delay = 0.002
        while True:
            got = self.store.acquire(sid, self._holder, self.limits.lease_s)
            if got is not False:
                return got if isinstance(got, Head) else None
            if time.monotonic() >= deadline:
                raise SessionBusy(f"session {sid!r} is being stepped by another replica (its lease has been held for "
                                  f"{self.limits.lease_wait_s:.0f}s); retry the same step_index")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _sync(self, live: _Live, head: Head | None) -> None:
        """Bring ``live``'s log up to the store's (shared stores: another replica may have stepped)."""
        if live.spec is not None and head is not None and head.steps == len(live.entries):
            return
        stored = self.store.load(live.id)
        if stored is None:
            self._forget(live)
            raise self._not_found(live.id)
        if len(stored.entries) < len(live.entries) or live.spec is None:
            if live.spec is not None:
                log.warning("session %s: the store holds %d steps, this replica knew %d; following the store",
                            live.id, len(stored.entries), len(live.entries))
            live.drop_episode()
        live.spec, live.owner, live.created = stored.spec, stored.owner, stored.created
        live.entries = stored.entries

    def _apply(self, live: _Live, action: str, n: int) -> StepEntry:
        ep = self._ensure_episode(live)
        t0 = time.perf_counter()
        try:
            out = ep.step(action)
        except BaseException:
            live.drop_episode()  # half-applied: rebuild from the log next time
            raise
        elapsed_ms = (time.perf_counter() - t0) * 1000.0
        live.applied = n + 1
        return StepEntry(n, action, digest(action), reply_of(out, n), elapsed_ms, self._clock())

    def _ensure_episode(self, live: _Live) -> Episode:
        """The live episode at ``len(live.entries)`` steps: built and/or replayed from the log."""
        assert live.spec is not None
        if live.episode is not None and live.applied == len(live.entries):
            return live.episode
        if live.episode is None:
            live.episode = self._build(live.spec)
            live.prompt, _ = live.episode.start()
            live.applied = 0
            self.restored += 1
        ep = live.episode
        for entry in live.entries[live.applied:]:
            try:
                replayed = reply_of(ep.step(entry.action), entry.index)
            except BaseException:
                live.drop_episode()
                raise
            diff = first_difference(entry.reply, replayed)
            if diff is not None:
                live.drop_episode()
                raise RestoreMismatch(f"session {live.id!r} cannot be restored: replaying step {entry.index} of its log gave a "
                                      f"different {diff}; its tools are not deterministic for this task (or the server's "
                                      "code or data changed) — Close it and Reset")
            live.applied = entry.index + 1
        return ep

    def _lost_race(self, live: _Live, entry: StepEntry) -> dict[str, Any]:
        """Another replica stored this step first (our lease expired mid-step): answer with
        its reply if it applied the same action, else refuse; our live state is stale."""
        self.races_lost += 1
        live.drop_episode()
        theirs = self.store.entry(live.id, entry.index)
        self._sync(live, None)
        if theirs is not None and theirs.digest == entry.digest:
            return theirs.reply
        raise StepIndexError(f"step_index {entry.index} was applied by another replica with a different action")

    # ------------------------------------------------------------------ expiry
    def _reap_loop(self) -> None:
        ttl = self.limits.ttl_s
        period = max(0.05, min(ttl / 4, 5.0)) if ttl > 0 else 5.0
        while not self._stop.wait(period):
            try:
                self.reap()
            except StoreUnavailable as e:
                log.warning("idle expiry skipped: %s", e)
            except Exception:  # noqa: BLE001 - the reaper must outlive one bad pass
                log.exception("idle expiry failed")

    def reap(self) -> int:
        """Close sessions idle past the TTL, drop stale live state, apply rollout retention."""
        n = 0
        lim = self.limits
        if lim.ttl_s > 0:
            for sid in self.store.idle(self._clock() - lim.ttl_s):
                live = self._live.get(sid)
                if live is not None and live.lock.locked():
                    continue  # a step is running on it right now
                if self.close(sid):
                    self.expired += 1
                    n += 1
            if self.store.shared:
                # Live state this replica has not used for a TTL: another replica serves the session
                # now. The store still has it, so only the cache goes (a step that raced this and holds
                # the old object stays correct: the lease and compare-and-append guard the store). A
                # private store needs no such pass: its idle expiry above closed those sessions.
                cutoff = time.monotonic() - lim.ttl_s
                for live in [s for s in list(self._live.values()) if s.last_used < cutoff]:
                    if not live.lock.acquire(blocking=False):
                        continue  # a step is using it after all
                    try:
                        with self._lock:
                            if self._live.get(live.id) is live:
                                del self._live[live.id]
                        live.drop_episode()
                    finally:
                        live.lock.release()
        if self.store.shared:
            # Sessions another replica closed (or expired): free their sandbox state here now,
            # not a TTL later.
            held = [sid for sid, s in list(self._live.items()) if s.episode is not None and not s.lock.locked()]
            alive = self.store.open_ids(held)
            for sid in held:
                live = self._live.get(sid)
                if sid not in alive and live is not None and live.lock.acquire(blocking=False):
                    try:
                        self._forget(live)
                    finally:
                        live.lock.release()
        if lim.rollout_max_count or lim.rollout_max_age_s:
            self.store.prune_rollouts(max_count=lim.rollout_max_count, max_age_s=lim.rollout_max_age_s, now=self._clock())
        return n

    def close_all(self) -> None:
        """Shutdown: release every live episode. A durable store keeps its sessions (a restart
        picks them up); the memory store's sessions end with the process anyway."""
        self._stop.set()
        with self._lock:
            lives, self._live = list(self._live.values()), {}
        for live in lives:
            with live.lock:
                live.closed = True
                live.drop_episode()
        if self.store.url == "memory":
            self.closed += len(lives)
        self.store.close_store()
