"""Replicas on one real Redis: any replica serves any session; a Redis outage is UNAVAILABLE
with a clear message and work resumes when Redis is back."""

from __future__ import annotations

import random
import threading
import time

import grpc
import pytest

from toolgym.env.client import ToolgymClient
from toolgym.env.server.app import ServerConfig, start_server
from toolgym.env.tasks.suite import load_suite

from sessions_support import gt_actions, reference_rewards


@pytest.fixture(scope="module")
def suite():
    return load_suite("bfcl-multi")


def _tasks(suite, n: int, skip: int = 0):
    return sorted(suite.filter(categories=["multi_turn_base"]), key=lambda t: t.id)[skip:skip + n]


def _replica(suite, url: str, name: str):
    return start_server(ServerConfig(port=0, session_store=url, replica_id=name, sandbox_workers=1, max_steps=64), suite=suite)


def test_two_replicas_with_steps_alternating_at_random_give_identical_rewards(suite, redis_server):
    tasks = _tasks(suite, 8)
    rng = random.Random(7)
    with _replica(suite, redis_server.url, "r1") as a, _replica(suite, redis_server.url, "r2") as b:
        # Plain clients, one per replica: no pinning at all, as behind an L4 Service.
        clients = [ToolgymClient(a.address, timeout=60), ToolgymClient(b.address, timeout=60)]
        try:
            got: dict[str, list[float]] = {}
            errors: list[BaseException] = []

            def play(task, seed: int) -> None:
                r = random.Random(seed)
                try:
                    sid = r.choice(clients).reset(task.id, template="hermes", max_steps=64).session_id
                    got[task.id] = [r.choice(clients).step(sid, act, step_index=i).reward for i, act in enumerate(gt_actions(task))]
                except BaseException as e:  # noqa: BLE001 - reported below
                    errors.append(e)

            threads = [threading.Thread(target=play, args=(t, rng.random())) for t in tasks]
            for th in threads:
                th.start()
            for th in threads:
                th.join(120)
            assert not errors, errors[:2]
            # Both replicas did real work, rebuilding sessions the other had stepped.
            assert a.env.sessions.restored >= 1 and b.env.sessions.restored >= 1
            assert len(a.env.sessions) == len(b.env.sessions) == len(tasks)  # one shared view
        finally:
            for c in clients:
                c.close()
    assert got == reference_rewards(suite, tasks)


def test_redis_down_for_5s_is_unavailable_with_a_clear_message_then_work_resumes(suite, redis_server):
    tasks = _tasks(suite, 3, skip=8)
    with _replica(suite, redis_server.url, "r1") as srv, ToolgymClient(srv.address, timeout=30) as c:
        sids = {t.id: c.reset(t.id, template="hermes", max_steps=64).session_id for t in tasks}
        got = {t.id: [c.step(sids[t.id], gt_actions(t)[0], step_index=0).reward] for t in tasks}
        redis_server.stop()
        down_until = time.monotonic() + 5.0
        failures = []
        while time.monotonic() < down_until:
            t = tasks[len(failures) % len(tasks)]
            with pytest.raises(grpc.RpcError) as e:
                c.step(sids[t.id], gt_actions(t)[1], step_index=1)
            failures.append(e.value)
            time.sleep(0.5)
        assert all(f.code() == grpc.StatusCode.UNAVAILABLE for f in failures)
        msg = failures[0].details()
        assert redis_server.url in msg and "unreachable" in msg and "retry with the same step_index" in msg
        redis_server.start()  # same port, same append-only file
        for t in tasks:
            acts = gt_actions(t)
            got[t.id] += [c.step(sids[t.id], acts[i], step_index=i).reward for i in range(1, len(acts))]
    assert got == reference_rewards(suite, tasks)


def test_a_session_closed_on_one_replica_frees_its_live_state_on_the_other(suite, redis_server):
    (task,) = _tasks(suite, 1, skip=11)
    acts = gt_actions(task)
    with _replica(suite, redis_server.url, "r1") as a, _replica(suite, redis_server.url, "r2") as b, \
            ToolgymClient(a.address, timeout=30) as ca, ToolgymClient(b.address, timeout=30) as cb:
        sid = ca.reset(task.id, template="hermes", max_steps=64).session_id
        ca.step(sid, acts[0], step_index=0)
        cb.step(sid, acts[1], step_index=1)  # b rebuilds it and now holds live state too
        assert a.env.sessions.live == 1 and b.env.sessions.live == 1
        assert ca.close_session(sid)
        b.env.sessions.reap()
        assert b.env.sessions.live == 0
        with pytest.raises(grpc.RpcError) as e:
            cb.step(sid, acts[2], step_index=2)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_lease_that_expires_mid_step_still_stores_one_step_and_both_callers_get_its_reply(redis_server):
    """Replica A's step outlives its lease, so B (sent the same retry) runs it too: compare-and-append
    keeps the first, and the loser answers with the stored reply instead of its own run's."""
    suite = load_suite("default", categories=["toolgym_python"])
    slow = '<tool_call>{"name": "python", "arguments": {"code": "import time\\ntime.sleep(0.6)\\nprint(sum(i*i for i in range(101)))"}}</tool_call>'
    cfg = dict(session_store=redis_server.url, sandbox_workers=1, session_lease_s=0.1)
    with start_server(ServerConfig(port=0, replica_id="r1", **cfg), suite=suite) as a, \
            start_server(ServerConfig(port=0, replica_id="r2", **cfg), suite=suite) as b, \
            ToolgymClient(a.address, timeout=30) as ca, ToolgymClient(b.address, timeout=30) as cb:
        sid = ca.reset("toolgym_python_0", template="hermes").session_id
        replies = {}
        first = threading.Thread(target=lambda: replies.setdefault("a", ca.step(sid, slow, step_index=0)))
        first.start()
        time.sleep(0.2)  # A holds the lease, which expires while its tool call sleeps
        replies["b"] = cb.step(sid, slow, step_index=0)
        first.join(30)
        assert replies["a"] == replies["b"] and "338350" in replies["a"].observation
        assert len(a.env.sessions.store.load(sid).entries) == 1
        assert (a.env.sessions.races_lost, b.env.sessions.races_lost) == (0, 1)  # B ran it too, and lost
