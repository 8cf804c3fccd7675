"""``redis://HOST:PORT/DB``: the store replicas share (PyPI ``redis`` client).

Keys (prefix ``tg:``): ``s:<sid>`` a hash (spec, owner, created), ``l:<sid>`` the step log
(a list of entry JSON), ``open`` a sorted set of open sessions by last use, ``own`` a hash of
sessions per owner, ``lease:<sid>`` the step lease (SET NX PX), ``ro`` a sorted set of rollout
ids by finish time with ``r:<id>`` holding each rollout. Every multi-key change is one Lua
script, so caps, compare-and-append and close are atomic across replicas.

Outages: each command has a short socket timeout and one reconnect; a failure becomes
:class:`StoreUnavailable` (gRPC UNAVAILABLE) naming the server, and work resumes as soon as
Redis answers again. Durability is Redis's: run it with ``appendonly yes`` so a Redis restart
keeps sessions (``appendfsync always`` for per-step durability).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterator, TypeVar

from toolgym.env.sessions.errors import SessionLimitError, SessionNotFound, StepIndexError, StoreConfigError, StoreUnavailable
from toolgym.env.sessions.records import SessionSpec, StepEntry, StoredSession, dumps
from toolgym.env.sessions.store import Head, RolloutFilter, SessionStore

T = TypeVar("T")

_CREATE = """
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[5]) then return {-1, n} end
local k = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
if tonumber(ARGV[6]) > 0 and k >= tonumber(ARGV[6]) then return {-2, k} end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('HSET', KEYS[3], 'spec', ARGV[3], 'owner', ARGV[2], 'created', ARGV[4])
return {0, 0}
"""
# KEYS: s, l, open, lease, ro, r:<id>  ARGV: sid, index, entry, now, holder, rollout, finished, done
_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[2]) then return -2 end
redis.call('RPUSH', KEYS[2], ARGV[3])
if ARGV[8] == '1' then redis.call('HSET', KEYS[1], 'done', '1') end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
if ARGV[6] ~= '' then
  redis.call('SET', KEYS[6], ARGV[6])
  redis.call('ZADD', KEYS[5], ARGV[7], KEYS[6])
end
if ARGV[5] ~= '' and redis.call('GET', KEYS[4]) == ARGV[5] then redis.call('DEL', KEYS[4]) end
return 0
"""
# KEYS: s, l, open, own  ARGV: sid
_CLOSE = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('HINCRBY', KEYS[4], owner, -1) <= 0 then redis.call('HDEL', KEYS[4], owner) end
return 1
"""
# KEYS: lease, s, l  ARGV: holder, ttl_ms -> {got, exists, steps, done}
_ACQUIRE = """
local got = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if not got then
  if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return {0, 0, 0, '0'} end
end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('DEL', KEYS[1]) return {1, 0, 0, '0'} end
return {1, 1, redis.call('LLEN', KEYS[3]), redis.call('HGET', KEYS[2], 'done') or '0'}
"""
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class RedisStore(SessionStore):
    shared = True

    def __init__(self, client: Any, url: str, prefix: str = "tg:"):
        self._r = client
        self.url = url
        self._p = prefix
        self._create = client.register_script(_CREATE)
        self._append = client.register_script(_APPEND)
        self._close = client.register_script(_CLOSE)
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._open_key, self._own_key, self._ro_key = prefix + "open", prefix + "own", prefix + "ro"

    @classmethod
    def open_url(cls, url: str, *, timeout_s: float = 2.0) -> RedisStore:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise StoreConfigError("--session-store redis:// needs the redis client: pip install 'toolgym[store]' (or pip install redis)") from None
        try:
            client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True,
                                          retry=Retry(NoBackoff(), 1), health_check_interval=0)
            client.ping()
        except (redis.RedisError, ValueError) as e:
            raise StoreConfigError(f"session store {url} is unreachable at start ({type(e).__name__}: {e}); "
                                   "start redis-server there or fix --session-store") from None
        return cls(client, url)

    def _k(self, kind: str, sid: str) -> str:
        return f"{self._p}{kind}:{sid}"

    def _do(self, what: str, fn: Callable[[], T]) -> T:
        import redis

        try:
            return fn()
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise StoreUnavailable(f"the session store {self.url} is unreachable ({type(e).__name__}: {e}) while {what}; "
                                   "nothing was applied — retry with the same step_index once Redis is back") from None
        except redis.RedisError as e:
            raise StoreUnavailable(f"the session store {self.url} refused {what} ({type(e).__name__}: {e}); "
                                   "nothing was applied — fix Redis (memory, persistence errors), then retry") from None

    # ------------------------------------------------------------------ sessions
    def create(self, sid: str, spec: SessionSpec, owner: str, now: float, *, max_sessions: int, max_per_owner: int) -> None:
        code, n = self._do("creating a session", lambda: self._create(
            keys=[self._open_key, self._own_key, self._k("s", sid)], args=[sid, owner, spec.to_json(), now, max_sessions, max_per_owner]))
        if code == -1:
            raise SessionLimitError(f"the store holds {n} sessions, the limit (--max-sessions {max_sessions}); "
                                    "Close finished sessions, wait for idle ones to expire, or raise the limit")
        if code == -2:
            raise SessionLimitError(f"client {owner or '(anonymous)'} holds {n} sessions, the per-client limit "
                                    f"(--max-sessions-per-client {max_per_owner}); Close finished sessions or wait for idle ones to expire")

    def load(self, sid: str) -> StoredSession | None:
        def get() -> tuple[dict, list]:
            p = self._r.pipeline(transaction=True)
            p.hgetall(self._k("s", sid))
            p.lrange(self._k("l", sid), 0, -1)
            h, log = p.execute()
            return h, log

        h, log = self._do("loading a session", get)
        if not h:
            return None
        return StoredSession(sid, SessionSpec.from_json(h["spec"]), h["owner"], float(h["created"]), [StepEntry.from_json(x) for x in log])

    def entry(self, sid: str, index: int) -> StepEntry | None:
        raw = self._do("reading a step", lambda: self._r.lindex(self._k("l", sid), index))
        return StepEntry.from_json(raw) if raw else None

    def append(self, sid: str, entry: StepEntry, now: float, rollout: dict[str, Any] | None = None, release: str = "") -> None:
        rid = f"{int(now * 1e6):017d}.{sid}" if rollout is not None else ""
        keys = [self._k("s", sid), self._k("l", sid), self._open_key, self._k("lease", sid), self._ro_key, self._k("r", rid)]
        args = [sid, entry.index, entry.to_json(), now, release, dumps({**rollout, "id": rid}) if rollout is not None else "",
                float(rollout["finished_at"]) if rollout is not None else 0, "1" if entry.done else "0"]
        code = self._do("storing a step", lambda: self._append(keys=keys, args=args))
        if code == -1:
            raise SessionNotFound(f"no open session {sid!r}: it was closed or expired while this step ran")
        if code == -2:
            raise StepIndexError(f"step {entry.index} of session {sid!r} was stored by another replica first")

    def close(self, sid: str) -> bool:
        keys = [self._k("s", sid), self._k("l", sid), self._open_key, self._own_key]
        return bool(self._do("closing a session", lambda: self._close(keys=keys, args=[sid])))

    def count(self, owner: str | None = None) -> int:
        if owner is None:
            return int(self._do("counting sessions", lambda: self._r.zcard(self._open_key)))
        return int(self._do("counting sessions", lambda: self._r.hget(self._own_key, owner)) or 0)

    def idle(self, before: float) -> list[str]:
        return list(self._do("listing idle sessions", lambda: self._r.zrangebyscore(self._open_key, "-inf", f"({before}")))

    def open_ids(self, sids: list[str]) -> set[str]:
        def check() -> list[int]:
            p = self._r.pipeline(transaction=False)
            for sid in sids:
                p.exists(self._k("s", sid))
            return p.execute()

        return {sid for sid, ok in zip(sids, self._do("checking sessions", check) if sids else []) if ok}

    # ------------------------------------------------------------------ leases
    def acquire(self, sid: str, holder: str, ttl_s: float) -> Head | None | bool:
        keys = [self._k("lease", sid), self._k("s", sid), self._k("l", sid)]
        got, exists, n, done = self._do("taking a session's lease", lambda: self._acquire(keys=keys, args=[holder, max(1, int(ttl_s * 1000))]))
        if not got:
            return False
        if not exists:
            return None
        return Head(steps=int(n), done=done == "1")

    def release(self, sid: str, holder: str) -> None:
        self._do("releasing a session's lease", lambda: self._release(keys=[self._k("lease", sid)], args=[holder]))

    # ------------------------------------------------------------------ rollouts
    def rollouts(self, where: RolloutFilter = RolloutFilter()) -> Iterator[dict[str, Any]]:
        lo = where.since if where.since is not None else "-inf"
        hi = f"({where.until}" if where.until is not None else "+inf"
        if where.limit:
            keys = self._do("listing rollouts", lambda: self._r.zrevrangebyscore(self._ro_key, hi, lo))
        else:
            keys = self._do("listing rollouts", lambda: self._r.zrangebyscore(self._ro_key, lo, hi))
        n = 0
        for i in range(0, len(keys), 256):
            chunk = keys[i:i + 256]
            for raw in self._do("reading rollouts", lambda: self._r.mget(chunk)):
                if raw is None:
                    continue  # pruned meanwhile
                r = json.loads(raw)
                if where.matches(r):
                    yield r
                    n += 1
                    if where.limit and n >= where.limit:
                        return

    def prune_rollouts(self, *, max_count: int = 0, max_age_s: float = 0.0, now: float) -> int:
        def prune() -> int:
            drop: list[str] = []
            if max_age_s > 0:
                drop += self._r.zrangebyscore(self._ro_key, "-inf", f"({now - max_age_s}")
            if max_count:
                drop += self._r.zrange(self._ro_key, 0, -max_count - 1)
            drop = sorted(set(drop))
            for i in range(0, len(drop), 512):
                chunk = drop[i:i + 512]
                p = self._r.pipeline(transaction=True)
                p.zrem(self._ro_key, *chunk)
                p.delete(*chunk)
                p.execute()
            return len(drop)

        return self._do("pruning rollouts", prune)

    def close_store(self) -> None:
        try:
            self._r.close()
        except Exception:  # noqa: BLE001 - closing a dead connection must not mask shutdown
            pass


def wait_for(url: str, timeout_s: float = 10.0) -> None:
    """Block until a Redis at ``url`` answers PING (tests and benches start their own)."""
    import redis

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
