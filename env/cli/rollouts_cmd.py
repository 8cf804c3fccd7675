"""`toolgym rollouts`: the finished episodes a server stored (``--session-store``).

- ``export --format jsonl|parquet|hf --out PATH``: a dataset of rollouts, filtered by
  ``--category``, ``--min-reward/--max-reward`` and ``--since/--until``;
- ``rescore --reward-config NEW.yaml``: every selected rollout's total under new weights and
  penalties (no model, no tools re-run), with the before/after distribution;
- ``prune --max-count N --max-age-s S``: apply retention now.

Reading a store that a server is using is safe (SQLite WAL readers, Redis).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from toolgym.env.sessions.store import RolloutFilter, SessionStore


def _time(text: str) -> float:
    """Seconds since the epoch from a number or an ISO-8601 date/time (UTC unless it says)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        d = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time; give seconds since the epoch or ISO-8601 like 2026-12-07T13:00") from None
    return (d if d.tzinfo else d.replace(tzinfo=dt.timezone.utc)).timestamp()


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rollouts", help="export, re-score or prune the finished episodes a server stored",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    rs = p.add_subparsers(dest="rollouts_command", metavar="ACTION")
    rs.required = True

    def common(q: argparse.ArgumentParser, filters: bool = True) -> None:
        q.add_argument("--session-store", required=True, help="the server's store: sqlite:///PATH.db or redis://HOST:PORT/DB")
        if filters:
            q.add_argument("--category", action="append", default=[], help="only this task category (repeatable)")
            q.add_argument("--min-reward", type=float, help="only rollouts with total >= this")
            q.add_argument("--max-reward", type=float, help="only rollouts with total <= this")
            q.add_argument("--since", type=_time, help="only rollouts finished at/after this time (epoch s or ISO-8601)")
            q.add_argument("--until", type=_time, help="only rollouts finished before this time (epoch s or ISO-8601)")
            q.add_argument("--limit", type=int, default=0, help="at most this many, newest first (0 = all)")

    e = rs.add_parser("export", help="write rollouts as JSONL, Parquet or a Hugging Face datasets folder")
    common(e)
    e.add_argument("--format", choices=["jsonl", "parquet", "hf"], default="jsonl", help="jsonl, parquet, or hf (datasets.save_to_disk)")
    e.add_argument("--out", required=True, help="output file (jsonl, parquet) or folder (hf)")
    e.set_defaults(func=run_export)

    r = rs.add_parser("rescore", help="re-score rollouts under a new reward config; print before/after")
    common(r)
    r.add_argument("--reward-config", required=True, help="YAML/JSON with weights, penalties, penalty_per_occurrence, max_penalty_total "
                                                          "(optionally under a top-level 'reward' key); unset keys keep the defaults")
    r.add_argument("--out", help="also write one JSON line per rollout: id, task_id, before, after")
    r.set_defaults(func=run_rescore)

    q = rs.add_parser("prune", help="apply retention limits now")
    common(q, filters=False)
    q.add_argument("--max-count", type=int, default=0, help="keep the newest N (0 = no cap)")
    q.add_argument("--max-age-s", type=float, default=0.0, help="drop rollouts older than this many seconds (0 = keep)")
    q.set_defaults(func=run_prune)


def _store(args: argparse.Namespace) -> SessionStore:
    from toolgym.env.sessions.sqlite_store import SqliteStore, sqlite_path
    from toolgym.env.sessions.open_url import open_store

    if args.session_store.startswith("sqlite:"):
        path, _ = sqlite_path(args.session_store)
        import os

        if not os.path.exists(path):
            raise ValueError(f"no session store at {path}; pass the file the server ran with (--session-store)")
        return SqliteStore(path, exclusive=False)  # a reader beside a running server
    if args.session_store.strip() in ("memory", "memory://"):
        raise ValueError("a memory store lives inside its server; export from a sqlite:// or redis:// store")
    return open_store(args.session_store)


def _filter(args: argparse.Namespace) -> RolloutFilter:
    return RolloutFilter(categories=tuple(args.category), min_reward=args.min_reward, max_reward=args.max_reward,
                         since=args.since, until=args.until, limit=args.limit)


def run_export(args: argparse.Namespace) -> int:
    from toolgym.env.sessions.export import export

    store = _store(args)
    try:
        n = export(store.rollouts(_filter(args)), args.format, args.out)
    finally:
        store.close_store()
    print(f"exported {n} rollout(s) to {args.out} ({args.format})")
    return 0


def load_reward_config(path: str) -> Any:
    import yaml

    from toolgym.env.reward.config import RewardConfig

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as e:
        raise ValueError(f"--reward-config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"--reward-config {path} is not valid YAML: {' '.join(str(e).split())}") from None
    if isinstance(data, dict) and isinstance(data.get("reward"), dict):
        data = data["reward"]
    if not isinstance(data, dict):
        raise ValueError(f"--reward-config {path}: expected a mapping with weights/penalties, got {type(data).__name__}")
    try:
        return RewardConfig.from_dict(data)
    except (ValueError, TypeError) as e:
        raise ValueError(f"--reward-config {path}: {e}") from None


def run_rescore(args: argparse.Namespace) -> int:
    from toolgym.env.sessions.rollouts import Distribution, rescore

    cfg = load_reward_config(args.reward_config)
    store = _store(args)
    pairs = []
    try:
        for r in store.rollouts(_filter(args)):
            pairs.append((r, float(r["reward"]["total"]), rescore(r, cfg)))
    finally:
        store.close_store()
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            for r, before, after in pairs:
                fh.write(json.dumps({"id": str(r.get("id")), "task_id": r["task_id"], "category": r["category"],
                                     "before": before, "after": after}) + "\n")
    before, after = Distribution.of(b for _, b, _ in pairs), Distribution.of(a for _, _, a in pairs)
    changed = sum(1 for _, b, a in pairs if abs(a - b) > 1e-9)
    print(f"rescored {len(pairs)} rollout(s) with {args.reward_config} ({changed} changed)")
    print(f"  before: {before.line()}")
    print(f"  after:  {after.line()}")
    cats = sorted({r["category"] for r, _, _ in pairs})
    for c in cats if len(cats) > 1 else ():
        b = Distribution.of(x for r, x, _ in pairs if r["category"] == c)
        a = Distribution.of(y for r, _, y in pairs if r["category"] == c)
        print(f"  {c}: mean {b.mean:.4f} -> {a.mean:.4f} (n={b.n})")
    sys.stdout.flush()
    return 0


def run_prune(args: argparse.Namespace) -> int:
    import time

    store = _store(args)
    try:
        n = store.prune_rollouts(max_count=args.max_count, max_age_s=args.max_age_s, now=time.time())
    finally:
        store.close_store()
    print(f"removed {n} rollout(s)")
    return 0
