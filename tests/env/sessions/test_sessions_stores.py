"""The SessionStore contract, the same test for every backend (memory, sqlite, a real redis)."""

from __future__ import annotations

import pytest

from toolgym.env.sessions.errors import SessionLimitError, SessionNotFound, StepIndexError, StoreConfigError
from toolgym.env.sessions.records import SessionSpec, StepEntry, digest
from toolgym.env.sessions.open_url import open_store
from toolgym.env.sessions.store import Head, RolloutFilter

SPEC = SessionSpec(task_id="multi_turn_base_0", template="hermes", options={"seed": 1, "max_steps": 20}, reward={}, category="multi_turn_base")


def _entry(i: int, done: bool = False) -> StepEntry:
    action = f"action {i}"
    return StepEntry(i, action, digest(action), {"step_index": i, "observation": f"obs {i}", "terminated": done, "truncated": False},
                     1.5, 1000.0 + i)


def _rollout(total: float, category: str, at: float) -> dict:
    return {"task_id": "t", "category": category, "reward": {"total": total}, "finished_at": at, "steps": []}


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "memory":
        s = open_store("memory")
    elif request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path}/s.db")
    else:
        s = open_store(request.getfixturevalue("redis_server").url)
    yield s
    s.close_store()


def test_caps_compare_and_append_close_idle(store):
    store.create("a", SPEC, "alice", 100.0, max_sessions=2, max_per_owner=1)
    with pytest.raises(SessionLimitError, match="per-client limit"):
        store.create("b", SPEC, "alice", 100.0, max_sessions=2, max_per_owner=1)
    store.create("b", SPEC, "bob", 100.0, max_sessions=2, max_per_owner=1)
    with pytest.raises(SessionLimitError, match="--max-sessions 2"):
        store.create("c", SPEC, "carol", 100.0, max_sessions=2, max_per_owner=0)
    assert (store.count(), store.count("alice"), store.count("nobody")) == (2, 1, 0)

    store.append("a", _entry(0), 200.0)
    with pytest.raises(StepIndexError):
        store.append("a", _entry(0), 201.0)  # a second writer of the same step loses
    with pytest.raises(StepIndexError):
        store.append("a", _entry(2), 201.0)  # a gap is refused too
    store.append("a", _entry(1, done=True), 300.0, rollout=_rollout(0.5, "multi_turn_base", 300.0))
    with pytest.raises(SessionNotFound):
        store.append("zz", _entry(0), 1.0)

    got = store.load("a")
    assert got is not None and got.spec == SPEC and got.owner == "alice" and got.done
    assert [e.index for e in got.entries] == [0, 1] and got.entries[1] == _entry(1, done=True)
    assert store.entry("a", 1) == _entry(1, done=True) and store.entry("a", 5) is None
    assert sorted(store.idle(250.0)) == ["b"]  # a: last used at 300

    assert store.close("b") and not store.close("b")
    assert store.load("b") is None and store.count() == 1 and store.count("bob") == 0
    [r] = list(store.rollouts())
    assert r["reward"]["total"] == 0.5 and r["category"] == "multi_turn_base"


def test_leases_are_exclusive_in_a_shared_store(store):
    store.create("a", SPEC, "", 1.0, max_sessions=10, max_per_owner=0)
    first = store.acquire("a", "replica-1", 5.0)
    if not store.shared:
        assert first is True  # one process: its own per-session lock serialises steps
        return
    assert first == Head(steps=0, done=False)
    assert store.acquire("a", "replica-2", 5.0) is False
    store.append("a", _entry(0), 2.0, release="replica-1")  # the append hands the lease back
    assert store.acquire("a", "replica-2", 5.0) == Head(steps=1, done=False)
    store.release("a", "replica-1")  # not the holder: no effect
    assert store.acquire("a", "replica-1", 5.0) is False
    store.release("a", "replica-2")
    assert store.acquire("nope", "replica-1", 5.0) is None


def test_rollout_filters_and_retention(store):
    for i, (total, cat) in enumerate([(0.1, "x"), (0.9, "y"), (0.5, "x"), (1.0, "x")]):
        sid = f"s{i}"
        store.create(sid, SPEC, "", 1.0, max_sessions=10, max_per_owner=0)
        store.append(sid, _entry(0, done=True), 10.0 + i, rollout=_rollout(total, cat, 10.0 + i))
    totals = lambda **kw: [r["reward"]["total"] for r in store.rollouts(RolloutFilter(**kw))]  # noqa: E731
    assert totals() == [0.1, 0.9, 0.5, 1.0]
    assert totals(categories=("x",), min_reward=0.4) == [0.5, 1.0]
    assert totals(max_reward=0.5, since=11.0) == [0.5]
    assert totals(until=12.0) == [0.1, 0.9]
    assert totals(limit=2) == [1.0, 0.5]  # newest first
    assert store.prune_rollouts(max_age_s=2.5, now=13.0) == 1  # finished at 10.0 < 13 - 2.5
    assert store.prune_rollouts(max_count=2, now=13.0) == 1
    assert totals() == [0.5, 1.0]


def test_bad_urls_name_the_accepted_forms(tmp_path):
    with pytest.raises(StoreConfigError, match="redis://HOST:PORT/DB"):
        open_store("postgres://x")
    with pytest.raises(StoreConfigError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path}/no/such/dir/s.db")
    with pytest.raises(StoreConfigError, match="unknown option"):
        open_store(f"sqlite:///{tmp_path}/s.db?fsync=1")
    with pytest.raises(StoreConfigError, match="unreachable at start"):
        open_store("redis://127.0.0.1:1/0")
