"""Opening a store by its ``--session-store`` URL (kept apart from the interface in
:mod:`toolgym.env.sessions.store`, which every backend imports)."""

from __future__ import annotations

from toolgym.env.sessions.errors import StoreConfigError
from toolgym.env.sessions.store import SessionStore


def open_store(url: str) -> SessionStore:
    """The backend a ``--session-store`` URL names: memory, sqlite:///PATH.db, redis://HOST:PORT/DB."""
    u = (url or "memory").strip()
    if u in ("memory", "memory://", "mem"):
        from toolgym.env.sessions.memory_store import MemoryStore

        return MemoryStore()
    if u.startswith("sqlite:"):
        from toolgym.env.sessions.sqlite_store import SqliteStore

        return SqliteStore.open_url(u)
    if u.startswith(("redis://", "rediss://", "unix://")):
        from toolgym.env.sessions.redis_store import RedisStore

        return RedisStore.open_url(u)
    raise StoreConfigError(f"--session-store {url!r} is not a store URL; use 'memory', 'sqlite:///PATH.db' "
                           "(one server, survives restarts) or 'redis://HOST:PORT/DB' (shared by replicas)")
