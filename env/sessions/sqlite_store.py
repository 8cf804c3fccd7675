"""``sqlite:///PATH.db``: the embedded durable store (stdlib sqlite3, WAL).

One server owns the file (an flock on it, so a second ``toolgym serve`` on the same file
fails at start instead of interleaving writes); other processes may read it, e.g.
``toolgym rollouts export``. Each step is one short IMMEDIATE transaction. WAL with
synchronous=NORMAL makes a committed step survive the process being killed (kill -9, OOM):
the WAL is written before COMMIT returns; only a power loss may drop the last transactions
(``?synchronous=FULL`` fsyncs each commit for that).

Group commit: concurrent steps' appends are queued and one writer thread commits everything
queued in one transaction, each step checked on its own (compare-and-append), and every
caller waits for that COMMIT before its reply leaves. With 64 sessions stepping, one commit
carries many steps, which is what keeps the durable store near the memory store's speed.

URL forms: ``sqlite:///rel/path.db`` (relative to the working directory),
``sqlite:////abs/path.db``; ``sqlite:///abs/path.db`` is taken as absolute when its folder
exists there and not relative to the working directory. Query options: ``synchronous``
(NORMAL|FULL), ``max_page_count`` (a size cap in pages: writes beyond it fail as a full disk).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import parse_qs

from toolgym.env.sessions.errors import SessionLimitError, SessionNotFound, StepIndexError, StoreConfigError, StoreUnavailable
from toolgym.env.sessions.records import SessionSpec, StepEntry, StoredSession, dumps
from toolgym.env.sessions.store import RolloutFilter, SessionStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, owner TEXT NOT NULL, spec TEXT NOT NULL,
    created REAL NOT NULL, last_used REAL NOT NULL, steps INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS sessions_last_used ON sessions(last_used);
CREATE INDEX IF NOT EXISTS sessions_owner ON sessions(owner);
CREATE TABLE IF NOT EXISTS steps(session_id TEXT NOT NULL, idx INTEGER NOT NULL, entry TEXT NOT NULL,
    PRIMARY KEY(session_id, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollouts(id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
    task_id TEXT NOT NULL, category TEXT NOT NULL, total REAL NOT NULL, finished_at REAL NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rollouts_finished ON rollouts(finished_at);
CREATE INDEX IF NOT EXISTS rollouts_category ON rollouts(category);
"""
_SCHEMA_VERSION = "1"


def sqlite_path(url: str) -> tuple[str, dict[str, str]]:
    """The file path and query options of a sqlite:// URL (see the module doc)."""
    rest, _, query = url[len("sqlite:"):].partition("?")
    if not rest.startswith("///") or len(rest) <= 3:
        raise StoreConfigError(f"--session-store {url!r}: expected sqlite:///PATH.db (relative) or sqlite:////ABS/PATH.db")
    path = rest[3:]
    if not path.startswith("/"):
        rel_dir = os.path.dirname(path) or "."
        if not os.path.isdir(rel_dir) and os.path.isdir(os.path.dirname("/" + path) or "/"):
            path = "/" + path  # sqlite:///tmp/x.db with no ./tmp here: the absolute /tmp/x.db was meant
    opts = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = set(opts) - {"synchronous", "max_page_count"}
    if unknown:
        raise StoreConfigError(f"--session-store {url!r}: unknown option(s) {sorted(unknown)}; known: synchronous, max_page_count")
    return os.path.abspath(path), opts


log = logging.getLogger("toolgym.sessions.sqlite")

_MAX_BATCH = 512  # appends per group commit


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


@dataclass
class _Append:
    sid: str
    index: int
    entry: str
    now: float
    rollout: dict[str, Any] | None
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class SqliteStore(SessionStore):
    shared = False

    def __init__(self, path: str, *, synchronous: str = "NORMAL", max_page_count: int = 0, busy_timeout_s: float = 2.0,
                 exclusive: bool = True, url: str = ""):
        self.path = path
        self.url = url or f"sqlite:///{path}"
        self._lock = threading.Lock()
        self._lockfd: int | None = None
        self._queue: list[_Append] = []
        self._queue_cv = threading.Condition()
        self._writer: threading.Thread | None = None
        self._closing = False
        if not os.path.isdir(os.path.dirname(path)):
            raise StoreConfigError(f"session store {path}: folder {os.path.dirname(path)} does not exist; create it or pick another path")
        try:
            if exclusive:
                self._take_file_lock()
            self._db = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL").fetchone()
            if synchronous.upper() not in ("NORMAL", "FULL"):
                raise StoreConfigError(f"session store {path}: synchronous must be NORMAL or FULL, got {synchronous!r}")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            if max_page_count:
                self._db.execute(f"PRAGMA max_page_count={int(max_page_count)}").fetchone()
            # A write at start: a corrupt file, a foreign lock or a read-only file fails now, as
            # one line at start-up, not on the first client's step.
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executescript(_SCHEMA)  # commits the probe transaction first, then creates the tables
            self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('schema', ?)", (_SCHEMA_VERSION,))
            got = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0]
            if got != _SCHEMA_VERSION:
                raise StoreConfigError(f"session store {path} has schema {got!r}; this toolgym reads {_SCHEMA_VERSION!r}")
        except StoreConfigError:
            self.close_store()
            raise
        except sqlite3.Error as e:
            self.close_store()
            msg = _one_line(e)
            if "locked" in msg or "busy" in msg:
                raise StoreConfigError(f"session store {path} is locked by another process ({msg}); stop it or use another file") from None
            raise StoreConfigError(f"session store {path} cannot be opened ({msg}): it is not a toolgym SQLite store or it is corrupt; "
                                   "move it aside to start with an empty store") from None

    @classmethod
    def open_url(cls, url: str) -> SqliteStore:
        path, opts = sqlite_path(url)
        try:
            pages = int(opts.get("max_page_count", 0))
        except ValueError:
            raise StoreConfigError(f"--session-store {url!r}: max_page_count must be an integer") from None
        return cls(path, synchronous=opts.get("synchronous", "NORMAL"), max_page_count=pages, url=url)

    def _take_file_lock(self) -> None:
        # flock, not fcntl: SQLite's own POSIX locks are fcntl locks and do not interact with
        # it. The descriptor stays open for the store's lifetime (closing another descriptor
        # of the file would drop SQLite's POSIX locks), and the kernel releases it on kill -9.
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StoreConfigError(f"session store {self.path} cannot be opened: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreConfigError(f"session store {self.path} is in use by another toolgym server; "
                                   "stop it, or give this one its own file (replicas share redis://, not one SQLite file)") from None
        self._lockfd = fd

    # ------------------------------------------------------------------ helpers
    def _refused(self, e: sqlite3.Error) -> StoreUnavailable:
        msg = _one_line(e)
        hint = "free disk space (or raise max_page_count)" if "full" in msg else "check the file and its disk"
        return StoreUnavailable(f"the session store {self.path} refused a write ({msg}); nothing was recorded "
                                f"and no reply was sent for it — {hint}, then retry with the same step_index")

    def _write(self, fn: Any) -> Any:
        """Run ``fn(db)`` in one IMMEDIATE transaction; any SQLite failure is StoreUnavailable."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    out = fn(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return out
            except sqlite3.Error as e:
                if self._db.in_transaction:
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise self._refused(e) from None

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise StoreUnavailable(f"the session store {self.path} could not be read ({_one_line(e)})") from None

    # ------------------------------------------------------------------ sessions
    def create(self, sid: str, spec: SessionSpec, owner: str, now: float, *, max_sessions: int, max_per_owner: int) -> None:
        def tx(db: sqlite3.Connection) -> None:
            n = db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
            if n >= max_sessions:
                raise SessionLimitError(f"the server holds {n} sessions, its limit (--max-sessions {max_sessions}); "
                                        "Close finished sessions, wait for idle ones to expire, or raise the limit")
            if max_per_owner:
                k = db.execute("SELECT COUNT(*) FROM sessions WHERE owner=?", (owner,)).fetchone()[0]
                if k >= max_per_owner:
                    raise SessionLimitError(f"client {owner or '(anonymous)'} holds {k} sessions, the per-client limit "
                                            f"(--max-sessions-per-client {max_per_owner}); Close finished sessions or wait for idle ones to expire")
            db.execute("INSERT INTO sessions(id, owner, spec, created, last_used) VALUES(?,?,?,?,?)", (sid, owner, spec.to_json(), now, now))

        self._write(tx)

    def load(self, sid: str) -> StoredSession | None:
        rows = self._read("SELECT owner, spec, created FROM sessions WHERE id=?", (sid,))
        if not rows:
            return None
        owner, spec, created = rows[0]
        steps = self._read("SELECT entry FROM steps WHERE session_id=? ORDER BY idx", (sid,))
        return StoredSession(sid, SessionSpec.from_json(spec), owner, created, [StepEntry.from_json(r[0]) for r in steps])

    def entry(self, sid: str, index: int) -> StepEntry | None:
        rows = self._read("SELECT entry FROM steps WHERE session_id=? AND idx=?", (sid, index))
        return StepEntry.from_json(rows[0][0]) if rows else None

    def append(self, sid: str, entry: StepEntry, now: float, rollout: dict[str, Any] | None = None, release: str = "") -> None:
        job = _Append(sid, entry.index, entry.to_json(), now, rollout)
        with self._queue_cv:
            if self._closing:
                raise StoreUnavailable(f"the session store {self.path} is closing; retry with the same step_index")
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="toolgym-sqlite-writer", daemon=True)
                self._writer.start()
            self._queue.append(job)
            self._queue_cv.notify()
        job.done.wait()  # until the COMMIT that holds this step has returned (or failed)
        if job.error is not None:
            raise job.error

    def _write_loop(self) -> None:
        while True:
            with self._queue_cv:
                while not self._queue and not self._closing:
                    self._queue_cv.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue[:_MAX_BATCH], self._queue[_MAX_BATCH:]
            try:
                self._commit(batch)
            except BaseException as e:  # noqa: BLE001 - every waiter must wake, whatever happened
                log.exception("group commit failed")
                for job in batch:
                    job.error = job.error or StoreUnavailable(f"the session store {self.path} failed a write ({type(e).__name__}: {e})")
            for job in batch:
                job.done.set()

    def _commit(self, batch: list[_Append]) -> None:
        def tx(db: sqlite3.Connection) -> None:
            for job in batch:
                # Compare-and-append, step by step: a conflict fails that step alone.
                cur = db.execute("UPDATE sessions SET steps=steps+1, last_used=? WHERE id=? AND steps=?", (job.now, job.sid, job.index))
                if cur.rowcount != 1:
                    if db.execute("SELECT 1 FROM sessions WHERE id=?", (job.sid,)).fetchone() is None:
                        job.error = SessionNotFound(f"no open session {job.sid!r}: it was closed or expired while this step ran")
                    else:
                        job.error = StepIndexError(f"step {job.index} of session {job.sid!r} was stored by another writer first")
                    continue
                db.execute("INSERT INTO steps(session_id, idx, entry) VALUES(?,?,?)", (job.sid, job.index, job.entry))
                if job.rollout is not None:
                    r = job.rollout
                    db.execute("INSERT INTO rollouts(session_id, task_id, category, total, finished_at, data) VALUES(?,?,?,?,?,?)",
                               (job.sid, r["task_id"], r["category"], float(r["reward"]["total"]), float(r["finished_at"]), dumps(r)))

        try:
            self._write(tx)
        except StoreUnavailable as e:  # the whole transaction rolled back: no step of it is stored
            for job in batch:
                job.error = e

    def close(self, sid: str) -> bool:
        def tx(db: sqlite3.Connection) -> bool:
            gone = db.execute("DELETE FROM sessions WHERE id=?", (sid,)).rowcount == 1
            db.execute("DELETE FROM steps WHERE session_id=?", (sid,))
            return gone

        return bool(self._write(tx))

    def count(self, owner: str | None = None) -> int:
        if owner is None:
            return int(self._read("SELECT COUNT(*) FROM sessions")[0][0])
        return int(self._read("SELECT COUNT(*) FROM sessions WHERE owner=?", (owner,))[0][0])

    def idle(self, before: float) -> list[str]:
        return [r[0] for r in self._read("SELECT id FROM sessions WHERE last_used < ?", (before,))]

    # ------------------------------------------------------------------ rollouts
    def rollouts(self, where: RolloutFilter = RolloutFilter()) -> Iterator[dict[str, Any]]:
        sql, args = "SELECT id, data FROM rollouts WHERE 1=1", []
        if where.categories:
            sql += f" AND category IN ({','.join('?' * len(where.categories))})"
            args += list(where.categories)
        for col, op, v in (("total", ">=", where.min_reward), ("total", "<=", where.max_reward),
                           ("finished_at", ">=", where.since), ("finished_at", "<", where.until)):
            if v is not None:
                sql += f" AND {col} {op} ?"
                args.append(v)
        sql += " ORDER BY id DESC LIMIT ?" if where.limit else " ORDER BY id"
        if where.limit:
            args.append(where.limit)
        for rid, data in self._read(sql, tuple(args)):
            yield {**json.loads(data), "id": rid}

    def prune_rollouts(self, *, max_count: int = 0, max_age_s: float = 0.0, now: float) -> int:
        def tx(db: sqlite3.Connection) -> int:
            n = 0
            if max_age_s > 0:
                n += db.execute("DELETE FROM rollouts WHERE finished_at < ?", (now - max_age_s,)).rowcount
            if max_count:
                n += db.execute("DELETE FROM rollouts WHERE id <= (SELECT id FROM rollouts ORDER BY id DESC LIMIT 1 OFFSET ?)",
                                (max_count,)).rowcount
            return n

        return int(self._write(tx))

    def close_store(self) -> None:
        with self._queue_cv:
            self._closing = True
            self._queue_cv.notify_all()
        if self._writer is not None:
            self._writer.join(30)  # queued steps are committed (or failed) before the file closes
        db = getattr(self, "_db", None)
        if db is not None:
            try:
                db.close()
            except sqlite3.Error:
                pass
            self._db = None  # type: ignore[assignment]
        if self._lockfd is not None:
            os.close(self._lockfd)  # after SQLite's own descriptors are closed (see _take_file_lock)
            self._lockfd = None
