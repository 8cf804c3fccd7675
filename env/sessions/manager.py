"""Server-side env sessions: creation under a cap, idle expiry, idempotent steps, draining.

Each session owns an :class:`~toolgym.env.episode.Episode` and a lock (steps of one session
are serialised; different sessions run in parallel). Every applied step's response is kept
by index, so a client that retries a Step after a lost reply gets the recorded answer
instead of applying the action twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from toolgym.env.episode import Episode, StepOutcome

log = logging.getLogger("toolgym.sessions")


class SessionLimitError(Exception):
    pass


class SessionNotFound(KeyError):
    pass


@dataclass
class Session:
    id: str
    episode: Episode
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    responses: list[Any] = field(default_factory=list)  # recorded StepResponse per applied step
    actions: list[bytes] = field(default_factory=list)  # digest of each applied step's action (retries must match)
    closed: bool = False
    owner: str = ""  # the client that created it (per-client session limit)


class SessionStore:
    """Open sessions under a global cap and an optional per-client cap (``max_per_owner``).

    With ``id_prefix`` (a replica id) every session id is ``"<prefix>.<hex>"``, so a client or
    proxy can route a session's Steps to the replica that holds it (see docs of ``replica_id``).
    """

    def __init__(self, *, max_sessions: int, ttl_s: float, clock: Callable[[], float] = time.monotonic,
                 max_per_owner: int = 0, id_prefix: str = ""):
        self._max = max_sessions
        self._ttl = ttl_s
        self._clock = clock
        self._max_per_owner = max_per_owner
        self._prefix = f"{id_prefix}." if id_prefix else ""
        self._sessions: dict[str, Session] = {}
        self._owned: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.expired = 0
        self.created = 0
        self.closed = 0
        self._reaper: threading.Thread | None = None
        if ttl_s > 0:
            self._reaper = threading.Thread(target=self._reap_loop, name="toolgym-session-reaper", daemon=True)
            self._reaper.start()

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, sid: object) -> bool:
        return self._sessions.get(sid) is not None  # type: ignore[call-overload]

    def owned_by(self, owner: str) -> int:
        return self._owned.get(owner, 0)

    def _disown(self, owner: str) -> None:
        n = self._owned.get(owner, 0) - 1
        if n > 0:
            self._owned[owner] = n
        else:
            self._owned.pop(owner, None)

    def create(self, episode_factory: Callable[[], Episode], owner: str = "") -> Session:
        with self._lock:
            if len(self._sessions) >= self._max:
                raise SessionLimitError(
                    f"the server holds {len(self._sessions)} sessions, its limit (--max-sessions {self._max}); "
                    "Close finished sessions, wait for idle ones to expire, or raise the limit"
                )
            if self._max_per_owner and self._owned.get(owner, 0) >= self._max_per_owner:
                raise SessionLimitError(
                    f"client {owner or '(anonymous)'} holds {self._owned[owner]} sessions, the per-client limit "
                    f"(--max-sessions-per-client {self._max_per_owner}); Close finished sessions or wait for idle ones to expire"
                )
            sid = self._prefix + uuid.uuid4().hex
            # Reserve the slot before the (possibly slow) episode start so the caps hold under races.
            self._sessions[sid] = None  # type: ignore[assignment]
            self._owned[owner] = self._owned.get(owner, 0) + 1
        try:
            session = Session(id=sid, episode=episode_factory(), last_used=self._clock(), owner=owner)
        except BaseException:
            with self._lock:
                self._sessions.pop(sid, None)
                self._disown(owner)
            raise
        with self._lock:
            self._sessions[sid] = session
            self.created += 1
        return session

    def get(self, sid: str) -> Session:
        s = self._sessions.get(sid)
        if (s is None or s.closed) and self._prefix and not sid.startswith(self._prefix) and "." in sid:
            raise SessionNotFound(
                f"session {sid!r} belongs to replica {sid.rsplit('.', 1)[0]!r}, and this is replica {self._prefix[:-1]!r}: "
                "send a session's Step/Close to the replica that created it (ToolgymClient pins them; see replica_id)"
            )
        if s is None or s.closed:
            raise SessionNotFound(
                f"no open session {sid!r}: it was closed, expired after {self._ttl:.0f}s idle, or never existed — call Reset for a new one"
            )
        s.last_used = self._clock()
        return s

    def close(self, sid: str) -> bool:
        with self._lock:
            s = self._sessions.pop(sid, None)
            if s is None:
                return False
            self._disown(s.owner)
            self.closed += 1
        with s.lock:
            s.closed = True
            s.episode.close()
        return True

    def _reap_loop(self) -> None:
        period = max(0.05, min(self._ttl / 4, 5.0))
        while not self._stop.wait(period):
            self.reap()

    def reap(self) -> int:
        now = self._clock()
        with self._lock:
            stale = [sid for sid, s in self._sessions.items() if s is not None and now - s.last_used > self._ttl and not s.lock.locked()]
        for sid in stale:
            if self.close(sid):
                self.expired += 1
        return len(stale)

    def close_all(self) -> None:
        self._stop.set()
        for sid in list(self._sessions):
            try:
                self.close(sid)
            except Exception:
                log.exception("closing session %s", sid)


def _digest(action: str) -> bytes:
    return hashlib.blake2b(action.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def step_session(session: Session, action: str, step_index: int, run: Callable[[Episode, str], StepOutcome],
                 to_response: Callable[[StepOutcome, int], Any]) -> Any:
    """Apply one step with the idempotency rule described in env.proto (StepRequest.step_index)."""
    with session.lock:
        if session.closed:
            raise SessionNotFound(f"session {session.id!r} was closed while this step waited")
        n = len(session.responses)
        if step_index < 0:
            step_index = n  # no idempotency requested: apply as the next step
        if step_index < n:
            if session.actions[step_index] != _digest(action):
                # Not a retry: answering with the recorded reply would describe an action never taken.
                raise IndexError(f"step_index {step_index} was already applied with a different action; a retry must resend "
                                 f"the same action, and a new step must use step_index {n}")
            return session.responses[step_index]  # a retry of an applied step: same answer, no re-execution
        if step_index > n:
            raise IndexError(f"step_index {step_index} is ahead of the session, which has applied {n} step(s); send {n}")
        outcome = run(session.episode, action)
        resp = to_response(outcome, n)
        session.responses.append(resp)
        session.actions.append(_digest(action))
        session.last_used = time.monotonic()
        return resp
