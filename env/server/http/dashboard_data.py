"""The numbers behind ``GET /``, ``GET /dashboard/data`` and ``GET /metrics``, from one place.

Nothing here is a second bookkeeping of the env: sessions, steps and sandbox counts are
:meth:`EnvServicer.stats` (gRPC and the gateway share it), and finished episodes are read back
from the session store's rollout table, which already holds each one's transcript and reward
breakdown. :class:`EpisodeBook` folds new rollouts into running totals as they appear, because the
table itself is pruned (retention, the memory store's cap) and Prometheus counters must never go
down. The dashboard JSON and the Prometheus collector both read :meth:`Board.numbers`, so the page
and a scrape can never disagree.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import re
import threading
import time
import urllib.parse
from typing import Any, Callable

from toolgym.env.sessions.store import RolloutFilter, SessionStore

#: Upper bounds of the reward-total buckets (the contract bounds a total to [-1.5, 1]; below -1.5 lands in the first).
TOTAL_BUCKETS: tuple[float, ...] = (-1.5, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 0.9, 1.0)
#: Upper bounds of the component buckets (every component is in [0, 1]).
COMPONENT_BUCKETS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(1, 11))
RECENT = 50  # episodes kept with their transcripts for the page's table
RATE_WINDOW_S = 10.0  # steps/s is measured over this much recent time
# A rollout stamped before a newer one may be appended after it (concurrent steps): re-read this far back.
_SLACK_S = 30.0
# Config fields never shown, whatever the server's flags add later: credentials and where they live.
_SECRET = re.compile(r"token|secret|passw|key|cert|credential|_ca$", re.I)


def _bucket(x: float, bounds: tuple[float, ...]) -> int:
    """Index of the first bound >= x (len(bounds) = above the last one)."""
    for i, b in enumerate(bounds):
        if x <= b:
            return i
    return len(bounds)


@dataclasses.dataclass
class _Dist:
    """Counts per bucket (non-cumulative, the last one is +Inf), sum and count."""

    bounds: tuple[float, ...]
    counts: list[int] = dataclasses.field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = self.counts or [0] * (len(self.bounds) + 1)

    def add(self, x: float) -> None:
        self.counts[_bucket(x, self.bounds)] += 1
        self.total += x
        self.n += 1

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "sum": round(self.total, 10), "mean": round(self.total / self.n, 6) if self.n else None,
                "counts": list(self.counts)}


def _number(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None  # e.g. the retrieval component of an episode that did not search: unscored, not 0
    return x if math.isfinite(x) else None


def episode_row(r: dict[str, Any]) -> dict[str, Any]:
    """A rollout without its transcript: what the recent-episodes table shows per row."""
    rw = r.get("reward") or {}
    return {"id": str(r.get("id", "")), "session_id": r.get("session_id", ""), "task_id": r.get("task_id", ""),
            "category": r.get("category", ""), "template": r.get("template", ""), "n_steps": r.get("n_steps", 0),
            "total": rw.get("total", 0.0), "components": rw.get("components") or {}, "penalties": rw.get("penalties") or {},
            "penalty_counts": rw.get("penalty_counts") or {}, "valid": rw.get("valid", False), "feedback": rw.get("feedback", ""),
            "terminated": r.get("terminated", False), "truncated": r.get("truncated", False), "finished_at": r.get("finished_at", 0.0)}


class EpisodeBook:
    """Running totals over the episodes that finish from its creation on (older rollouts of a
    durable store are history, not this server's counters; they still fill the recent table)."""

    def __init__(self, store: SessionStore, *, clock: Callable[[], float] = time.time):
        self._store = store
        self.start = self._mark = clock()  # _mark: the newest finished_at folded in
        self._seen: dict[str, float] = {}  # rollout id -> finished_at, for ids inside the re-read window
        self._lock = threading.Lock()
        self._primed = False
        self.by_category: dict[str, _Dist] = {}
        self.components: dict[str, _Dist] = {}
        self.by_category_component: dict[tuple[str, str], _Dist] = {}
        self.penalty_counts: collections.Counter[str] = collections.Counter()
        self.invalid: collections.Counter[str] = collections.Counter()
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT)

    def sync(self) -> None:
        """Fold in the rollouts stored since the last call (blocking: a store read)."""
        with self._lock:
            if not self._primed:
                self._primed = True
                older = [r for r in self._store.rollouts(RolloutFilter(limit=RECENT)) if float(r.get("finished_at", 0)) < self.start]
                self.recent.extend(reversed(older))
            for r in self._store.rollouts(RolloutFilter(since=self._mark - _SLACK_S)):
                rid, fin = str(r.get("id", "")), float(r.get("finished_at", 0.0))
                if rid in self._seen or fin < self.start:
                    continue
                self._seen[rid] = fin
                self._mark = max(self._mark, fin)
                self._add(r)
            self._seen = {k: v for k, v in self._seen.items() if v >= self._mark - _SLACK_S}

    def _add(self, r: dict[str, Any]) -> None:
        cat = str(r.get("category") or "(none)")
        rw = r.get("reward") or {}
        self.by_category.setdefault(cat, _Dist(TOTAL_BUCKETS)).add(_number(rw.get("total")) or 0.0)
        if not rw.get("valid", False):
            self.invalid[cat] += 1
        for name, v in (rw.get("components") or {}).items():
            x = _number(v)
            if x is not None:
                self.components.setdefault(name, _Dist(COMPONENT_BUCKETS)).add(x)
                self.by_category_component.setdefault((cat, name), _Dist(COMPONENT_BUCKETS)).add(x)
        for kind, n in (rw.get("penalty_counts") or {}).items():
            self.penalty_counts[kind] += int(n or 0)
        self.recent.append(r)

    def totals(self) -> dict[str, Any]:
        """A consistent copy of the running totals (another request may be folding rollouts in)."""
        with self._lock:
            return {
                "by_category": {c: {**d.to_dict(), "invalid": self.invalid[c]} for c, d in sorted(self.by_category.items())},
                "by_component": {c: d.to_dict() for c, d in sorted(self.components.items())},
                "by_category_component": {f"{c}/{k}": {"category": c, "component": k, **d.to_dict()}
                                          for (c, k), d in sorted(self.by_category_component.items())},
                "penalties": dict(sorted(self.penalty_counts.items())),
            }

    def recent_rows(self) -> list[dict[str, Any]]:
        """The recent episodes, newest first, without transcripts."""
        with self._lock:
            return [episode_row(r) for r in reversed(self.recent)]

    def find(self, rid: str) -> dict[str, Any] | None:
        with self._lock:
            return next((r for r in self.recent if str(r.get("id", "")) == rid), None)


class StepRate:
    """Steps/s over the last :data:`RATE_WINDOW_S`, from samples of the steps counter taken at each read."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._lock = threading.Lock()

    def sample(self, steps: int) -> float:
        now = self._clock()
        with self._lock:
            self._samples.append((now, steps))
            # Keep one sample at or before the window's start so the rate spans the whole window.
            while len(self._samples) > 2 and self._samples[1][0] <= now - RATE_WINDOW_S:
                self._samples.popleft()
            t0, s0 = self._samples[0]
        return round((steps - s0) / (now - t0), 3) if now - t0 >= 0.2 else 0.0


def _scrub_url(url: str) -> str:
    """A store URL without the password a redis:// URL may carry."""
    try:
        u = urllib.parse.urlsplit(url)
    except ValueError:
        return "(hidden)"
    if u.password is None and u.username is None:
        return url
    host = u.hostname or ""
    return urllib.parse.urlunsplit((u.scheme, f"***@{host}{f':{u.port}' if u.port else ''}", u.path, u.query, u.fragment))


def safe_config(cfg: Any, *, auth: bool) -> dict[str, Any]:
    """The server's flags that are safe to show: credentials and their file paths become yes/no."""
    if cfg is None:
        return {}
    items = ([(f.name, getattr(cfg, f.name)) for f in dataclasses.fields(cfg)] if dataclasses.is_dataclass(cfg)
             else list(vars(cfg).items()))
    out: dict[str, Any] = {}
    for name, v in items:
        if _SECRET.search(name) or name.startswith("_"):
            continue
        if hasattr(v, "to_dict"):
            v = v.to_dict()
        elif isinstance(v, tuple):
            v = list(v)
        elif name == "session_store" and isinstance(v, str):
            v = _scrub_url(v)
        elif not isinstance(v, (str, int, float, bool, type(None))):
            v = str(v)
        out[name] = v
    out["tls"] = bool(getattr(cfg, "tls_cert", ""))
    out["mtls"] = bool(getattr(cfg, "tls_client_ca", ""))
    out["token_auth"] = auth
    return out


class Board:
    """What the dashboard and /metrics show, for one env (an :class:`EnvServicer`)."""

    def __init__(self, env: Any, *, max_sessions: int, config: dict[str, Any], name: str = "toolgym", version: str = ""):
        self.env = env
        self.max_sessions = max_sessions
        self.config = config
        self.name, self.version = name, version
        self.book = EpisodeBook(env.sessions.store)
        self.rate = StepRate()
        self.started = time.time()

    def numbers(self) -> dict[str, Any]:
        """Counters and distributions (blocking: reads the store). /metrics renders exactly these."""
        self.book.sync()
        st = self.env.stats()
        steps = int(st.get("steps_total", 0))
        t = self.book.totals()
        return {
            "sessions": {"open": st.get("sessions_open", 0), "max": self.max_sessions, "created": st.get("sessions_created", 0),
                         "closed": st.get("sessions_closed", 0), "expired": st.get("sessions_expired", 0),
                         "restored": st.get("sessions_restored", 0), "live": st.get("sessions_live", 0),
                         "closed_stream_end": st.get("sessions_closed_stream_end", 0)},
            "steps": {"total": steps, "per_s": self.rate.sample(steps), "window_s": RATE_WINDOW_S},
            "episodes": {"finished": sum(d["n"] for d in t["by_category"].values()), "since": self.book.start},
            "reward": {"total_buckets": list(TOTAL_BUCKETS), "component_buckets": list(COMPONENT_BUCKETS),
                       "by_category": t["by_category"], "by_component": t["by_component"],
                       "by_category_component": t["by_category_component"]},
            "penalties": {"applied": t["penalties"]},
            "sandbox": {k: v for k, v in (st.get("sandbox") or {}).items() if k != "worker_pids"},
        }

    def snapshot(self) -> dict[str, Any]:
        """``GET /dashboard/data``: the numbers, the recent episodes (no transcripts) and the config."""
        d = self.numbers()
        recent = self.book.recent_rows()
        return {"server": {"name": self.name, "version": self.version, "time": time.time(), "uptime_s": round(time.time() - self.started, 1)},
                **d, "recent": recent, "config": self.config}

    def episode(self, rid: str) -> dict[str, Any] | None:
        """One recent episode with its transcript (the page loads it when a row is expanded)."""
        return self.book.find(rid)
